"""The pure core: plain functions of (spec, observations, previous state, now).

Nothing here imports kopf, a client, or reads the clock; the import-linter contract in
pyproject.toml keeps it that way.
"""
