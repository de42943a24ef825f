"""A differential isolation fuzzer (issue 21): whatever tenant A's endpoints answer and
whatever A writes on its own objects, what the operator decides, writes, announces and sends
for tenant B is exactly what it is without A.

hypothesis makes tenant A: every HTTP answer of its Prometheus, health endpoint, receiver,
Railway project and (for `rollout undo`) its API objects — any status, headers, JSON of any
shape with huge or non-finite numbers, enormous arrays, bytes that are not JSON, lying lengths,
delays and drips — and any labels and annotations on its Deployment, ReplicaSets and custom
objects. `tests/tenants.py` runs the operator's real rounds with both tenants; B's outcome must
equal the run without A, no round may raise, and no status patch may carry a non-finite
number. Every break this has found stays below as an explicit example. `make bench` runs it
with a larger budget (CAPLIQUIFY_FUZZ_EXAMPLES).
"""

from __future__ import annotations

import json
import os
import typing

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from controller.adapters import notify
from controller.adapters import prometheus
from controller.adapters import railway
from tests import tenants
from tests.tenants import A, B, Answer, TenantA

EXAMPLES = int(os.environ.get("CAPLIQUIFY_FUZZ_EXAMPLES", "100"))
REVISION = "deployment.kubernetes.io/revision"
DEADLINE = 3.0  # every client deadline in these runs: a hanging A costs seconds, not minutes (B answers in ms)


# -- what a hostile peer can say ------------------------------------------------------------------

NUMBER_TEXTS = st.sampled_from(["NaN", "+Inf", "-Inf", "Inf", "1e400", "-1e400", "1e308", "1e20", "-0", "0x10",
                                "", " 5", "5 ", "1_000", "٣", "１２", "9" * 400, "90"])
HUGE_INTS = st.integers(min_value=-(10 ** 400), max_value=10 ** 400)
NUMBERS = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(), HUGE_INTS,
                    st.sampled_from([1e20, -1e20, 1e308, 253402300800, -1, 0, 2 ** 63]))
LEAVES = st.one_of(st.none(), st.booleans(), NUMBERS, NUMBER_TEXTS, st.text(max_size=20))
JSON = st.recursive(LEAVES, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                                                        max_size=4), max_leaves=16)
LABEL_VALUES = st.one_of(st.sampled_from([A, B, "web", "", "rw"]), st.text(max_size=8))
SAMPLE = st.one_of(st.tuples(NUMBERS, st.one_of(NUMBER_TEXTS, NUMBERS)).map(list), JSON)
SERIES = st.fixed_dictionaries({
    "metric": st.dictionaries(st.sampled_from(["namespace", "workload", "le", "pod", "__name__"]), LABEL_VALUES, max_size=3),
    "value": SAMPLE,
})


@st.composite
def many(draw: st.DrawFn, item: st.SearchStrategy[typing.Any]) -> list[typing.Any]:
    """A short list, or now and then an enormous one made of its own items repeated."""
    items = draw(st.lists(item, max_size=4))
    repeat = draw(st.sampled_from([1, 1, 1, 1, 1, 500, 5_000]))
    return items * repeat if items else items


PROMETHEUS_DOCUMENTS = st.fixed_dictionaries({
    "status": st.sampled_from(["success", "success", "error", 1]),
    "data": st.fixed_dictionaries({"resultType": st.sampled_from(["vector", "scalar", "matrix", "string", "x"]),
                                   "result": st.one_of(many(SERIES), SAMPLE, JSON)}),
}, optional={"error": JSON, "errorType": JSON, "warnings": JSON})

RAILWAY_SAMPLES = st.lists(st.fixed_dictionaries({"ts": st.one_of(NUMBERS, NUMBER_TEXTS), "value": JSON}), max_size=3)
RAILWAY_DOCUMENTS = st.fixed_dictionaries({"data": st.one_of(JSON, st.fixed_dictionaries({}, optional={
    "serviceInstance": st.one_of(JSON, st.fixed_dictionaries({}, optional={
        "serviceName": JSON, "numReplicas": st.one_of(NUMBERS, JSON),
        "latestDeployment": st.one_of(JSON, st.fixed_dictionaries({"id": JSON, "status": st.one_of(
            st.sampled_from(["SUCCESS", "FAILED", "CRASHED", "BUILDING"]), JSON), "meta": JSON}))})),
    "metrics": st.one_of(JSON, st.lists(st.fixed_dictionaries({
        "measurement": st.one_of(st.sampled_from(["CPU_USAGE", "CPU_LIMIT", "MEMORY_USAGE_GB", "MEMORY_LIMIT_GB"]), JSON),
        "values": st.one_of(RAILWAY_SAMPLES, JSON)}), max_size=4)),
    "httpDurationMetrics": st.one_of(JSON, st.fixed_dictionaries({"samples": st.lists(st.fixed_dictionaries(
        {"ts": st.one_of(NUMBERS, NUMBER_TEXTS), "p95": JSON}), max_size=3)})),
    "httpMetricsGroupedByStatus": st.one_of(JSON, st.lists(st.fixed_dictionaries(
        {"statusCode": JSON, "samples": st.one_of(RAILWAY_SAMPLES, JSON)}), max_size=3)),
}))}, optional={"errors": JSON})


