"""Fair shares (issue 21, "Starvation and memory"): one namespace's slow or large answers
cannot hold what another namespace needs, over real loopback servers.

- `FairShares`, searched by hypothesis: never more than its places, never more than a key's
  share, never a free place while someone who may take it waits, and everyone served;
- one namespace's 32 hanging Prometheus queries: another namespace's query reaches its server
  at once and the round ends within one deadline (it took four);
- a health check never overlaps itself, and a neighbour's 1 s check keeps its schedule;
- Railway polls, notifications and alerting rounds: one namespace's hanging endpoints hold
  back only its own; the scaler decides each policy when its samples arrive;
- every client of tenants' endpoints hands out fair shares (a search of the tree).

Answer sizes, the parser process and the memory budget: test_answer_memory.py.
"""

from __future__ import annotations

import ast
import asyncio
import datetime
import json
import pathlib
import time
import typing

from aiohttp import web
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from controller.adapters import budget
from controller.adapters import egress
from controller.adapters import http_check
from controller.adapters import metric_source
from controller.adapters import notify
from controller.adapters import prometheus
from controller.adapters import shares
from controller.adapters import source_prometheus
from controller.core import sources as core_sources
from controller.core import targets
from controller.operator import alerter as alerter_module
from controller.operator import guard as guard_module
from controller.operator import loop
from controller.operator import metrics
from controller.operator import railway as railway_module
from controller.operator import scaler as scaler_module
from controller.operator import sources as sources_module
from controller.operator import view as view_module

REPO = pathlib.Path(__file__).resolve().parents[2]


# -- FairShares ---------------------------------------------------------------------------

@settings(max_examples=200, deadline=None)
@given(total=st.integers(1, 8), share=st.integers(1, 8),
       holders=st.lists(st.tuples(st.integers(0, 4), st.integers(0, 5)), min_size=1, max_size=40))
def test_fair_shares_keep_a_reserve_never_idle_and_serve_everyone(
        total: int, share: int, holders: list[tuple[int, int]]) -> None:
    per_key = min(share, total)
    pool = shares.FairShares(total, per_key)
    served: list[int] = []

    def check() -> None:
        assert pool.busy <= total
        assert pool.busy == sum(pool.held.values())
        # Places held past a share were taken leaving the reserve free: a newcomer always had
        # somewhere to go beside one hog.
        assert sum(max(0, count - per_key) for count in pool.held.values()) <= total - pool.reserve
        if len(pool.held) == 1 and total > per_key:
            assert pool.busy <= max(per_key, total - pool.reserve)
        assert not any(pool.may_take(key) for key in pool._waiting)  # nobody waits who may go

    async def holder(index: int, key: int, steps: int) -> None:
        async with pool.hold(key):
            check()
            for _ in range(steps):
                await asyncio.sleep(0)
                check()
        served.append(index)

    async def run() -> None:
        await asyncio.gather(*(holder(i, key, steps) for i, (key, steps) in enumerate(holders)))

    asyncio.run(run())
    assert sorted(served) == list(range(len(holders)))
    assert pool.busy == 0 and not pool.held and pool.waiting() == 0


def test_one_tenant_alone_uses_most_of_the_pool_and_a_newcomer_still_goes_at_once() -> None:
    async def run() -> tuple[int, int, bool]:
        pool = shares.FairShares(8, 2)
        for _ in range(6):
            await pool.acquire("hog")
        seventh = asyncio.ensure_future(pool.acquire("hog"))
        await asyncio.sleep(0)
        alone = pool.held["hog"]
        await asyncio.wait_for(pool.acquire("newcomer"), 0.1)  # the reserve: at once
        await asyncio.wait_for(pool.acquire("newcomer"), 0.1)
        blocked = not seventh.done()
        seventh.cancel()
        return alone, pool.busy, blocked

    alone, busy, blocked = asyncio.run(run())
    assert (alone, busy, blocked) == (6, 8, True)


