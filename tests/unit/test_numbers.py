"""Numbers are finite and in range or they are errors (issue 21): core/numbers.py, the one
constructor every adapter parse uses; status never carries a non-finite number (bounded.py);
`decide` never raises on any input, finite or not."""

from __future__ import annotations

import ast
import datetime
import json
import math
import pathlib
import sys
import typing

import hypothesis
import pydantic
import pytest
from hypothesis import strategies as st

from controller import crdgen
from controller.api import scalingpolicy as api
from controller.core import bounded
from controller.core import numbers
from controller.core import readiness
from controller.core import scaling
from controller.core import status

FLOAT_MAX = sys.float_info.max
# Everything JSON (Python's json accepts NaN and Infinity too) or an annotation can hold.
ANYTHING = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(min_value=10**300, max_value=10**400),
    st.floats(), st.text(max_size=80),
    st.sampled_from(["NaN", "nan", "+Inf", "-Inf", "Infinity", "1e400", "-1e400", "1e20", "①②", "١٢٣", "１２",
                     " 7 ", "0x10", "1_000", "", "5e-324", "9" * 70]),
    st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


@hypothesis.given(ANYTHING, st.floats(allow_nan=False), st.floats(allow_nan=False))
@hypothesis.settings(max_examples=600, deadline=None, database=None)
def test_finite_returns_a_finite_float_in_range_or_raises_number_error_only(value: object, a: float, b: float) -> None:
    lo, hi = min(a, b), max(a, b)
    try:
        number = numbers.finite(value, lo, hi)
    except numbers.NumberError:
        return
    assert type(number) is float and math.isfinite(number) and lo <= number <= hi


@hypothesis.given(ANYTHING)
@hypothesis.settings(max_examples=400, deadline=None, database=None)
def test_every_constructor_raises_only_its_typed_error(value: object) -> None:
    for build in (numbers.finite, numbers.reading, lambda v: numbers.integer(v, 0, 2**63 - 1), numbers.epoch):
        try:
            result = build(value)
        except numbers.NumberError:
            continue
        if isinstance(result, float):
            assert not math.isnan(result)
    assert numbers.finite_or_none(value) is None or math.isfinite(numbers.finite_or_none(value))  # type: ignore[arg-type]
    assert isinstance(numbers.is_nan(value), bool)


@pytest.mark.parametrize("value", [10**400, -(10**400), "NaN", "+Inf", "-Inf", float("nan"), float("inf"), True, False,
                                   None, "1e400", "", "abc", [1], {"a": 1}, "9" * 70])
def test_finite_refuses(value: object) -> None:
    with pytest.raises(numbers.NumberError):
        numbers.finite(value)


def test_finite_reads_json_numbers_and_numeric_text() -> None:
    assert numbers.finite("1.5") == 1.5 and numbers.finite(" 7 ") == 7.0 and numbers.finite(3) == 3.0
    assert numbers.finite(5e-324) == 5e-324 and numbers.finite(FLOAT_MAX) == FLOAT_MAX
    with pytest.raises(numbers.NumberError, match="out of range"):
        numbers.finite(11, 0, 10)


def test_a_reading_keeps_infinity_and_refuses_nan() -> None:
    """+Inf is Prometheus' "past the top bucket" and compares as such; NaN is no data."""
    assert numbers.reading("+Inf") == math.inf and numbers.reading("-Inf") == -math.inf
    assert numbers.reading(10**400) == math.inf
    with pytest.raises(numbers.NumberError, match="NaN"):
        numbers.reading("NaN")
    assert numbers.is_nan("NaN") and numbers.is_nan(float("nan")) and not numbers.is_nan("1") and not numbers.is_nan([])


@pytest.mark.parametrize("text", ["①②⑦", "١٢٣", "１２", "1.0", "0x1", "1e3", "", " ", "+", "9" * 31])
def test_an_integer_is_ascii_decimal_digits_only(text: str) -> None:
    """`"①②⑦".isdigit()` is True and `int("١٢٣")` is 123: neither is a revision here."""
    with pytest.raises(numbers.NumberError):
        numbers.integer(text, 0, 10**40)


def test_an_integer_reads_an_annotation() -> None:
    assert numbers.integer("17", 0, 100) == 17 and numbers.integer(" 3 ", 0, 100) == 3 and numbers.integer(4, 0, 9) == 4
    for bad in (True, 1.0, None, -1, 101):
        with pytest.raises(numbers.NumberError):
            numbers.integer(bad, 0, 100)


