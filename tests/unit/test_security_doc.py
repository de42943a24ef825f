"""docs/security.md names the test that proves each claim: every test it names exists."""

from __future__ import annotations

import pathlib
import re

REPO = pathlib.Path(__file__).resolve().parents[2]


def test_every_test_the_security_page_names_exists() -> None:
    text = (REPO / "docs/security.md").read_text()
    named = set(re.findall(r"`(test_[A-Za-z0-9_]+)(?:\.py)?`", text))
    sources = "\n".join(path.read_text() for path in (REPO / "tests").rglob("*.py"))
    files = {path.stem for path in (REPO / "tests").rglob("test_*.py")}
    missing = sorted(name for name in named if name not in files and not re.search(rf"def {name}\b", sources))
    assert len(named) > 40 and not missing, f"docs/security.md names tests that do not exist: {missing}"
