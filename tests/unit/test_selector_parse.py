"""A scale's status.selector (a tenant's custom resource writes it) is read in linear time, by
construction, and as the regex it replaced read every valid selector.

The old reader matched each requirement with a backtracking regex: 'a' + 16,000 spaces + '!'
took 3.9 s with the GIL held (the whole operator stalled). The new one touches each character
a bounded number of times; the count is measured here, not the time.
"""

from __future__ import annotations

import ast
import pathlib
import re
import typing

import hypothesis
import pytest
from hypothesis import strategies as st

from controller.core import platform_scale
from controller.core import selectors

# -- the reader it replaced (commit 683c3a5), the reference for valid selectors ----------------

_OLD_REQUIREMENT = re.compile(r"^\s*(!?)([A-Za-z0-9_./-]+)\s*(?:(==|=|!=)\s*([A-Za-z0-9_.-]*)|"
                              r"\s(in|notin)\s*\(([^)]*)\))?\s*$")


def old_parse_selector(text: str) -> selectors.Selector | None:
    parts, depth, current = [], 0, ""
    for char in text:
        depth += char == "("
        depth -= char == ")"
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    labels: list[tuple[str, str]] = []
    expressions: list[tuple[str, str, tuple[str, ...]]] = []
    for part in parts:
        if not part.strip():
            continue
        match = _OLD_REQUIREMENT.match(part)
        if match is None:
            return None
        negated, key, operator, value, set_operator, values = match.groups()
        if negated:
            if operator or set_operator:
                return None
            expressions.append((key, "DoesNotExist", ()))
        elif operator in ("=", "=="):
            labels.append((key, value or ""))
        elif operator == "!=":
            expressions.append((key, "NotIn", (value or "",)))
        elif set_operator:
            expressions.append((key, "In" if set_operator == "in" else "NotIn",
                                tuple(v.strip() for v in values.split(",") if v.strip())))
        else:
            expressions.append((key, "Exists", ()))
    return selectors.Selector(tuple(sorted(labels)), tuple(expressions))


# -- valid selectors, as Kubernetes writes them (apimachinery's label limits) -------------------

_NAME = st.from_regex(r"[A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?", fullmatch=True)
_PREFIX = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?){0,3}", fullmatch=True)
_KEY = st.one_of(_NAME, st.builds(lambda prefix, name: f"{prefix}/{name}", _PREFIX, _NAME))
_VALUE = st.one_of(st.just(""), _NAME)
_SPACE = st.sampled_from(["", " ", "  ", "\t"])


@st.composite
def _requirement(draw: typing.Callable[..., typing.Any]) -> str:
    key, space = draw(_KEY), draw(_SPACE)
    form = draw(st.sampled_from(["exists", "absent", "=", "==", "!=", "in", "notin"]))
    if form == "exists":
        return key
    if form == "absent":
        return f"!{key}"
    if form in ("in", "notin"):
        values = draw(st.lists(_VALUE, min_size=1, max_size=4))
        return f"{key} {form}{space}({f',{space}'.join(values)})"
    return f"{key}{space}{form}{space}{draw(_VALUE)}"


VALID = st.lists(_requirement(), min_size=1, max_size=12).map(",".join)
# Everything the grammar turns on, and more: short strings of its characters.
TRICKY = st.text(alphabet="ab/.-_ !=(),in\tnot\n\u00a0\u3000", max_size=40)


@hypothesis.settings(max_examples=400, deadline=None)
@hypothesis.given(VALID)
def test_every_valid_selector_reads_as_the_regex_read_it(text: str) -> None:
    assert old_parse_selector(text) is not None
    assert platform_scale.parse_selector(text) == old_parse_selector(text)


@hypothesis.settings(max_examples=1000, deadline=None)
@hypothesis.given(TRICKY)
def test_any_short_text_reads_as_the_regex_read_it(text: str) -> None:
    assert platform_scale.parse_selector(text) == old_parse_selector(text)


@pytest.mark.parametrize("text", [
    "a==b", "a===b", "a=", "a!=", "a ! = b", "!a=b", "!a in (x)", "! a", "!!a", "a in (x", "a in((x)",
    "a in ((x),b", "a in (x),b)", "a=b),c", "ain(x)", "a\u3000in\u3000(x)", "a in=b", "a notin()", " , ,a",
    "a in (x y)", "a\n", "x/y.z-w_v in (p, q ,, r)",
])
def test_the_grammars_corners_read_as_the_regex_read_them(text: str) -> None:
    assert platform_scale.parse_selector(text) == old_parse_selector(text)


# -- linear by construction: each character is looked at a bounded number of times --------------

