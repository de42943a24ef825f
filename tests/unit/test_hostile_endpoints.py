"""Hostile or broken endpoints and inputs are contained in their adapter (issue 9).

Each one becomes a typed error for that one source — never an exception in a round, never a
Secret echoed. Servers here are real sockets on loopback.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import time

import pytest
from aiohttp import web

from controller.adapters import egress
from controller.adapters import notify
from controller.adapters import notify_email
from controller.adapters import notify_slack
from controller.adapters import prometheus
from controller.adapters import railway
from controller.api import alertpolicy
from controller.core import alerting
from controller.core import egress as policy
from localcluster import hostile

# -- Prometheus answers ------------------------------------------------------------------------

GOOD = {"status": "success", "data": {"resultType": "vector", "result": [
    {"metric": {"namespace": "a", "workload": "web"}, "value": [1700000000.5, "42"]}]}}


@pytest.mark.parametrize("status,body,words", [
    (200, b"{}", "HTTP 200: no error text"),
    (200, b'{"status": "success"}', "no data"),
    (200, b'{"status": "success", "data": {"result": "x"}}', "not a list"),
    (200, b'{"status": "success", "data": {"result": [{"metric": {}}]}}', "no series with"),
    (200, b'{"status": "success", "data": {"result": [{"metric": {}, "value": ["x", "1"]}]}}', "no series with"),
    (200, b"[1, 2]", "not a Prometheus answer"),
    (200, b"<html>proxy login</html>", "not JSON"),
    (200, b"\xff\xfe", "not JSON"),
    (502, b'{"status": "error", "error": "upstream down"}', "HTTP 502: upstream down"),
    (200, b'{"status": "success", "data": {"resultType": "scalar", "result": "x"}}', "scalar without a value"),
])
def test_a_malformed_answer_is_an_error_not_an_exception(status: int, body: bytes, words: str) -> None:
    result = prometheus.parse(status, body)
    assert result.error is not None and words in result.error and not result.series


def test_a_bad_query_is_invalid_and_a_good_answer_parses() -> None:
    bad = prometheus.parse(400, b'{"status": "error", "errorType": "bad_data", "error": "parse error at char 3"}')
    assert bad.invalid and bad.error == "HTTP 400: parse error at char 3"
    good = prometheus.parse(200, json.dumps(GOOD).encode())
    assert good.error is None and good.series[0].value == 42 and good.series[0].labels["workload"] == "web"
    # One broken item among good ones is dropped; the rest stand.
    mixed = {**GOOD, "data": {"resultType": "vector", "result": [*GOOD["data"]["result"], {"value": None}, "x"]}}
    assert len(prometheus.parse(200, json.dumps(mixed).encode()).series) == 1
    huge = prometheus.parse(200, b"x", truncated=True)
    assert "larger than" in huge.error


def test_prometheus_source_survives_garbage_drip_and_redirects_on_loopback() -> None:
    async def scenario() -> list[str | None]:
        async def garbage(request: web.Request) -> web.Response:
            return web.Response(text="{}", content_type="application/json")

        async def drip(request: web.Request) -> web.StreamResponse:
            response = web.StreamResponse(headers={"Content-Type": "application/json"})
            await response.prepare(request)
            for _ in range(30):
                await response.write(b" ")
                await asyncio.sleep(0.5)
            return response

        async def redirect(request: web.Request) -> web.Response:
            raise web.HTTPFound("http://169.254.169.254/latest/meta-data/")

        app = web.Application()
        app.router.add_post("/garbage/api/v1/query", garbage)
        app.router.add_post("/drip/api/v1/query", drip)
        app.router.add_post("/redirect/api/v1/query", redirect)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        client = egress.GuardedClient(allow_loopback=True, limit=4)
        prometheus.TIMEOUT_SECONDS = 2.0
        try:
            results = await asyncio.gather(*(prometheus.PrometheusSource(client, f"http://127.0.0.1:{port}/{path}")
                                             .query("up") for path in ("garbage", "drip", "redirect")))
            refused = await prometheus.PrometheusSource(client, "http://[::ffff:a9fe:a9fe]/").query("up")
        finally:
            prometheus.TIMEOUT_SECONDS = 10.0
            await client.close()
            await runner.cleanup()
        return [r.error for r in (*results, refused)]

    started = time.monotonic()
    garbage, drip, redirect, refused = asyncio.run(scenario())
    assert "HTTP 200: no error text" in garbage
    assert "did not answer within 2s" in drip and time.monotonic() - started < 6
    assert "HTTP 302" in redirect  # not followed
    assert "cloud metadata" in refused


# -- The egress policy ------------------------------------------------------------------------

@pytest.mark.parametrize("url,words", [
    ("http://[::ffff:a9fe:a9fe]/", "cloud metadata"),
    ("http://[::a9fe:a9fe]/", "cloud metadata"),
    ("http://[64:ff9b::a9fe:a9fe]/", "cloud metadata"),
    ("http://[2002:a9fe:a9fe::1]/", "cloud metadata"),
    ("http://2852039166/", "cloud metadata"),
    ("http://0xa9fea9fe/", "cloud metadata"),
    ("http://169.254.1.1/", "link-local"),
    ("http://0:8081/", "not a unicast address"),
    ("http://127.1/", "loopback"),
    ("http://x:99999/", "cannot be parsed"),
    ("file:///etc/passwd", "scheme 'file'"),
    ("gopher://a/", "scheme 'gopher'"),
    ("http://a\r\nHost: b/", "white space"),
    ("http:///nohost", "no host"),
])
def test_refused_urls(url: str, words: str) -> None:
    refusal = policy.refused_url(url, allow_loopback=False)
    assert refusal is not None and words in refusal


@pytest.mark.parametrize("url", ["https://prometheus.monitoring.svc:9090", "http://10.0.0.7:9090/", "https://[2001:db8::1]/"])
def test_allowed_urls(url: str) -> None:
    assert policy.refused_url(url, allow_loopback=False) is None


# -- Railway ----------------------------------------------------------------------------------

def served(reply: bytes, drip_seconds: float = 0.0) -> hostile.HostileServer:
    server = hostile.HostileServer(reply, drip_seconds)
    server.url += "/graphql"
    return server


http = hostile.http_reply


@pytest.mark.parametrize("body,words", [
    (b'{"data": {}}', "knows no service"),
    (b'{"data": {"serviceInstance": null}}', "knows no service"),
    (b'{"data": {"serviceInstance": {"numReplicas": "many"}}}', "numReplicas is not a count"),
    (b'{"data": null}', "HTTP 200 from Railway"),
    (b'{"errors": "boom"}', "an error"),
    (b"[]", "not a GraphQL answer"),
    (b"not json", "not JSON"),
])
def test_railway_answers_that_lie_are_errors(body: bytes, words: str) -> None:
    server = served(http(body))
    try:
        with pytest.raises(railway.RailwayError, match=words):
            railway_instance(server.url)
    finally:
        server.close()


def railway_instance(url: str, allow_loopback: bool = True) -> railway.Instance:
    async def go() -> railway.Instance:
        http = egress.GuardedClient(allow_loopback)
        try:
            return await railway.RailwayClient(url, "t0ken", http).instance("env", "svc")
        finally:
            await http.close()
    return asyncio.run(go())


def test_railway_metrics_with_garbage_values_read_as_absent() -> None:
    usage = railway.usage_from([{"measurement": "CPU_USAGE", "values": [{"ts": "x", "value": 1}, {"ts": 10**20}]},
                                {"measurement": "CPU_LIMIT", "values": "nope"}, "junk"])
    assert (usage.cpu, usage.memory, usage.sampled_at) == (None, None, None)


def test_railway_endpoint_with_a_bad_port_is_refused_before_the_token_goes() -> None:
    with pytest.raises(railway.RailwayError, match="cannot be parsed"):
        railway_instance("http://x:99999/", allow_loopback=False)


def test_railway_drip_feed_hits_the_total_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(railway, "DEADLINE_SECONDS", 2.0)
    server = served(http(b'{"data": {"serviceInstance": null}}' + b" " * 200), drip_seconds=0.2)
    started = time.monotonic()
    try:
        with pytest.raises(railway.RailwayError, match="did not finish answering within 2s"):
            railway_instance(server.url)
    finally:
        server.close()
    assert time.monotonic() - started < 8


# -- Notifiers: no Secret value ever echoed ---------------------------------------------------

def message() -> notify.Message:
    now = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
    return notify.Message(alerting.Notification("k1", "slack", "firing", "R", "web", "critical", "down", now),
                          namespace="a", policy="p", sent_at=now, valid_for=datetime.timedelta(minutes=15))


@pytest.mark.parametrize("secret_value", ["hunter2-not-a-url", "ftp://user:hunter2@host/x", "http://x:99999/hunter2"])
def test_a_slack_secret_that_is_not_a_url_is_never_echoed(secret_value: str) -> None:
    channel = alertpolicy.Channel.model_validate({"name": "slack", "slack": {"webhookSecretRef": {"name": "s", "key": "k"}}})

    async def secret(ref: object) -> str:
        return secret_value

    async def scenario() -> str:
        poster = notify.HttpPoster(allow_loopback=False)
        try:
            await notify_slack.SlackNotifier(poster).send(channel, message(), secret)
        except notify.DeliveryError as error:
            return str(error)
        finally:
            await poster.close()
        return "sent"

    error = asyncio.run(scenario())
    assert "hunter2" not in error and error != "sent", error


def test_a_receiver_reflecting_the_request_is_not_quoted_for_a_secret_url() -> None:
    server = served(http(b"you sent /services/T000/B000/hunter2", "500 Internal Server Error"))

    async def scenario() -> str:
        poster = notify.HttpPoster(allow_loopback=True)
        try:
            await poster.post(server.url + "/services/T000/B000/hunter2", json_body={}, url_is_secret=True)
        except notify.DeliveryError as error:
            return str(error)
        finally:
            await poster.close()
        return "sent"

    try:
        error = asyncio.run(scenario())
    finally:
        server.close()
    assert error.startswith("HTTP 500 from 127.0.0.1:") and "hunter2" not in error


@pytest.mark.parametrize("text,words", [
    ("host: mail\nfrom: a@b.c\nport: smtp", "port must be a number"),
    ("host: mail\nfrom: a@b.c\nport: 99999", "port must be a number"),
    ("host: \"mail\\r\\nRCPT TO: x\"\nfrom: a@b.c", "host must be a host name"),
    ("host: mail\nfrom: \"a@b.c\\r\\nBcc: x@y.z\"", "from must be one address"),
    ("- just a list", "must be YAML with host and from"),
])
def test_smtp_settings_are_refused_with_a_reason(text: str, words: str) -> None:
    with pytest.raises(notify.DeliveryError, match=words):
        notify_email._settings(text)


def test_email_recipients_cannot_carry_headers() -> None:
    with pytest.raises(ValueError):
        alertpolicy.EmailChannel.model_validate({"smtpSecretRef": {"name": "s", "key": "k"}, "to": ["a@b.c\r\nBcc: x@y.z"]})
