"""Health checks beyond a plain GET, each against a local server: a method and headers (a value
from a Secret, never in a message), a CA bundle and a server name, TCP, the gRPC health
protocol against grpcio's own health service, and the service verdict from a quorum."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import pathlib
import socket
import ssl
import typing

import pytest
from aiohttp import web

from controller.adapters import egress
from controller.adapters import grpc_health
from controller.adapters import http_check
from controller.adapters import shares
from controller.api import monitoredservice as api
from controller.core import health

SECRET = "s3cret-token-value"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def check(**kinds: typing.Any) -> api.HealthCheck:
    return api.HealthCheck.model_validate({"name": "c", "intervalSeconds": 10, **kinds})


class Secrets:
    def __init__(self, values: dict[tuple[str, str, str], str]) -> None:
        self.values, self.reads = values, 0

    async def __call__(self, namespace: str, name: str, key: str) -> str | None:
        self.reads += 1
        return self.values.get((namespace, name, key))


async def _probe(checker: http_check.HttpChecker, spec: api.HealthCheck, namespace: str = "shop") -> health.ProbeResult:
    with shares.tenant(namespace):
        return await checker.probe(spec)


@contextlib.asynccontextmanager
async def http_server(seen: list[typing.Any], ssl_context: ssl.SSLContext | None = None) -> typing.AsyncIterator[int]:
    async def any_request(request: web.Request) -> web.Response:
        seen.append((request.method, dict(request.headers)))
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", any_request)
    runner = web.AppRunner(app)
    await runner.setup()
    port = _free_port()
    await web.TCPSite(runner, "127.0.0.1", port, ssl_context=ssl_context).start()
    try:
        yield port
    finally:
        await runner.cleanup()


def test_method_and_headers_from_a_secret() -> None:
    secrets = Secrets({("shop", "probe-auth", "token"): f"Bearer {SECRET}"})

    async def scenario() -> tuple[list[typing.Any], list[health.ProbeResult]]:
        seen: list[typing.Any] = []
        checker = http_check.HttpChecker(True, secrets=secrets)
        async with http_server(seen) as port:
            spec = check(secretName="probe-auth", http={
                "url": f"http://127.0.0.1:{port}/health", "method": "HEAD",
                "headers": [{"name": "Authorization", "secretKey": "token"}, {"name": "X-Probe", "value": "capliquify"}]})
            results = [await _probe(checker, spec), await _probe(checker, spec)]
            missing = check(secretName="probe-auth", http={"url": f"http://127.0.0.1:{port}/",
                                                           "headers": [{"name": "X-Key", "secretKey": "absent"}]})
            results.append(await _probe(checker, missing))
            results.append(await _probe(checker, spec, namespace="elsewhere"))  # another namespace's Secret: not there
        await checker.close()
        return seen, results

    seen, results = asyncio.run(scenario())
    assert [r.ok for r in results] == [True, True, False, False]
    method, headers = seen[0]
    assert method == "HEAD" and headers["Authorization"] == f"Bearer {SECRET}" and headers["X-Probe"] == "capliquify"
    assert len(seen) == 2  # a check whose Secret cannot be read sends nothing
    assert results[2].message == "Secret probe-auth has no key absent"
    assert all(SECRET not in r.message for r in results)
    assert secrets.reads == 3  # once per key and namespace within the TTL, not once a probe


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """A local CA and a serving certificate for 127.0.0.1 and metrics-server.kube-system.svc."""
    from localcluster import certs

    directory = tmp_path_factory.mktemp("pki")
    certs.generate(directory)
    return directory


def test_a_ca_bundle_and_a_server_name(pki: pathlib.Path) -> None:
    served = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    served.load_cert_chain(pki / "metrics-server.crt", pki / "metrics-server.key")
    secrets = Secrets({("shop", "ca", "ca.crt"): (pki / "ca.crt").read_text()})

    async def scenario() -> list[health.ProbeResult]:
        checker = http_check.HttpChecker(True, secrets=secrets)
        async with http_server([], served) as port:
            url = f"https://127.0.0.1:{port}/"
            results = [
                await _probe(checker, check(secretName="ca", http={"url": url, "tls": {"caSecretKey": "ca.crt"}})),
                await _probe(checker, check(http={"url": url})),  # the system's CAs do not know this one
                await _probe(checker, check(secretName="ca", http={"url": url, "tls": {
                    "caSecretKey": "ca.crt", "serverName": "metrics-server.kube-system.svc"}})),
                await _probe(checker, check(secretName="ca", http={"url": url, "tls": {
                    "caSecretKey": "ca.crt", "serverName": "kubernetes.default.svc"}})),
            ]
        await checker.close()
        return results

    results = asyncio.run(scenario())
    assert [r.ok for r in results] == [True, False, True, False], results
    assert results[1].message == results[3].message == "TLS: the certificate is not trusted, or not for this name"


def test_tcp_checks() -> None:
    async def scenario() -> list[typing.Any]:
        server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        checker = http_check.HttpChecker(True)
        closed = _free_port()
        results: list[typing.Any] = [
            await _probe(checker, check(tcp={"host": "127.0.0.1", "port": port})),
            await _probe(checker, check(tcp={"host": "localhost", "port": port})),
            await _probe(checker, check(tcp={"host": "127.0.0.1", "port": closed})),
        ]
        for allow, host in ((False, "127.0.0.1"), (True, "169.254.169.254"), (True, "0xa9fea9fe")):
            try:
                await _probe(http_check.HttpChecker(allow), check(tcp={"host": host, "port": port}))
                results.append(None)
            except egress.EgressRefused as refused:
                results.append(str(refused))
        server.close()
        await checker.close()
        return results

    ok, by_name, refused, *guarded = asyncio.run(scenario())
    assert ok.ok and by_name.ok and ok.latency_ms is not None
    assert not refused.ok and refused.message == "cannot connect: Connection refused"
    assert all(guarded), guarded  # loopback unless allowed, metadata, an address written as a name


@pytest.fixture(scope="module")
def grpc_server() -> typing.Iterator[int]:
    import grpc  # a test dependency (pyproject: test): the real implementation, not a twin of ours
    from grpc_health.v1 import health as grpc_health_service
    from grpc_health.v1 import health_pb2
    from grpc_health.v1 import health_pb2_grpc

    server = grpc.server(__import__("concurrent.futures").futures.ThreadPoolExecutor(2))
    service = grpc_health_service.HealthServicer()
    service.set("", health_pb2.HealthCheckResponse.SERVING)
    service.set("shop.Orders", health_pb2.HealthCheckResponse.SERVING)
    service.set("shop.Payments", health_pb2.HealthCheckResponse.NOT_SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(service, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield port
    server.stop(None)


def test_grpc_health_protocol_against_grpcio(grpc_server: int) -> None:
    async def scenario() -> list[health.ProbeResult]:
        checker = http_check.HttpChecker(True)
        results = [await _probe(checker, check(grpc={"host": "127.0.0.1", "port": grpc_server, "service": service}))
                   for service in ("", "shop.Orders", "shop.Payments", "shop.Unknown")]
        await checker.close()
        return results

    server, orders, payments, unknown = asyncio.run(scenario())
    assert (server.ok, server.message) == (True, "SERVING")
    assert (orders.ok, orders.message) == (True, "SERVING")
    assert (payments.ok, payments.message) == (False, "NOT_SERVING")
    assert (unknown.ok, unknown.message) == (False, "grpc-status 5 (NOT_FOUND)")  # grpcio's answer for an unknown service


def test_grpc_against_what_is_not_a_grpc_server() -> None:
    async def scenario() -> list[health.ProbeResult]:
        checker = http_check.HttpChecker(True)
        results = []
        async with http_server([]) as port:  # HTTP/1.1 only
            results.append(await _probe(checker, check(grpc={"host": "127.0.0.1", "port": port, "timeoutSeconds": 2})))
        silent = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)  # accepts, never answers
        results.append(await _probe(checker, check(grpc={"host": "127.0.0.1", "port": silent.sockets[0].getsockname()[1],
                                                         "timeoutSeconds": 1})))
        silent.close()
        await checker.close()
        return results

    http1, silent = asyncio.run(scenario())
    assert not http1.ok and http1.message in ("not HTTP/2 (a gRPC server speaks HTTP/2)",
                                              "the server closed the connection before answering")
    assert (silent.ok, silent.message) == (False, "no answer within 1s")


def test_grpc_answer_parsing() -> None:
    assert grpc_health.request_frame("") == b"\x00\x00\x00\x00\x00"
    assert grpc_health.request_frame("a.B") == b"\x00\x00\x00\x00\x05\x0a\x03a.B"
    assert grpc_health.response_status(b"\x00\x00\x00\x00\x02\x08\x01") == 1
    assert grpc_health.response_status(b"\x00\x00\x00\x00\x00") == 0  # proto3: absent is UNKNOWN
    for broken in (b"", b"\x01\x00\x00\x00\x02\x08\x01", b"\x00\x00\x00\x00\x09\x08", b"\x00\x00\x00\x00\x01\x08",
                   b"\x00\x00\x00\x00\x02\x0f\x01"):
        with pytest.raises(ValueError):
            grpc_health.response_status(broken)
    assert grpc_health.judge({":status": "200", "grpc-status": "12"}, b"").message == (
        "grpc-status 12 (UNIMPLEMENTED): the server has no health service")
    assert grpc_health.judge({":status": "404"}, b"").message == "HTTP 404 (not a gRPC server?)"


T0 = datetime.datetime(2026, 12, 1, tzinfo=datetime.timezone.utc)


@pytest.mark.parametrize("passing,failing,undecided,percent,verdict,why", [
    (5, 0, 0, 100, "Healthy", "all 5 check(s) passing"),
    (4, 1, 0, 100, "Degraded", "1 of 5 check(s) failing"),
    (4, 1, 0, 80, "Healthy", "4 of 5 check(s) passing (quorum 80 %)"),
    (3, 2, 0, 80, "Degraded", "2 of 5 check(s) failing (quorum 80 %)"),
    (0, 5, 0, 80, "Unhealthy", "all 5 check(s) failing"),
    (3, 1, 1, 80, "Degraded", "1 of 5 check(s) failing (quorum 80 %)"),  # quorum counts every check, decided
    (4, 0, 1, 80, "Unknown", "waiting for every check's first verdict"),
    (8, 1, 0, 88, "Healthy", "8 of 9 check(s) passing (quorum 88 %)"),
    (8, 1, 0, 90, "Degraded", "1 of 9 check(s) failing (quorum 90 %)"),
])
def test_quorum_verdict(passing: int, failing: int, undecided: int, percent: int, verdict: str, why: str) -> None:
    states = ([health.CheckState(healthy=True)] * passing + [health.CheckState(healthy=False)] * failing
              + [health.CheckState()] * undecided)
    assert health.overall(states, percent) == (verdict, why)


def test_health_check_api() -> None:
    import pydantic

    from controller import validation

    def problems(spec: dict) -> list[str]:
        return validation.spec_problems("MonitoredService", {"target": {"kubernetes": {"name": "web"}}, **spec})

    assert problems({"healthyPercent": 80, "healthChecks": [
        {"name": "db", "tcp": {"host": "db.shop.svc", "port": 5432}},
        {"name": "rpc", "grpc": {"host": "rpc", "port": 9000, "service": "shop.Orders"}},
        {"name": "api", "secretName": "auth", "http": {"url": "https://api/h", "method": "POST", "tls": {
            "caSecretKey": "ca.crt", "serverName": "api.shop"}, "headers": [{"name": "Authorization", "secretKey": "t"}]}},
    ]}) == []
    both = problems({"healthChecks": [{"name": "x", "tcp": {"host": "db", "port": 1}, "http": {"url": "http://x/"}}]})
    assert "spec.healthChecks[0]: a health check needs exactly one of http, tcp, grpc" in both
    unnamed = problems({"healthChecks": [{"name": "x", "http": {"url": "http://x/", "headers": [
        {"name": "Authorization", "secretKey": "t"}]}}]})
    assert "spec.healthChecks[0].secretName: secretKey and caSecretKey need secretName" in unnamed
    reserved = problems({"healthChecks": [{"name": "x", "http": {"url": "http://x/", "headers": [
        {"name": "Host", "value": "evil"}, {"name": "X-A", "value": "a\r\nInjected: 1"}]}}]})
    assert any("headers[0].name: this header is the HTTP client's own" in p for p in reserved), reserved
    assert any("headers[1].value" in p for p in reserved), reserved
    assert any("spec.healthyPercent" in p for p in problems({"healthyPercent": 0}))
    with pytest.raises(pydantic.ValidationError):
        api.TcpCheck.model_validate({"host": "db/../x", "port": 1})


def test_a_ca_bundle_that_is_no_pem_fails_the_probe_and_sends_nothing() -> None:
    secrets = Secrets({("shop", "ca", "ca.crt"): "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n"})

    async def scenario() -> tuple[list[typing.Any], health.ProbeResult]:
        seen: list[typing.Any] = []
        checker = http_check.HttpChecker(True, secrets=secrets)
        async with http_server(seen) as port:
            result = await _probe(checker, check(secretName="ca", http={
                "url": f"https://127.0.0.1:{port}/", "tls": {"caSecretKey": "ca.crt"}}))
        await checker.close()
        return seen, result

    seen, result = asyncio.run(scenario())
    assert (result.ok, result.message, seen) == (False, "Secret ca key ca.crt: not a PEM CA bundle", [])


TRICKY = ["ünïcödé-tökén", "tab\there", "del\x7fchar", "line\u2028separator", "emoji-\U0001F600-token", "x" * 10_000,
          "surrogate-\udcff-token", "latin1-\xe9\xff", "line\nbreak-token", "nul\x00token", "  spaced-token  "]


def test_no_secret_header_value_escapes_into_a_message_or_an_exception() -> None:
    """Whatever a Secret holds, a probe sends it or fails naming the Secret and key: no value in a
    message, and no exception out of the checker (the guard would log its text)."""
    secrets = Secrets({("shop", "auth", f"k{i}"): value for i, value in enumerate(TRICKY)})

    async def scenario() -> list[health.ProbeResult]:
        checker = http_check.HttpChecker(True, secrets=secrets)
        results = []
        async with http_server([]) as port:
            for i in range(len(TRICKY)):
                results.append(await _probe(checker, check(secretName="auth", http={
                    "url": f"http://127.0.0.1:{port}/", "headers": [{"name": "Authorization", "secretKey": f"k{i}"}]})))
        await checker.close()
        return results

    for value, result in zip(TRICKY, asyncio.run(scenario()), strict=True):
        assert value.strip() not in result.message and value[:12] not in result.message, (value[:20], result)


def test_grpc_over_tls_with_a_ca_bundle_and_a_server_name(pki: pathlib.Path) -> None:
    import concurrent.futures

    import grpc
    from grpc_health.v1 import health as grpc_health_service
    from grpc_health.v1 import health_pb2_grpc

    server = grpc.server(concurrent.futures.ThreadPoolExecutor(2))
    health_pb2_grpc.add_HealthServicer_to_server(grpc_health_service.HealthServicer(), server)
    credentials = grpc.ssl_server_credentials([((pki / "metrics-server.key").read_bytes(),
                                                (pki / "metrics-server.crt").read_bytes())])
    port = server.add_secure_port("127.0.0.1:0", credentials)
    server.start()
    secrets = Secrets({("shop", "ca", "ca.crt"): (pki / "ca.crt").read_text()})

    async def scenario() -> list[health.ProbeResult]:
        checker = http_check.HttpChecker(True, secrets=secrets)
        results = [await _probe(checker, check(secretName="ca", grpc={"host": "127.0.0.1", "port": port, "tls": tls}))
                   for tls in ({"caSecretKey": "ca.crt", "serverName": "metrics-server.kube-system.svc"},
                               {"caSecretKey": "ca.crt", "serverName": "kubernetes.default.svc"},
                               {})]
        await checker.close()
        return results

    try:
        named, wrong_name, system_cas = asyncio.run(scenario())
    finally:
        server.stop(None)
    assert (named.ok, named.message) == (True, "SERVING")
    assert not wrong_name.ok and not system_cas.ok
    assert wrong_name.message == system_cas.message == "TLS: the certificate is not trusted, or not for this name"


def test_tls_settings_need_an_https_url() -> None:
    from controller import validation

    found = validation.spec_problems("MonitoredService", {"target": {"kubernetes": {"name": "web"}}, "healthChecks": [
        {"name": "a", "http": {"url": "http://web/", "tls": {"serverName": "web.shop"}}}]})
    assert found == ["spec.healthChecks[0].http.tls: tls needs an https URL"]
