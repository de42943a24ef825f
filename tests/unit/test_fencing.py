"""Every side effect is fenced at the call (issue 21): leadership is asked immediately before
each request leaves — after the Secret read, the rate-limit wait, the SMTP login — never only
before a path that can take 10-30 s. Each test loses leadership inside that path."""

from __future__ import annotations

import asyncio
import datetime
import typing

import pytest

from controller.adapters import egress
from controller.adapters import notifiers
from controller.adapters import notify
from controller.adapters import railway as railway_adapter
from controller.api import alertpolicy as api
from controller.api import common
from controller.core import alerting
from controller.core import election
from controller.core import outbox
from controller.operator import alerter as alerter_module
from controller.operator import loop
from controller.operator import metrics
from controller.operator import view as view_module
from localcluster import receivers
from tests.unit import test_railway


class Leadership:
    """A fence over one flag: `lose()` is called inside the slow path under test."""

    def __init__(self, leading: bool = True) -> None:
        self.leading = leading
        self.asked: list[str] = []

    def lose(self) -> None:
        self.leading = False

    def fence(self, what: str) -> None:
        self.asked.append(what)
        if not self.leading:
            raise election.NotLeader(f"not the leader: {what} refused")


MESSAGE = notify.Message(
    alerting.Notification("k-1", "c", "firing", "HighErrorRate", "web", "critical", "errors are high",
                          datetime.datetime(2026, 12, 1, tzinfo=datetime.timezone.utc)),
    namespace="shop", policy="web", sent_at=datetime.datetime(2026, 12, 1, tzinfo=datetime.timezone.utc),
    valid_for=datetime.timedelta(minutes=45))
REF = {"name": "s", "key": "k"}


def channel(kind: str, http: str, smtp_port: int) -> tuple[api.Channel, str | None]:
    """A channel of `kind` aimed at the loopback receivers, and what its Secret holds (None: it reads none)."""
    spec: dict[str, typing.Any] = {
        "slack": ({"webhookSecretRef": REF}, f"{http}/slack"),
        "sms": ({"gatewaySecretRef": REF, "to": ["+15550100"]}, f"url: {http}/sms\ntoken: t"),
        "webhook": ({"url": f"{http}/hook", "hmacSecretRef": REF}, "hmac-key"),
        "alertmanager": ({"url": http}, None),
        "email": ({"smtpSecretRef": REF, "to": ["oncall@example.com"]},
                  f"host: 127.0.0.1\nport: {smtp_port}\nfrom: ops@example.com"),
        "pagerduty": ({"routingKeySecretRef": REF, "url": f"{http}/pd"}, "routing-key"),
        "opsgenie": ({"apiKeySecretRef": REF, "url": http}, "genie-key"),
        "teams": ({"webhookSecretRef": REF}, f"{http}/teams"),
    }[kind]
    return api.Channel.model_validate({"name": "c", kind: spec[0]}), spec[1]


@pytest.mark.parametrize("kind", [kind.value for kind in api.ChannelKind])
def test_a_notification_is_fenced_after_its_secret_read_right_before_it_leaves(kind: str) -> None:
    """Every channel kind the registry knows (a new one is covered, or this fails for want of a
    channel above): leadership lost while the Secret is read means nothing is sent, and the
    refusal is NotLeader (the alerter keeps the delivery Pending), not a failed delivery. The
    alerter used to ask once, before the Secret read and the 10-30 s send."""
    http, smtp = receivers.HttpReceiver(), receivers.SmtpReceiver()
    leadership = Leadership()
    try:
        made, secret_text = channel(kind, http.url, smtp.port)
        reads: list[str] = []

        async def secret(ref: common.SecretKeyRef) -> str:
            reads.append(ref.name)
            leadership.lose()  # the Lease is lost while this replica waits for the Secret
            assert secret_text is not None
            return secret_text

        async def scenario() -> None:
            poster = notify.HttpPoster(allow_loopback=True, fence=leadership.fence)
            try:
                if secret_text is None:
                    leadership.lose()  # it reads no Secret: lost before its send
                with pytest.raises(election.NotLeader):
                    await notifiers.registry(poster)[kind].send(made, MESSAGE, secret)
            finally:
                await poster.close()
        asyncio.run(scenario())
        assert reads == ([] if secret_text is None else ["s"])
        assert leadership.asked, "the fence was asked at the send"
        assert http.requests == [] and smtp.messages == [], "nothing left this replica"
    finally:
        http.stop()
        smtp.stop()


def test_a_leader_sends_through_the_same_path() -> None:
    """The fence passes while leading (the refusal above is the fence's, not a broken send)."""
    http = receivers.HttpReceiver()
    leadership = Leadership()
    try:
        made, _ = channel("webhook", http.url, 0)

        async def scenario() -> None:
            poster = notify.HttpPoster(allow_loopback=True, fence=leadership.fence)
            try:
                async def secret(_: common.SecretKeyRef) -> str:
                    return "hmac-key"
                await notifiers.registry(poster)["webhook"].send(made, MESSAGE, secret)
            finally:
                await poster.close()
        asyncio.run(scenario())
        assert [r.path for r in http.requests] == ["/hook"] and leadership.asked == ["notification"]
    finally:
        http.stop()


class SlowLimiter(railway_adapter.RateLimiter):
    """The token's rate-limit budget makes the call wait; leadership ends during the wait."""

    def __init__(self, leadership: Leadership) -> None:
        super().__init__()
        self.leadership = leadership

    async def acquire(self, key: str) -> None:
        await super().acquire(key)
        self.leadership.lose()


