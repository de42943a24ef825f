"""The API types: pydantic models that are the one source of truth for spec and status.

`make crds` turns these models into the CustomResourceDefinitions under `crds/`.
"""
