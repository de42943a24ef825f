"""Prints `name==version` for every runtime dependency of capliquify-operator, as installed in
the environment running this (the project's venv): the image gets the versions the tests ran
with, not whatever the index has today. Extras (plot, dashboards, test) are not followed."""

from __future__ import annotations

import importlib.metadata as metadata
import re
import sys

try:
    from packaging.requirements import Requirement
except ImportError:  # pip always carries a copy
    from pip._vendor.packaging.requirements import Requirement  # type: ignore[no-redef]


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def closure(root: str) -> dict[str, str]:
    pins: dict[str, str] = {}
    todo = [root]
    while todo:
        name = todo.pop()
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            sys.exit(f"pins.py: {name} is not installed in {sys.prefix} (run `make venv`)")
        key = canonical(dist.metadata["Name"])
        if key in pins:
            continue
        pins[key] = dist.version
        for line in dist.requires or []:
            requirement = Requirement(line)
            # Markers are judged for the image's interpreter, which is this one's version (3.11).
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(requirement.name)
    return pins


if __name__ == "__main__":
    root = "capliquify-operator"
    for name, version in sorted(closure(root).items()):
        if name != root:
            print(f"{name}=={version}")
