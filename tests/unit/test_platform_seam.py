"""A target platform is a seam: no platform is named outside its own files and the registries.

A platform is a file in the core (core/platform_<name>.py, listed in core/platforms.py) and an
actuator in adapters (listed in the composition root's `actuator.Actuators`); readiness,
targets, the view, the scaler, the rollout guard and probe management ask the registries. This
test reads every module's code (identifiers and string literals; comments and docstrings may
explain) and fails on a platform's name anywhere else.
"""

from __future__ import annotations

import io
import pathlib
import re
import tokenize

import pytest

from controller.core import platforms

ROOT = pathlib.Path(__file__).resolve().parents[2] / "controller"
# Where any platform may be named, and why.
REGISTRIES = {
    "core/platforms.py": "the platforms' registry",
    "core/sources.py": "the metric sources' registry (a platform's own metrics are a source)",
    "operator/runtime.py": "the composition root: the actuators' registry, the sources, the pollers",
    "cli.py": "the command line: the Railway subcommands",
    "operator/config.py": "the operator's settings read by the composition root (a platform's endpoint)",
    "adapters/budget.py": "the memory and connection budget: one line per peer",
    "reasons.py": "the vocabulary of condition and Event reasons",
    "admission.py": "the API field's admission rule",
}
# What names each platform in code: identifiers or string literals matching these.
NAMES = {
    "railway": re.compile(r"railway", re.IGNORECASE),
    "kubernetes": re.compile(r"\b(Deployment|StatefulSet)\b"),
    "scale": re.compile(r"platform_scale|actuator_scale|ScaleActuator|ScaleTargetRef"),
}


def _own(platform: str, relative: str) -> bool:
    return platform in pathlib.PurePath(relative).name or relative.startswith("api/")


def _code_tokens(path: pathlib.Path) -> list[tuple[int, str]]:
    """(line, text) of identifiers and string literals that are not docstrings."""
    found = []
    previous = tokenize.INDENT
    for token in tokenize.generate_tokens(io.StringIO(path.read_text()).readline):
        if token.type == tokenize.NAME:
            found.append((token.start[0], token.string))
        elif token.type == tokenize.STRING and previous not in (tokenize.INDENT, tokenize.NEWLINE, tokenize.DEDENT):
            found.append((token.start[0], token.string))
        if token.type not in (tokenize.NL, tokenize.COMMENT):
            previous = token.type
    return found


def test_every_registered_platform_is_checked() -> None:
    assert set(NAMES) == set(platforms.BY_NAME)


@pytest.mark.parametrize("platform", sorted(NAMES))
def test_no_platform_is_named_outside_its_files_and_the_registries(platform: str) -> None:
    pattern = NAMES[platform]
    offenders = []
    for path in sorted(ROOT.rglob("*.py")):
        relative = path.relative_to(ROOT).as_posix()
        if relative in REGISTRIES or _own(platform, relative):
            continue
        offenders += [f"{relative}:{line}: {text[:60]}" for line, text in _code_tokens(path) if pattern.search(text)]
    assert not offenders, f"{platform} named outside its own files and the registries:\n" + "\n".join(offenders)