def test_a_freed_place_goes_to_the_key_holding_fewest_and_cancelled_waiters_give_theirs_back() -> None:
    async def run() -> list[str]:
        pool = shares.FairShares(2, 2)
        order: list[str] = []
        release_a = asyncio.Event()

        async def hold(key: str, until: asyncio.Event | None = None) -> None:
            async with pool.hold(key):
                order.append(key)
                if until is not None:
                    await until.wait()

        first = [asyncio.create_task(hold("a", release_a)) for _ in range(2)]  # a fills the pool
        await asyncio.sleep(0)
        more_a = [asyncio.create_task(hold("a")) for _ in range(3)]  # a queues first...
        await asyncio.sleep(0)
        cancelled = asyncio.create_task(hold("c"))
        b = asyncio.create_task(hold("b"))  # ...b later, yet b goes next
        await asyncio.sleep(0)
        cancelled.cancel()
        release_a.set()
        await asyncio.gather(*first, *more_a, b, return_exceptions=True)
        assert pool.busy == 0 and pool.waiting() == 0
        return order

    order = asyncio.run(run())
    assert order[:2] == ["a", "a"] and order[2] == "b" and "c" not in order


# -- loopback servers -------------------------------------------------------------------

class Servers:
    """aiohttp servers on 127.0.0.1: `routes` path -> handler; records when each path was hit."""

    def __init__(self, routes: dict[str, typing.Callable[[web.Request], typing.Awaitable[web.StreamResponse]]]) -> None:
        self.routes = routes
        self.hits: list[tuple[float, str]] = []

    async def __aenter__(self) -> str:
        app = web.Application()
        for path, handler in self.routes.items():
            async def recorded(request: web.Request, handler: typing.Any = handler, path: str = path) -> web.StreamResponse:
                self.hits.append((time.monotonic(), path))
                return typing.cast(web.StreamResponse, await handler(request))
            app.router.add_route("*", path, recorded)
        self.runner = web.AppRunner(app, shutdown_timeout=0.1)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        return f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]

    async def __aexit__(self, *_: object) -> None:
        await self.runner.cleanup()


async def hang(request: web.Request) -> web.Response:
    await asyncio.sleep(60)
    return web.Response()


def vector(pairs: typing.Iterable[tuple[str, str]], value: str = "42") -> bytes:
    return json.dumps({"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": {"namespace": ns, "workload": wl}, "value": [1764000000.5, value]} for ns, wl in pairs]}}).encode()


async def _no_secret(*_: str) -> str | None:
    return None


def test_one_namespaces_32_hanging_queries_do_not_delay_another_namespace(monkeypatch: typing.Any) -> None:
    deadline = 1.0
    monkeypatch.setattr(prometheus, "TIMEOUT_SECONDS", deadline)
    monkeypatch.setattr(source_prometheus, "ROUND_SECONDS", deadline + 0.5)

    async def fast(request: web.Request) -> web.Response:
        return web.Response(body=vector([("b", "web")]), content_type="application/json")

    async def run() -> tuple[float, float, dict]:
        servers = Servers({"/a/api/v1/query": hang, "/b/api/v1/query": fast})
        async with servers as base:
            client = egress.GuardedClient(True, limit=budget.PROMETHEUS_CONNECTIONS, per_key=budget.PROMETHEUS_PER_NAMESPACE)
            source = source_prometheus.BatchedPrometheus(client, _no_secret, "2m", lambda _: None)
            requests = [metric_source.Request(("ScalingPolicy", "a", f"p{i}"), ("custom", f"q{i}"), targets.Target(
                "a", "Deployment", f"w{i}", prometheus_url=f"{base}/a", custom={f"q{i}": f"slow_query_{i}"}))
                for i in range(32)]
            requests.append(metric_source.Request(("ScalingPolicy", "b", "p"), ("cpu", None),
                                                  targets.Target("b", "Deployment", "web", prometheus_url=f"{base}/b")))
            started = time.monotonic()
            samples = await source.read(requests)
            took = time.monotonic() - started
            await client.close()
        b_hit = next(at for at, path in servers.hits if path.startswith("/b")) - started
        return took, b_hit, samples

    took, b_hit, samples = asyncio.run(run())
    b = samples[("ScalingPolicy", "b", "p")][("cpu", None)]
    assert b.value == 42.0 and b.error is None
    assert b_hit < 0.5, f"namespace b's query waited {b_hit:.2f}s behind namespace a's"
    # One deadline and the round's margin (it took 4 deadlines: 32 queries, 8 at a time).
    assert took < 2 * deadline, f"the round took {took:.2f}s"
    a_errors = {samples[("ScalingPolicy", "a", f"p{i}")][("custom", f"q{i}")].error for i in range(32)}
    assert None not in a_errors