def encoded(documents: st.SearchStrategy[typing.Any]) -> st.SearchStrategy[bytes]:
    """A document as JSON (NaN and Infinity literals allowed, as a careless server writes them),
    or bytes that are not JSON at all."""
    return st.one_of(documents.map(lambda document: json.dumps(document).encode()),
                     JSON.map(lambda document: json.dumps(document).encode()),
                     st.binary(max_size=64))


HEADERS = st.lists(st.tuples(
    st.sampled_from(["Content-Type", "Content-Encoding", "Transfer-Encoding", "Location", "Retry-After", "X-Any"]),
    st.one_of(st.sampled_from(["application/json", "text/html", "application/json; charset=utf-16", "gzip", "chunked",
                               "http://169.254.169.254/", "99999999999", "-1"]),
              st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=20))), max_size=3).map(tuple)
STATUSES = st.one_of(st.sampled_from([200, 200, 200, 204, 301, 302, 400, 401, 403, 404, 429, 500, 502, 503]),
                     st.integers(min_value=100, max_value=599))


@st.composite
def answers(draw: st.DrawFn, bodies: st.SearchStrategy[bytes]) -> Answer:
    body = draw(bodies)
    pace = draw(st.sampled_from(["now", "now", "now", "late", "drip", "lie"]))
    return Answer(
        status=draw(STATUSES), headers=draw(HEADERS), body=body,
        delay=0.05 if pace == "late" else 0.0,
        drip=0.002 if pace == "drip" and len(body) < 4096 else 0.0,
        lie_length=draw(st.sampled_from([0, len(body) + 100, len(body) // 2])) if pace == "lie" else None)


# Annotation keys a tenant may set that the operator reads, and values of every kind.
ANNOTATION_KEYS = st.one_of(st.sampled_from([REVISION, tenants.PAUSED, tenants.ACK, "deployment.kubernetes.io/revision-history",
                                             "kubectl.kubernetes.io/last-applied-configuration"]),
                            st.from_regex(r"[a-z]{1,8}\.io/[a-z]{1,8}", fullmatch=True))
ANNOTATION_VALUES = st.one_of(st.sampled_from(["1", "2", "3", "0", "-1", "", "abc", "1e3", "٣", "１２", "10" * 200, "true",
                                               "HighCPU/web by mallory", "\x1b[2J\x07", "3\n4"]),
                              st.text(max_size=64))
ANNOTATIONS = st.dictionaries(ANNOTATION_KEYS, ANNOTATION_VALUES, max_size=4).map(lambda d: tuple(sorted(d.items())))
LABELS = st.dictionaries(st.from_regex(r"[a-z]{1,10}", fullmatch=True),
                         st.from_regex(r"([a-z0-9]([-a-z0-9_.]{0,20}[a-z0-9])?)?", fullmatch=True),
                         max_size=3).map(lambda d: tuple(sorted(d.items())))


@st.composite
def hostile_tenants(draw: st.DrawFn) -> TenantA:
    replicas = draw(st.integers(min_value=0, max_value=2 ** 31 - 1))
    return TenantA(
        prometheus=draw(answers(encoded(PROMETHEUS_DOCUMENTS))),
        health=draw(answers(st.one_of(st.just(b"ok"), st.binary(max_size=64)))),
        receiver=draw(answers(encoded(JSON))),
        railway=draw(answers(encoded(RAILWAY_DOCUMENTS))),
        kube_patch=draw(answers(encoded(JSON))),
        deployment_annotations=draw(ANNOTATIONS),
        deployment_labels=draw(LABELS),
        replica_set_annotations=tuple(draw(st.lists(ANNOTATIONS, max_size=3))),
        object_annotations=draw(ANNOTATIONS),
        replicas=replicas,
        ready_replicas=draw(st.integers(min_value=0, max_value=replicas)),
    )


# -- the explicit examples: every break found, kept --------------------------------------------------

def prometheus_value(timestamp: typing.Any, value: typing.Any) -> Answer:
    document = {"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": {"namespace": A, "workload": "web"}, "value": [timestamp, value]}]}}
    return Answer(body=json.dumps(document).encode())


RAILWAY_HUGE = Answer(body=b'{"data": {"serviceInstance": {"serviceName": "rw", "numReplicas": 1' + b"0" * 400
                      + b', "latestDeployment": {"id": "d", "status": "SUCCESS", "meta": {}}}, "metrics": [{"measurement":'
                      b' "CPU_USAGE", "values": [{"ts": 1, "value": 1' + b"0" * 400 + b'}]}]}}')
FOUND = [
    # Issue 21: a sample timestamp of 1e20 overflowed datetime outside the per-source guard.
    TenantA(prometheus=prometheus_value(1e20, "1")),
    # Issue 21: ±Inf and NaN from Prometheus (the default latency query says +Inf during an outage).
    TenantA(prometheus=prometheus_value(tenants.NOW.timestamp(), "+Inf")),
    TenantA(prometheus=prometheus_value(tenants.NOW.timestamp(), "NaN")),
    TenantA(prometheus=prometheus_value(tenants.NOW.timestamp(), "1e308")),
    # Issue 21: a Railway number of 10**400 made math.isfinite raise and stopped the whole poll.
    TenantA(railway=RAILWAY_HUGE),
    # Issue 21: a non-numeric revision annotation on a tenant's ReplicaSet or Deployment.
    TenantA(deployment_annotations=((REVISION, "5"),), replica_set_annotations=(((REVISION, "abc"),), ((REVISION, "2"),))),
    TenantA(deployment_annotations=((REVISION, "five"),), replica_set_annotations=(((REVISION, "1"),),)),
    TenantA(deployment_annotations=((REVISION, "٣"),), replica_set_annotations=(((REVISION, "1" * 5000),),)),
    # Endpoints that never answer: each is cut at its own deadline.
    TenantA(prometheus=Answer(hang=True), health=Answer(hang=True), receiver=Answer(hang=True), railway=Answer(hang=True)),
]


@pytest.fixture(scope="module")
def peers() -> typing.Iterator[tenants.Peers]:
    started = tenants.Peers().start()
    yield started
    started.stop()


@pytest.fixture(scope="module")
def short_deadlines() -> typing.Iterator[None]:
    """Every client's total deadline cut to DEADLINE (B's peers answer in milliseconds)."""
    patches = [(prometheus, "TIMEOUT_SECONDS"), (railway, "DEADLINE_SECONDS"), (notify, "TIMEOUT_SECONDS")]
    saved = [(module, name, getattr(module, name)) for module, name in patches if hasattr(module, name)]
    for module, name, _ in saved:
        setattr(module, name, DEADLINE)
    yield
    for module, name, value in saved:
        setattr(module, name, value)


@pytest.fixture(scope="module")
def alone(peers: tenants.Peers, short_deadlines: None) -> tenants.Outcome:
    """B's outcome without A, twice: the comparison is only meaningful if a run is repeatable."""
    first, second = (tenants.run_rounds(peers, None)[B] for _ in range(2))
    assert first == second, "a run of tenant B alone is not repeatable: the differential would be noise"
    # The scenario has teeth: B scales, fires, notifies, scales on Railway.
    assert first.scales and first.notifications and any("ScaledUp" in event for event in first.events)
    return first


def assert_isolated(peers: tenants.Peers, alone: tenants.Outcome, tenant: TenantA) -> None:
    outcomes = tenants.run_rounds(peers, tenant)
    together = outcomes[B]
    for field in ("patches", "events", "scales", "notifications", "railway_replicas", "rollbacks"):
        assert getattr(together, field) == getattr(alone, field), f"tenant A changed what B got: {field}"
    assert not peers.refused_patches, f"a status patch the API server refuses: {peers.refused_patches[:1]}"


@pytest.mark.parametrize("tenant", FOUND, ids=[f"found-{index}" for index in range(len(FOUND))])
def test_every_break_found_stays_fixed(peers: tenants.Peers, alone: tenants.Outcome, tenant: TenantA) -> None:
    assert_isolated(peers, alone, tenant)


@settings(max_examples=EXAMPLES, deadline=None, derandomize=not os.environ.get("CAPLIQUIFY_FUZZ_EXAMPLES"),
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example,
                                 HealthCheck.function_scoped_fixture])
@given(tenant=hostile_tenants())
@example(tenant=TenantA())
def test_no_tenant_can_change_what_another_is_told_written_or_sent(
        peers: tenants.Peers, alone: tenants.Outcome, tenant: TenantA) -> None:
    assert_isolated(peers, alone, tenant)
