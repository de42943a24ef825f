"""One timestamp codec (core/timestamps.py): what it writes and reads, and a search that fails on
a format or parse written by hand anywhere else in the controller."""

from __future__ import annotations

import ast
import datetime
import pathlib

import pytest

from controller.core import timestamps

ROOT = pathlib.Path(__file__).resolve().parents[2] / "controller"
UTC = datetime.timezone.utc
CODEC = ROOT / "core" / "timestamps.py"
ALLOWED = {
    # Not a status time: echoes a YAML timestamp (or date) as kubectl would send its text.
    ("validation.py", "isoformat"), ("validation.py", "replace('+00:00')"),
    # Not a time read back: a silence's default name (silence-20261206-043702-…).
    ("plugin/main.py", "format '%Y%m%d-%H%M%S'"),
}
# Held by another helper's uncommitted work when the codec came; converted when it lands.
PENDING: set[str] = set()


def test_to_status_is_utc_to_the_second() -> None:
    moment = datetime.datetime(2026, 12, 6, 5, 37, 2, 987654, tzinfo=datetime.timezone(datetime.timedelta(hours=1)))
    assert timestamps.to_status(moment) == "2026-12-06T04:37:02Z"
    assert timestamps.to_micro(moment) == "2026-12-06T04:37:02.987654Z"


@pytest.mark.parametrize("text", ["2026-12-06T04:37:02Z", "2026-12-06T05:37:02+01:00", "2026-12-06t04:37:02z",
                                  "2026-12-06T04:37:02", " 2026-12-06T04:37:02.000Z "])
def test_from_status_reads_rfc3339_and_takes_no_offset_as_utc(text: str) -> None:
    assert timestamps.from_status(text) == datetime.datetime(2026, 12, 6, 4, 37, 2, tzinfo=UTC)


def test_round_trip() -> None:
    moment = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert timestamps.from_status(timestamps.to_status(moment)) == moment
    assert timestamps.from_status(timestamps.to_micro(moment)) == moment


def test_from_status_refuses_what_is_no_time_and_or_none_says_none() -> None:
    with pytest.raises(ValueError):
        timestamps.from_status("yesterday")
    for value in (None, "", "yesterday", 17, ["2026-12-06T04:37:02Z"], "2026-13-06T04:37:02Z"):
        assert timestamps.or_none(value) is None
    assert timestamps.or_none("2026-12-06T04:37:02Z") == datetime.datetime(2026, 12, 6, 4, 37, 2, tzinfo=UTC)


def hand_rolled(tree: ast.AST) -> list[tuple[int, str]]:
    """Calls that format or parse a time by hand: strftime/strptime/fromisoformat/isoformat,
    a `.replace("Z", …)` or `.replace("+00:00", …)`, and a format string spelling the date."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            name = node.func.attr
            if name in ("strftime", "strptime", "fromisoformat", "isoformat"):
                found.append((node.lineno, name))
            elif name == "replace" and node.args and isinstance(node.args[0], ast.Constant) \
                    and node.args[0].value in ("Z", "z", "+00:00"):
                found.append((node.lineno, f"replace({node.args[0].value!r})"))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and "%Y" in node.value:
            found.append((node.lineno, f"format {node.value!r}"))
    return found


def test_the_search_finds_each_hand_rolled_form() -> None:
    source = '''
a = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
b = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
c = value.isoformat()
d = datetime.datetime.strptime(text, FORMAT)
e = text.replace("z", "+00:00")
'''
    assert sorted(line for line, _ in hand_rolled(ast.parse(source))) == [2, 2, 3, 3, 4, 5, 6]


def test_no_timestamp_is_formatted_or_parsed_outside_the_codec() -> None:
    offenders = []
    for path in sorted(ROOT.rglob("*.py")):
        relative = path.relative_to(ROOT).as_posix()
        if path == CODEC or relative in PENDING:
            continue
        for line, name in hand_rolled(ast.parse(path.read_text(), str(path))):
            if (relative, name) not in ALLOWED:
                offenders.append(f"controller/{relative}:{line}: {name}")
    assert not offenders, "use controller/core/timestamps.py (to_status / to_micro / from_status / or_none):\n" + \
        "\n".join(offenders)