class Counted(str):
    """A text that counts every character the reader looks at, and refuses any other way in
    (iteration, searching, a regex's C loop would read characters without being counted)."""

    looked = 0

    def __getitem__(self, index: typing.SupportsIndex | slice) -> str:
        part = str.__getitem__(self, index)
        Counted.looked += max(1, len(part))
        return part

    def _refused(self, *_: typing.Any, **__: typing.Any) -> typing.NoReturn:
        raise AssertionError("the reader must look at the text one counted index at a time")

    __iter__ = __contains__ = find = index = rfind = split = strip = partition = _refused


def _looked_at(text: str) -> int:
    Counted.looked = 0
    platform_scale.parse_selector(Counted(text))
    return Counted.looked


ADVERSARIAL = st.tuples(st.text(alphabet="a !=(),in\t", max_size=12), st.integers(1, 3000),
                        st.text(alphabet="a !=(),in\t", max_size=12), st.sampled_from([" ", "a", "(", "=", "\t "])
                        ).map(lambda parts: parts[0] + parts[3] * parts[1] + parts[2])


@hypothesis.settings(max_examples=300, deadline=None)
@hypothesis.given(st.one_of(ADVERSARIAL, VALID, TRICKY))
def test_reading_a_selector_looks_at_each_character_a_bounded_number_of_times(text: str) -> None:
    assert _looked_at(text) <= 8 * (len(text) + 1), f"{_looked_at(text)} looks for {len(text)} characters"


def test_the_reader_uses_no_regex() -> None:
    """`re` runs in C where no count can see it, and holds the GIL: none in the module."""
    tree = ast.parse(pathlib.Path(platform_scale.__file__).read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))
                for alias in node.names} | {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not imported & {"re", "regex"}


def test_the_review_findings_worst_case_is_a_few_looks_a_character() -> None:
    text = "a" + " " * 20000 + "!"
    assert _looked_at(text) <= 3 * len(text)
    assert platform_scale.parse_selector(text) is None


def test_a_selector_past_kubernetes_limits_selects_nothing() -> None:
    longest = ",".join(f"{'p' * 253}/{'k' * 61}{index:02x}=v" for index in range(platform_scale.MAX_REQUIREMENTS))
    assert platform_scale.parse_selector(longest) is not None  # the cap admits 64 of the longest keys
    assert len(longest) <= platform_scale.MAX_SELECTOR_LENGTH
    assert platform_scale.parse_selector(longest + ",x") is None  # a 65th requirement
    assert platform_scale.parse_selector("a=b," + " " * platform_scale.MAX_SELECTOR_LENGTH) is None
    assert platform_scale.parse_selector(f"{'p' * 299}/{'k' * 17}=v") is not None  # 317: the longest key
    assert platform_scale.parse_selector(f"{'p' * 300}/{'k' * 17}=v") is None
    assert platform_scale.parse_selector(f"k={'v' * 63}") is not None
    assert platform_scale.parse_selector(f"k={'v' * 64}") is None
    assert platform_scale.parse_selector(f"k in (a, {'v' * 64})") is None


# -- the poll of scale targets: one target's failure is its own ---------------------------------

def test_one_scale_targets_timeout_or_broken_answer_is_its_own_error_and_every_other_target_is_read() -> None:
    import asyncio

    import kubernetes
    import urllib3

    from controller.adapters import actuator_scale
    from controller.core import world as world_module

    kind = platform_scale.kind_of("argoproj.io", "rollouts")
    keys = [("tenant-a", kind, "slow"), ("tenant-a", kind, "odd"), ("tenant-b", kind, "web")]

    def read(namespace: str, kind: str, name: str) -> world_module.Workload:
        if name == "slow":
            raise urllib3.exceptions.ReadTimeoutError(None, "/apis", "Read timed out.")  # type: ignore[arg-type]
        if name == "odd":
            raise KeyError("spec")
        return world_module.Workload(kind=kind, namespace=namespace, name=name, replicas=2, ready_replicas=2)

    async def run(call: typing.Callable[..., typing.Any], *args: typing.Any) -> typing.Any:
        return call(*args)

    client = kubernetes.client.ApiClient(kubernetes.client.Configuration(host="http://127.0.0.1:9"))
    try:
        actuator = actuator_scale.ScaleActuator(client, lambda _: None, run)
        actuator.read = read  # type: ignore[method-assign]
        found = asyncio.run(actuator.observe(keys))
    finally:
        client.close()
    assert found[keys[0]] == "internal error (ReadTimeoutError)" and found[keys[1]] == "internal error (KeyError)"
    read_b = found[keys[2]]
    assert isinstance(read_b, world_module.Workload) and read_b.replicas == 2


def test_the_search_for_loops_over_tenants_sees_the_scale_poll_and_finds_it_bounded() -> None:
    from controller.adapters import actuator_scale
    from tests.unit import test_tenant_boundary as search

    loops = list(search._tenant_loops(ast.parse(pathlib.Path(actuator_scale.__file__).read_text())))
    assert loops, "the search no longer sees ScaleActuator.observe's loop"
    assert all(search._wrapped(loop) for loop in loops), [ast.unparse(loop.iter) for loop in loops]