NOW = datetime.datetime(2026, 6, 1, 12, 0, tzinfo=datetime.timezone.utc)


def railway_answer() -> bytes:
    """A poll's answer: 0.5 of a 2-CPU limit used (cpu 25%)."""
    ts = int(NOW.timestamp())
    return json.dumps({"data": {
        "serviceInstance": {"serviceName": "web", "numReplicas": 2, "latestDeployment": {"id": "d1", "status": "SUCCESS"}},
        "metrics": [{"measurement": "CPU_USAGE", "values": [{"ts": ts, "value": 0.5}]},
                    {"measurement": "CPU_LIMIT", "values": [{"ts": ts, "value": 2}]}]}}).encode()


class _Marks:
    def mark(self, *keys: typing.Any) -> None:
        pass


class _Secrets:
    def secret_value(self, namespace: str, name: str, key: str) -> str:
        return f"token-{namespace}"


def _railway_service(namespace: str, name: str, endpoint: str) -> dict[str, typing.Any]:
    return {"apiVersion": "ops.capliquify.io/v1alpha1", "kind": "MonitoredService",
            "metadata": {"namespace": namespace, "name": name, "generation": 1, "resourceVersion": "1",
                         "uid": f"{namespace}-{name}"},
            "spec": {"target": {"railway": {"projectId": "p-1", "environmentId": "env-1", "serviceId": f"svc-{name}",
                                            "endpoint": endpoint, "tokenSecretRef": {"name": "railway", "key": "token"}}}}}


def test_one_namespaces_hanging_railway_services_do_not_hold_another_namespaces_poll(monkeypatch: typing.Any) -> None:
    deadline = 1.0
    monkeypatch.setattr(railway_module.railway, "DEADLINE_SECONDS", deadline)
    monkeypatch.setattr(railway_module, "POLL_SECONDS", deadline + 0.5)

    async def answer(request: web.Request) -> web.Response:
        return web.Response(body=railway_answer(), content_type="application/json")

    async def run() -> tuple[float, float, railway_module.RailwayWatcher]:
        servers = Servers({"/a/graphql": hang, "/b/graphql": answer})
        async with servers as base:
            view = view_module.View()
            for index in range(24):  # namespace a: 24 services whose endpoint never answers
                view.upsert(_railway_service("a", f"s{index}", f"{base}/a/graphql"))
            view.upsert(_railway_service("b", "web", f"{base}/b/graphql"))
            watcher = railway_module.RailwayWatcher(view, _Marks(), _Secrets(), f"{base}/b/graphql",  # type: ignore[arg-type]
                                                    allow_loopback=True, clock=lambda: NOW)
            started = time.monotonic()
            await watcher.poll()
            took = time.monotonic() - started
            await watcher.close()
        b_hit = next(at for at, path in servers.hits if path.startswith("/b")) - started
        return took, b_hit, watcher

    took, b_hit, watcher = asyncio.run(run())
    b = watcher.samples("b", "env-1/svc-web")
    assert b is not None and b[("cpu", None)].value == 25.0
    assert b_hit < 0.5, f"namespace b's poll waited {b_hit:.2f}s behind namespace a's"
    assert took < 2 * deadline, f"the poll took {took:.2f}s"  # 24 hanging services, 8 at a time: 3 deadlines
    assert watcher.view.world.platform_errors.get(("a", "Railway", "env-1/svc-s0")) is not None


# -- health checks ------------------------------------------------------------------------

def _service(namespace: str, name: str, url: str, interval: int, timeout: int) -> dict[str, typing.Any]:
    return {"apiVersion": "ops.capliquify.io/v1alpha1", "kind": "MonitoredService",
            "metadata": {"namespace": namespace, "name": name, "generation": 1, "uid": f"{namespace}-{name}",
                         "resourceVersion": "1"},
            "spec": {"target": {"kubernetes": {"kind": "Deployment", "name": name}},
                     "healthChecks": [{"name": "http", "intervalSeconds": interval, "failureThreshold": 3,
                                       "http": {"url": url, "timeoutSeconds": timeout}}]}}


class NoEvents:
    def create_event(self, obj: typing.Any, event: typing.Any, now: typing.Any) -> None:
        pass


