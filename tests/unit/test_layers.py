"""The layering holds: import-linter contracts, and no clock reads in the pure core."""

from __future__ import annotations

import ast
import pathlib
import shutil
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parents[2]
CLOCK_CALLS = {"now", "utcnow", "today", "time", "monotonic", "perf_counter"}


def test_import_contracts_are_kept() -> None:
    lint = shutil.which("lint-imports", path=str(pathlib.Path(sys.executable).parent)) or "lint-imports"
    result = subprocess.run([lint], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_core_reads_no_clock() -> None:
    offenders = []
    for path in sorted((REPO / "controller" / "core").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in CLOCK_CALLS:
                offenders.append(f"{path.name}:{node.lineno} .{node.func.attr}()")
    assert offenders == []


def _tool(name: str) -> str:
    return shutil.which(name, path=str(pathlib.Path(sys.executable).parent)) or name


def test_ruff_is_clean() -> None:
    """pycodestyle, pyflakes and bugbear over the whole tree (pyproject [tool.ruff])."""
    result = subprocess.run([_tool("ruff"), "check", "controller", "bench", "demo", "localcluster", "tests"],
                            cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_is_clean() -> None:
    """Every module type-checked; the pure layers fully annotated (pyproject [tool.mypy])."""
    result = subprocess.run([_tool("mypy")], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