@pytest.mark.parametrize("value", [1e20, -1, 253402300800, float("inf"), "NaN", 10**400])
def test_an_epoch_datetime_cannot_hold_is_an_error_not_an_overflow(value: object) -> None:
    with pytest.raises(numbers.NumberError):
        numbers.epoch(value)


def test_an_epoch_is_exact_to_year_9999() -> None:
    assert numbers.epoch(0) == numbers.EPOCH
    assert numbers.epoch("1700000000.5") == datetime.datetime(2023, 11, 14, 22, 13, 20, 500000, tzinfo=datetime.timezone.utc)
    assert numbers.epoch(numbers.MAX_EPOCH).year == 9999


# -- status never carries a non-finite number: bounded.fit over all three status models --------

SCHEMAS = {info.kind: crdgen.build_schema(model)["properties"]["status"] for model, info in crdgen.KINDS}
MODELS = {info.kind: model.model_fields["status"].annotation for model, info in crdgen.KINDS}
EXTREME = st.one_of(st.sampled_from([math.nan, math.inf, -math.inf, 1e308, -1e308, 5e-324, 0.0]), st.floats())


def of_schema(schema: typing.Mapping[str, typing.Any], depth: int = 0) -> st.SearchStrategy[typing.Any]:
    """Values of the schema's shape whose numbers are NaN, ±Inf, 1e308, huge ints."""
    kind = schema.get("type")
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    if kind == "string":
        return st.just("2026-11-30T01:00:00Z") if schema.get("format") == "date-time" else st.text(max_size=5)
    if kind == "integer":
        return st.one_of(st.integers(-(10**30), 10**30), st.sampled_from([0, 2**63, 10**400]), EXTREME)
    if kind == "number":
        return st.one_of(EXTREME, st.sampled_from([10**400]))
    if kind == "boolean":
        return st.booleans()
    if kind == "array":
        return st.lists(of_schema(schema.get("items") or {}, depth + 1), max_size=3 if depth < 3 else 1)
    if kind == "object" or "properties" in schema:
        properties = schema.get("properties") or {}
        if not properties and isinstance(schema.get("additionalProperties"), dict):
            return st.dictionaries(st.text(min_size=1, max_size=4), of_schema(schema["additionalProperties"], depth + 1),
                                   max_size=3)
        return st.fixed_dictionaries({}, optional={k: of_schema(v, depth + 1) for k, v in properties.items()})
    return st.one_of(EXTREME, st.text(max_size=3))


def _numbers(value: typing.Any) -> typing.Iterator[typing.Any]:
    if isinstance(value, dict):
        for item in value.values():
            yield from _numbers(item)
    elif isinstance(value, list):
        for item in value:
            yield from _numbers(item)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        yield value


@pytest.mark.parametrize("kind", sorted(SCHEMAS))
def test_no_status_ever_carries_a_non_finite_or_out_of_range_number(kind: str) -> None:
    @hypothesis.given(of_schema(SCHEMAS[kind]))
    @hypothesis.settings(max_examples=150, deadline=None, database=None, suppress_health_check=list(hypothesis.HealthCheck))
    def check(raw: dict[str, typing.Any]) -> None:
        fitted = bounded.fit_fields(raw, SCHEMAS[kind])
        json.dumps(fitted, allow_nan=False)  # ValueError on NaN or Infinity anywhere
        for number in _numbers(fitted):
            assert math.isfinite(number) and abs(number) <= max(FLOAT_MAX, 0)
            if isinstance(number, int):
                assert -(2**63 - 1) <= number <= 2**63 - 1
        try:
            MODELS[kind].model_validate(fitted)  # type: ignore[union-attr]
        except pydantic.ValidationError as error:
            # A number where the model wants an int (1e308 for a count) is not this test's
            # concern; a non-finite number would be (pydantic refuses NaN nowhere by default).
            assert all(e["type"] not in ("finite_number",) for e in error.errors())
        assert bounded.fit_fields(fitted, SCHEMAS[kind]) == fitted  # stable: no rewrite next round

    check()


