"""What every notifier shares: the message, the interface, errors, and guarded HTTP posting.

Notifiers (one file each: notify_slack, notify_email, notify_sms, notify_webhook,
notify_alertmanager; the registry in notifiers.py) send one message to one channel and raise
DeliveryError with a stable text on failure. Every message carries an idempotency key.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import hashlib
import re
import typing
import urllib.parse

import aiohttp

from controller.adapters import budget
from controller.adapters import egress
from controller.adapters import shares
from controller.api import alertpolicy as api
from controller.api import common
from controller.core import alerting
from controller.core import egress as egress_policy
from controller.core import timestamps

TIMEOUT_SECONDS = 10
SecretReader = typing.Callable[[common.SecretKeyRef], typing.Awaitable[str]]


class DeliveryError(Exception):
    """A send that did not go through; the text is written to status as is."""


@dataclasses.dataclass(frozen=True)
class Message:
    notification: alerting.Notification
    namespace: str
    policy: str
    sent_at: datetime.datetime
    valid_for: datetime.timedelta  # how long a firing alert stands without a repeat (Alertmanager endsAt)
    # The alert's labels (its rule's, alertname, severity, service, namespace, alertpolicy) and
    # its rule's annotations: forwarded to receivers that take them (webhook, Alertmanager).
    labels: typing.Mapping[str, str] = dataclasses.field(default_factory=dict)
    annotations: typing.Mapping[str, str] = dataclasses.field(default_factory=dict)
    # A group's notification: its alerts ({alert, state, labels, annotations}), one per line
    # of its summary; empty for one alert's notification.
    members: tuple[typing.Mapping[str, typing.Any], ...] = ()

    @property
    def resolved(self) -> bool:
        return self.notification.kind == alerting.RESOLVED_KIND


class Notifier(typing.Protocol):
    async def send(self, channel: api.Channel, message: Message, secret: SecretReader) -> None: ...


class HttpPoster:
    """One aiohttp session behind the egress guard, shared by the HTTP notifiers."""

    def __init__(self, allow_loopback: bool, fence: typing.Callable[[str], None] = lambda _: None) -> None:
        self.allow_loopback = allow_loopback
        # Called immediately before each send, after the Secret reads and any connection wait:
        # raises (the operator's NotLeader) when this replica may no longer act.
        self.fence = fence
        # One namespace (the alerter says whose delivery this is; else one receiver host)
        # holds at most its share of the connections (adapters/shares.py).
        self.shares = shares.FairShares(budget.NOTIFY_CONNECTIONS, budget.NOTIFY_PER_NAMESPACE)
        self._session: aiohttp.ClientSession | None = None

    async def post(self, url: str, *, json_body: typing.Any = None, data: bytes | None = None,
                   headers: typing.Mapping[str, str] | None = None, url_is_secret: bool = False) -> str:
        """POST within TIMEOUT_SECONDS in total. A URL read from a Secret (a Slack webhook, an
        SMS gateway) is never echoed: errors name its host at most, and never quote the answer
        (a receiver may reflect the request, token and all)."""
        where = _where(url)
        if url_is_secret and where is None:  # whatever else it is, no part of it is named
            raise DeliveryError("the URL in the Secret is not an http(s) URL with a host")
        refusal = egress_policy.refused_url(url, self.allow_loopback) or egress.pooled_refusal(url)
        if refusal is not None:
            raise DeliveryError(f"refused by the egress policy: {refusal if not url_is_secret else where}")
        if self._session is None:
            connector = egress.guarded_connector(self.allow_loopback, limit=budget.NOTIFY_CONNECTIONS,
                                                 ttl_dns_cache=10)  # the dial point judges literals too
            self._session = aiohttp.ClientSession(connector=connector, trust_env=False)
        async with self.shares.hold(shares.key_for(url)):
            return await self._post(url, where, json_body, data, headers, url_is_secret)

    async def _post(self, url: str, where: str | None, json_body: typing.Any, data: bytes | None,
                    headers: typing.Mapping[str, str] | None, url_is_secret: bool) -> str:
        assert self._session is not None
        self.fence("notification")  # after the wait for a share: leadership may have ended meanwhile
        try:
            async with self._session.post(url, json=json_body, data=data, headers=headers, allow_redirects=False,
                                          timeout=aiohttp.ClientTimeout(total=TIMEOUT_SECONDS)) as response:
                text = (await egress.read_limited(response.content, 4096)).decode(errors="replace")
                if response.status >= 300:
                    quoted = "" if url_is_secret else f": {text[:200]}"
                    raise DeliveryError(f"HTTP {response.status} from {where}{quoted}")
                return text
        except aiohttp.ClientConnectorError as error:
            refusal = egress.refusal_of(error)
            if refusal is not None:
                raise DeliveryError(f"refused by the egress policy: {refusal}") from None
            raise DeliveryError(f"cannot connect to {where}") from None
        except asyncio.TimeoutError:
            raise DeliveryError(f"{where} did not answer within {TIMEOUT_SECONDS}s") from None
        except aiohttp.ClientError as error:
            raise DeliveryError(f"{where}: {type(error).__name__}") from None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


_HOST = re.compile(r"[a-z0-9.\-:]+")  # a DNS name or an IP literal (urlsplit lowercases; IPv6 unbracketed)


def _where(url: str) -> str | None:
    """host[:port] of an http(s) URL, or None: never the path, query or credentials it may
    carry, and nothing of a value that is not an http(s) URL with a plain host name or address:
    the "host" of `x://token`, `//token` or `mailto://token` is the Secret's value itself."""
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname or not _HOST.fullmatch(parts.hostname):
        return None
    return parts.hostname + (f":{port}" if port else "")


def body(message: Message) -> dict[str, typing.Any]:
    """The JSON document webhook-like receivers get."""
    n = message.notification
    return {"version": "1", "key": n.key, "kind": n.kind, "namespace": message.namespace, "policy": message.policy,
            "rule": n.rule, "service": n.service, "severity": n.severity, "summary": n.summary,
            "firedAt": timestamps.to_status(n.fired_at), "sentAt": timestamps.to_status(message.sent_at),
            "labels": dict(message.labels), "annotations": {**message.annotations, "summary": n.summary},
            **({"group": n.group, "alerts": [dict(m) for m in message.members]} if n.group else {})}


def alert_key(notification: alerting.Notification, limit: int = 255) -> str:
    """The alert's (or group's) identity, the same for its trigger and its resolution: its
    notification key without the kind and channel (policy uid/rule/service/fired at, or
    policy uid/group/<hash>/since); hashed when longer than the receiver takes."""
    identity = "/".join(notification.key.split("/")[:4])
    return identity if len(identity) <= limit else "capliquify-" + hashlib.sha256(identity.encode()).hexdigest()