def test_railway_scale_rollback_and_configure_are_fenced_after_the_rate_limit_wait(railway) -> None:  # noqa: ANN001
    """A Railway mutation is refused when leadership ended while it waited for its token's
    budget; the reads before it (the rollback's deployments) go, the mutation never does."""
    leadership = Leadership()
    test_railway.control(railway, serviceId="svc-1", deploy={"status": "SUCCESS", "errorPercent": 1})
    failed = test_railway.control(railway, serviceId="svc-1", deploy={"status": "FAILED"})["latestDeployment"]

    async def scenario() -> None:
        http = egress.GuardedClient(True)
        try:
            client = railway_adapter.RailwayClient(railway.url, "t0ken", http, SlowLimiter(leadership), leadership.fence)
            with pytest.raises(election.NotLeader):
                await client.set_replicas("env-1", "svc-1", 4)
            leadership.leading = True
            with pytest.raises(election.NotLeader):
                await client.set_replicas("env-1", "svc-1", 4, {"us-west2": 2, "europe-west4": 2})
            leadership.leading = True
            with pytest.raises(election.NotLeader):
                await client.rollback("env-1", "svc-1", failed)
            leadership.leading = True
            with pytest.raises(election.NotLeader):
                await client.configure("env-1", "svc-1", {"healthcheckPath": "/health"}, {"memoryGB": 4.0})
            # Reads are not effects: a standby may poll.
            leadership.leading = False
            await client.instance("env-1", "svc-1")
            await client.config("env-1", "svc-1", True)
        finally:
            await http.close()
    asyncio.run(scenario())
    mutations = [d for d in railway.documents if d.lstrip().startswith("mutation")]
    assert mutations == [], mutations
    assert railway.rollbacks == []
    assert leadership.asked == ["Railway CapliquifySetReplicas", "Railway CapliquifySetRegions",
                                "Railway CapliquifyRollback", "Railway CapliquifyConfigure"]
    assert railway.services["svc-1"].memory_limit_gb == 1.0 and railway.services["svc-1"].healthcheck_path is None


@pytest.mark.parametrize("name", sorted(railway_adapter.DOCUMENTS))
def test_every_railway_mutation_is_fenced_and_no_query_is(name: str) -> None:
    """Searches every document the adapter can send: a mutation (by its operation type, so a
    new one is covered without naming it) never leaves a replica that does not lead; a query
    does (a standby may poll)."""
    document = railway_adapter.DOCUMENTS[name]
    http = receivers.HttpReceiver()
    leadership = Leadership(leading=False)

    async def scenario() -> None:
        guarded = egress.GuardedClient(True)
        try:
            client = railway_adapter.RailwayClient(f"{http.url}/graphql", "t0ken", guarded, None, leadership.fence)
            try:
                await client._call(document, {})
            except railway_adapter.RailwayError:
                pass  # the receiver's "ok" is no GraphQL answer: sent, which is what is asked
        finally:
            await guarded.close()
    try:
        if document.lstrip().startswith("mutation"):
            with pytest.raises(election.NotLeader):
                asyncio.run(scenario())
            assert http.requests == [] and len(leadership.asked) == 1
        else:
            asyncio.run(scenario())
            assert len(http.requests) == 1 and leadership.asked == []
    finally:
        http.stop()


class Refused:
    """A notifier whose send is refused by the fence (leadership ended during its Secret read)."""

    async def send(self, channel: api.Channel, message: notify.Message, secret: notify.SecretReader) -> None:
        raise election.NotLeader("not the leader: notification refused")


class NoSnapshots:
    interval_seconds = 30.0
    readings: dict = {}


def test_a_send_refused_at_the_call_stays_pending_not_failed() -> None:
    """The alerter takes the fence's refusal as 'not mine to send', not as a failed attempt:
    the delivery stays Pending with its attempt count, for whoever holds the Lease (the old
    code counted NotLeader as an 'unexpected' failure, attempt by attempt until Failed)."""
    view = view_module.View()
    evaluator = loop.Evaluator(view, None, 60.0, 4)  # type: ignore[arg-type]
    alerter = alerter_module.Alerter(view, evaluator, None, NoSnapshots(), {"webhook": Refused()})  # type: ignore[arg-type]
    spec = api.AlertPolicySpec.model_validate({
        "serviceRef": "web", "rules": [{"name": "HighErrorRate", "metric": "errorRate", "threshold": 5,
                                        "severity": "critical"}],
        "channels": [{"name": "hook", "webhook": {"url": "http://127.0.0.1:9/hook"}}],
        "routes": [{"severity": "critical", "channels": ["hook"]}]})
    key = ("AlertPolicy", "shop", "web")
    deliveries = outbox.enqueue([], [alerting.Notification(
        "k-1", "hook", "firing", "HighErrorRate", "web", "critical", "errors", MESSAGE.sent_at)], MESSAGE.sent_at)
    alerter.state[key] = {"deliveries": deliveries, "lastNotified": None}
    sent_before = metrics.NOTIFICATIONS.labels("webhook", "failed")._value.get()
    asyncio.run(alerter._deliver(key, spec, dict(deliveries[0])))
    assert alerter.state[key]["deliveries"] == deliveries, "untouched: Pending, attempt 1, no message"
    assert metrics.NOTIFICATIONS.labels("webhook", "failed")._value.get() == sent_before