def test_a_non_finite_value_in_a_list_item_is_left_out_not_null() -> None:
    """Inside a list a null would be pruned by the API server, so status would differ from
    what was fitted every round (a write every round): the key is left out instead."""
    schema = SCHEMAS["AlertPolicy"]
    fitted = bounded.fit_fields({"alerts": [{"rule": "r", "service": "s", "state": "Firing", "value": math.inf}],
                                 "firing": 1}, schema)
    assert fitted["alerts"] == [{"rule": "r", "service": "s", "state": "Firing"}]
    assert bounded.fit_fields({"metrics": {"cpu": math.nan, "memory": 3.0}}, SCHEMAS["MonitoredService"]) == {
        "metrics": {"cpu": None, "memory": 3.0}}  # a merge patch's None: removed


# -- decide never raises ------------------------------------------------------------------------

NOW = datetime.datetime(2026, 11, 1, 13, 0, tzinfo=datetime.timezone.utc)
NUMBERS = st.one_of(st.floats(), st.sampled_from([1e308, -1e308, math.inf, -math.inf, math.nan, 5e-324, 0.0]))
VALUES = st.one_of(st.none(), NUMBERS)
THRESHOLDS = st.one_of(st.floats(0, FLOAT_MAX), st.sampled_from([0.0, 5e-324, 1e300, 1e308, FLOAT_MAX, math.inf]))  # YAML has .inf


@st.composite
def decisions(draw: st.DrawFn) -> tuple[typing.Any, ...]:
    metrics = []
    for kind in draw(st.lists(st.sampled_from(["cpu", "memory", "latencyP95", "requestQueue"]), min_size=1, max_size=3,
                              unique=True)):
        a, b = draw(THRESHOLDS), draw(THRESHOLDS)
        hypothesis.assume(a != b)
        metric = {"type": kind, "scaleUp": max(a, b), "scaleDown": min(a, b)}
        if draw(st.booleans()):
            metric["target"] = draw(st.floats(min(a, b), max(a, b), allow_infinity=False).filter(math.isfinite))
        metrics.append(metric)
    policy = api.ScalingPolicySpec.model_validate({
        "targetRef": {"monitoredService": "web"}, "metrics": metrics,
        "minReplicas": 1, "maxReplicas": draw(st.integers(1, 10000)),
        "predictive": {"enabled": draw(st.booleans()), "horizonSeconds": 60},
        "behavior": {"scaleUp": {"stabilizationWindowSeconds": 0, "cooldownSeconds": 0},
                     "scaleDown": {"stabilizationWindowSeconds": 0, "cooldownSeconds": 0}}})
    samples = {(m["type"], None): scaling.Sample(draw(VALUES), NOW) for m in metrics}
    history = {(m["type"], None): tuple((NOW - datetime.timedelta(seconds=20 * i), draw(NUMBERS))
                                        for i in range(draw(st.integers(0, 9)), 0, -1)) for m in metrics}
    current = draw(st.integers(0, 10000))
    ready = draw(st.one_of(st.none(), st.integers(0, 10000)))
    state = scaling.State(observing_since=NOW - datetime.timedelta(hours=1), history=history)
    return policy, current, samples, state, ready


@hypothesis.given(decisions())
@hypothesis.settings(max_examples=300, deadline=None, database=None)
def test_decide_never_raises_on_any_number_and_stays_within_bounds(case: tuple[typing.Any, ...]) -> None:
    policy, current, samples, state, ready = case
    outcome = scaling.decide(policy, current, samples, state, NOW, ready=ready)
    if current == 0 and policy.activation is None:
        # Scaled to zero by hand: scaling is disabled there (HPA's rule), whatever the numbers.
        assert (outcome.desired, outcome.scaling_active.reason) == (0, "ScalingDisabled")
    else:
        assert policy.minReplicas <= outcome.desired <= policy.maxReplicas
    assert isinstance(outcome.reason, str) and len(outcome.reason) < 4096