async def _no_metrics(*_: typing.Any) -> dict:
    return {}


def test_a_check_never_overlaps_itself_and_a_neighbours_1s_check_keeps_its_schedule() -> None:
    seconds = 6.0

    async def ok(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def run() -> tuple[list[float], int, float, int]:
        servers = Servers({"/slow": hang, "/ok": ok})
        async with servers as base:
            view = view_module.View()
            for index in range(24):  # a namespace of slow endpoints: 24 checks, each past its 1 s timeout
                view.upsert(_service("slow", f"s{index}", f"{base}/slow", 1, 1))
            view.upsert(_service("b", "web", f"{base}/ok", 1, 1))
            evaluator = loop.Evaluator(view, NoEvents(), 60.0, 4)  # type: ignore[arg-type]
            checker = http_check.HttpChecker(allow_loopback=True)
            guard = guard_module.Guard(view, evaluator, checker, None, _no_metrics)  # type: ignore[arg-type]
            guard._probes = shares.FairShares(8, 2)  # small, so that the slow namespace could fill it
            skipped = metrics.HEALTH_CHECKS_SKIPPED._value.get()
            most_tasks = 0
            runner = asyncio.create_task(guard.run_checks())
            started = time.monotonic()
            while time.monotonic() - started < seconds:
                await asyncio.sleep(0.05)
                most_tasks = max(most_tasks, len(guard._tasks))
            runner.cancel()
            for task in list(guard._tasks):
                task.cancel()
            await asyncio.gather(runner, *guard._tasks, return_exceptions=True)
            await checker.close()
        b_hits = [at - started for at, path in servers.hits if path == "/ok"]
        slow_hits = sum(1 for _, path in servers.hits if path == "/slow")
        return b_hits, most_tasks, metrics.HEALTH_CHECKS_SKIPPED._value.get() - skipped, slow_hits

    b_hits, most_tasks, skipped, slow_hits = asyncio.run(run())
    # Never more runs in flight than checks (the old scheduler started one per due time).
    assert most_tasks <= 25, most_tasks
    assert skipped > 0
    # The slow namespace probes at most 6 at a time (past its share of 2 only while 2 stay free).
    assert slow_hits <= 6 * (seconds + 1)
    # b's 1 s check ran about once a second throughout (spread start within its first interval).
    assert len(b_hits) >= seconds - 2, b_hits
    gaps = [later - earlier for earlier, later in zip(b_hits, b_hits[1:], strict=False)]
    assert max(gaps) < 1.6, gaps


# -- notifications ------------------------------------------------------------------------

def test_one_namespaces_hanging_receivers_do_not_hold_another_namespaces_notification(monkeypatch: typing.Any) -> None:
    monkeypatch.setattr(notify, "TIMEOUT_SECONDS", 1.0)

    async def received(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def run() -> float:
        servers = Servers({"/a": hang, "/b": received})
        async with servers as base:
            poster = notify.HttpPoster(allow_loopback=True)

            async def post(namespace: str) -> None:
                with shares.tenant(namespace):
                    try:
                        await poster.post(f"{base}/{namespace}", json_body={})
                    except notify.DeliveryError:
                        pass  # a's: cut at the deadline

            started = time.monotonic()
            hanging = [asyncio.create_task(post("a")) for _ in range(budget.NOTIFY_CONNECTIONS * 2)]
            await asyncio.sleep(0.1)
            await post("b")
            b_done = time.monotonic() - started
            await asyncio.gather(*hanging)
            await poster.close()
        return b_done

    assert asyncio.run(run()) < 0.6  # not after a's first wave of deadlines (1 s)


def test_an_alerting_round_waits_one_deadline_at_most_and_never_restarts_a_delivery_in_flight(
        monkeypatch: typing.Any) -> None:
    monkeypatch.setattr(alerter_module, "DELIVERY_WAIT_SECONDS", 0.5)
    view = view_module.View()
    evaluator = loop.Evaluator(view, NoEvents(), 60.0, 4)  # type: ignore[arg-type]
    alerter = alerter_module.Alerter(view, evaluator, None, None, {})  # type: ignore[arg-type]
    starts: list[str] = []

    async def deliver(key: typing.Any, spec: typing.Any, delivery: dict[str, typing.Any]) -> None:
        starts.append(delivery["key"])
        if key[1] == "a":
            await asyncio.sleep(30)  # a receiver that never answers (its own deadline is longer)

    alerter._deliver = deliver  # type: ignore[method-assign]

    async def run() -> tuple[float, float]:
        sends = [(("AlertPolicy", ns, "p"), None, {"key": f"{ns}-{i}"}) for ns in ("a", "b") for i in range(3)]
        started = time.monotonic()
        await alerter._dispatch(sends)  # type: ignore[arg-type]
        first = time.monotonic() - started
        started = time.monotonic()
        await alerter._dispatch(sends)  # type: ignore[arg-type]
        second = time.monotonic() - started
        for task in list(alerter._sending.values()):
            task.cancel()
        await asyncio.sleep(0)
        return first, second

    first, second = asyncio.run(run())
    assert first < 1.0 and second < 1.0
    # b's ran in both rounds; a's, still in flight after the first, were not started again.
    assert sorted(starts) == sorted(["a-0", "a-1", "a-2", "b-0", "b-1", "b-2", "b-0", "b-1", "b-2"])


# -- the class of bug, searched for -----------------------------------------------------------

def _calls(tree: ast.AST, name: str) -> list[ast.Call]:
    return [node for node in ast.walk(tree) if isinstance(node, ast.Call) and (
        (isinstance(node.func, ast.Attribute) and node.func.attr == name)
        or (isinstance(node.func, ast.Name) and node.func.id == name))]


def test_every_client_that_reaches_tenants_hands_out_fair_shares() -> None:
    """A new client of tenants' endpoints cannot be first-come-first-served by accident: every
    class that builds a guarded connector or opens a guarded stream (egress.py's rule: the only
    ways out to tenants) also builds a FairShares and charges its requests to `shares.key_for`,
    and every GuardedClient is given its per-namespace share explicitly."""
    sources = {path: ast.parse(path.read_text()) for path in (REPO / "controller").rglob("*.py")}
    classes = 0
    for path, tree in sources.items():
        for cls in (node for node in ast.walk(tree) if isinstance(node, ast.ClassDef)):
            if not _calls(cls, "guarded_connector") and not _calls(cls, "open_stream"):
                continue  # neither an HTTP connector nor a guarded stream (TCP, gRPC) to tenants
            classes += 1
            where = f"{path.relative_to(REPO)}:{cls.name}"
            assert _calls(cls, "FairShares"), f"{where} builds a connector for tenants without FairShares"
            assert _calls(cls, "key_for"), f"{where} never charges a request to its tenant (shares.key_for)"
        for call in _calls(tree, "GuardedClient"):
            assert any(k.arg == "per_key" for k in call.keywords), \
                f"{path.relative_to(REPO)}:{call.lineno}: a GuardedClient without per_key (its whole pool is one tenant's)"
    assert classes >= 3  # GuardedClient, HttpChecker, HttpPoster: the search sees them


# -- rounds that do not wait for a slow tenant ---------------------------------------------

def test_each_owners_samples_are_told_as_soon_as_they_are_in_not_when_the_round_ends(monkeypatch: typing.Any) -> None:
    """operator/sources.py with on_owner: a namespace whose Prometheus hangs holds back its own
    samples only; another's are told at once, while the read still waits for the hanging ones."""
    deadline = 1.0
    monkeypatch.setattr(prometheus, "TIMEOUT_SECONDS", deadline)

    async def fast(request: web.Request) -> web.Response:
        return web.Response(body=vector([("b", "web")]), content_type="application/json")

    async def run() -> tuple[dict[typing.Any, float], float, dict]:
        async with Servers({"/a/api/v1/query": hang, "/b/api/v1/query": fast}) as base:
            client = egress.GuardedClient(True, limit=budget.PROMETHEUS_CONNECTIONS, per_key=budget.PROMETHEUS_PER_NAMESPACE)
            sources = sources_module.Sources({core_sources.PROMETHEUS: source_prometheus.BatchedPrometheus(
                client, _no_secret, "2m", lambda _: None)})
            requests = [metric_source.Request(("ScalingPolicy", "a", "p"), (metric, None), targets.Target(
                "a", "Deployment", "w", prometheus_url=f"{base}/a")) for metric in ("cpu", "memory")]
            requests += [metric_source.Request(("ScalingPolicy", "b", "p"), (metric, None), targets.Target(
                "b", "Deployment", "web", prometheus_url=f"{base}/b")) for metric in ("cpu", "memory")]
            told: dict[typing.Any, float] = {}
            started = time.monotonic()

            def tell(owner: typing.Hashable, _: object) -> None:
                told.setdefault(owner, time.monotonic() - started)

            samples = await sources.read(requests, on_owner=tell)
            took = time.monotonic() - started
            await client.close()
        return told, took, samples

    told, took, samples = asyncio.run(run())
    assert told[("ScalingPolicy", "b", "p")] < 0.5 <= deadline <= took
    assert told[("ScalingPolicy", "a", "p")] >= deadline
    assert samples[("ScalingPolicy", "b", "p")][("cpu", None)].value == 42.0
    assert samples[("ScalingPolicy", "b", "p")][("cpu", None)].source == core_sources.PROMETHEUS
    assert samples[("ScalingPolicy", "a", "p")][("cpu", None)].error is not None


def _deployment(namespace: str, name: str) -> dict[str, typing.Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"namespace": namespace, "name": name, "generation": 1, "uid": f"d-{namespace}",
                         "annotations": {"deployment.kubernetes.io/revision": "1"}},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": name}}},
            "status": {"observedGeneration": 1, "replicas": 2, "readyReplicas": 2, "updatedReplicas": 2,
                       "availableReplicas": 2}}


def test_a_scaling_round_decides_each_policy_when_its_samples_arrive(monkeypatch: typing.Any) -> None:
    """One namespace's hanging Prometheus: the other's policy is decided at once, not when the
    round's last query gives up (the scaler decides as Sources tells each owner)."""
    deadline = 1.0
    monkeypatch.setattr(prometheus, "TIMEOUT_SECONDS", deadline)

    async def fast(request: web.Request) -> web.Response:
        return web.Response(body=vector([("b", "web")]), content_type="application/json")

    async def run() -> dict[str, float]:
        async with Servers({"/a/api/v1/query": hang, "/b/api/v1/query": fast}) as base:
            view = view_module.View()
            for ns in ("a", "b"):
                view.upsert(_deployment(ns, "web"))
                view.upsert({"apiVersion": "ops.capliquify.io/v1alpha1", "kind": "MonitoredService",
                             "metadata": {"namespace": ns, "name": "web", "generation": 1, "uid": f"m-{ns}",
                                          "resourceVersion": "1"},
                             "spec": {"target": {"kubernetes": {"kind": "Deployment", "name": "web"}},
                                      "metrics": {"prometheus": {"url": f"{base}/{ns}"}}}})
                view.upsert({"apiVersion": "ops.capliquify.io/v1alpha1", "kind": "ScalingPolicy",
                             "metadata": {"namespace": ns, "name": "web", "generation": 1, "uid": f"p-{ns}",
                                          "resourceVersion": "1"},
                             "spec": {"targetRef": {"monitoredService": "web"}, "minReplicas": 1, "maxReplicas": 5,
                                      "metrics": [{"type": "cpu", "scaleUp": 70, "scaleDown": 30}]}})
            evaluator = loop.Evaluator(view, NoEvents(), 60.0, 4)  # type: ignore[arg-type]
            client = egress.GuardedClient(True, limit=budget.PROMETHEUS_CONNECTIONS, per_key=budget.PROMETHEUS_PER_NAMESPACE)
            scaler = scaler_module.Scaler(view, evaluator, None, None, None, sources_module.Sources({  # type: ignore[arg-type]
                core_sources.PROMETHEUS: source_prometheus.BatchedPrometheus(client, _no_secret, "2m", lambda _: None)}))
            decided: dict[str, float] = {}
            started = time.monotonic()

            async def decide(key: typing.Any, spec: typing.Any, target: typing.Any, samples: typing.Any,
                             owners: typing.Any) -> None:
                decided[key[1]] = time.monotonic() - started
                assert key[1] == "a" or samples[("cpu", None)].value == 42.0

            scaler._decide_and_act = decide  # type: ignore[method-assign]
            await scaler.round()
            await client.close()
        return decided

    decided = asyncio.run(run())
    assert decided["b"] < 0.5, decided
    assert decided["a"] >= deadline, decided