def test_decide_on_1e308_on_the_predictive_path() -> None:
    """The finding: demand history at 1e308 overflowed the fit (inf - inf) and `math.ceil(nan)` raised."""
    policy = api.ScalingPolicySpec.model_validate({
        "targetRef": {"monitoredService": "web"}, "metrics": [{"type": "cpu", "scaleUp": 70, "scaleDown": 30}],
        "maxReplicas": 20, "predictive": {"enabled": True, "horizonSeconds": 60},
        "behavior": {"scaleUp": {"stabilizationWindowSeconds": 0, "cooldownSeconds": 0},
                     "scaleDown": {"stabilizationWindowSeconds": 0, "cooldownSeconds": 0}}})
    history = {("cpu", None): tuple((NOW - datetime.timedelta(seconds=20 * i), 1e308 * (i % 2) - 1e308 * 0.5)
                                    for i in range(9, 0, -1))}
    state = scaling.State(observing_since=NOW - datetime.timedelta(hours=1), history=history)
    outcome = scaling.decide(policy, 4, {("cpu", None): scaling.Sample(1e308, NOW)}, state, NOW, ready=4)
    assert outcome.direction == "Up" and 4 < outcome.desired <= 20


def test_a_status_patch_without_a_schema_still_carries_no_infinity() -> None:
    """Every status patch goes through bounded.fit, schema or not: a kind without a known
    schema must not write `Infinity` either (the API server refuses the whole patch)."""
    assessment = readiness.Assessment({"metrics": {"latencyP95": math.inf, "cpu": 3.0},
                                       "alerts": [{"rule": "r", "value": math.nan}]}, ())
    patch = status.build_status_patch({}, assessment, NOW, 1, None)
    json.dumps(patch, allow_nan=False)
    assert patch["metrics"] == {"latencyP95": None, "cpu": 3.0} and patch["alerts"] == [{"rule": "r"}]


# -- a search: numbers from outside are built by core/numbers only --------------------------------

REPO = pathlib.Path(__file__).resolve().parents[2]
# Conversions that stay, each with why it cannot raise on a tenant's value. Anything new that
# converts with float()/int()/fromtimestamp/math.is* in an adapter must go through core/numbers
# (or be added here with its reason, in review).
ALLOWED = {
    ("kubernetes_lease.py", "int(duration)"): "the operator's own flag",
    ("kubernetes_probes.py", "int(applied.metadata.generation)"): "the API server's int64, typed by its client",
    ("kubernetes_scale.py", "int(scale.spec.replicas or 0)"): "the API server's int32, typed by its client (None: omitted when 0)",
    ("source_metrics_api.py", "float(kubernetes.utils.parse_quantity(text))"):
        "float of a Decimal never raises (inf/nan at worst), inside try; the result goes through numbers",
    ("source_prometheus.py", "math.isnan(sample.value)"): "a float core/numbers built (never a huge int)",
    ("prometheus.py", "math.isfinite(sample[1])"): "a float core/numbers built (a range keeps finite points only)",
    ("railway.py", "math.ceil(seconds)"): "a wait core/ratelimit bounded to [0, MAX_WAIT_SECONDS]",
    ("railway.py", "round(100 * failed / all_requests, 3)"):
        "floats built by numbers, all_requests > 0: inf or nan at worst, then numbers.finite_or_none",
    ("railway.py", "round(100 * latest[usage][1] / latest[limit][1], 3)"):
        "floats built by numbers, the limit > 0: inf at worst, then numbers.finite_or_none",
    ("view.py", "int(current['metadata']['resourceVersion'])"): "inside try/except (ValueError, TypeError, KeyError)",
    ("egress.py", "int(found)"): "an address family getaddrinfo returned (a small IntEnum), never a tenant's text",
    ("view.py", "int(incoming['metadata']['resourceVersion'])"): "inside try/except (ValueError, TypeError, KeyError)",
}


def test_adapters_convert_numbers_only_through_core_numbers() -> None:
    """The class of bug behind three findings (OverflowError from float(10**400) and
    fromtimestamp(1e20), ValueError from int("abc")): a conversion outside core/numbers."""
    found = set()
    for path in [*sorted((REPO / "controller/adapters").glob("*.py")), REPO / "controller/operator/view.py"]:
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            name = ast.unparse(node.func)
            if not (name in ("float", "int") or name.endswith("fromtimestamp") or name in (
                    "math.isfinite", "math.isnan", "math.isinf", "math.ceil", "math.floor", "round")):
                continue
            argument = node.args[0]
            if isinstance(argument, ast.Constant) or ast.unparse(argument).startswith("numbers."):
                continue
            found.add((path.name, ast.unparse(node)))
    unexplained = sorted(found - set(ALLOWED))
    assert not unexplained, f"convert through core/numbers (or say why it cannot raise): {unexplained}"
    assert not set(ALLOWED) - found, f"stale entries: {sorted(set(ALLOWED) - found)}"
