"""What every notifier shares: the message, the interface, errors, and guarded HTTP posting.

Notifiers (one file each: notify_slack, notify_email, notify_sms, notify_webhook,
notify_alertmanager; the registry in notifiers.py) send one message to one channel and raise
DeliveryError with a stable text on failure. Every message carries an idempotency key.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import typing

import aiohttp

from controller.adapters import http_check
from controller.api import alertpolicy as api
from controller.api import common
from controller.core import alerting

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

    @property
    def resolved(self) -> bool:
        return self.notification.kind == alerting.RESOLVED_KIND


class Notifier(typing.Protocol):
    async def send(self, channel: api.Channel, message: Message, secret: SecretReader) -> None: ...


class HttpPoster:
    """One aiohttp session behind the egress guard, shared by the HTTP notifiers."""

    def __init__(self, allow_loopback: bool) -> None:
        self.allow_loopback = allow_loopback
        self._session: aiohttp.ClientSession | None = None
        self._literal = http_check.HttpChecker(allow_loopback, concurrency=1)  # its address check only

    async def post(self, url: str, *, json_body: typing.Any = None, data: bytes | None = None,
                   headers: typing.Mapping[str, str] | None = None) -> str:
        refusal = self._literal.literal_refusal(url)
        if refusal is not None:
            raise DeliveryError(f"refused by the egress policy: {refusal}")
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=64, resolver=http_check.GuardedResolver(self.allow_loopback))
            self._session = aiohttp.ClientSession(connector=connector, trust_env=False)
        try:
            async with self._session.post(url, json=json_body, data=data, headers=headers, allow_redirects=False,
                                          timeout=aiohttp.ClientTimeout(total=TIMEOUT_SECONDS)) as response:
                text = (await response.content.read(4096)).decode(errors="replace")
                if response.status >= 300:
                    raise DeliveryError(f"HTTP {response.status} from {_host(url)}: {text[:200]}")
                return text
        except aiohttp.ClientConnectorError as error:
            cause = error.os_error
            if isinstance(cause, http_check.EgressRefused) or isinstance(cause.__cause__, http_check.EgressRefused):
                raise DeliveryError(f"refused by the egress policy: {cause}") from None
            raise DeliveryError(f"cannot connect to {_host(url)}") from None
        except asyncio.TimeoutError:
            raise DeliveryError(f"{_host(url)} did not answer within {TIMEOUT_SECONDS}s") from None
        except aiohttp.ClientError as error:
            raise DeliveryError(f"{_host(url)}: {type(error).__name__}") from None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


def _host(url: str) -> str:
    return url.split("/")[2] if "//" in url else url


def body(message: Message) -> dict[str, typing.Any]:
    """The JSON document webhook-like receivers get."""
    n = message.notification
    return {"version": "1", "key": n.key, "kind": n.kind, "namespace": message.namespace, "policy": message.policy,
            "rule": n.rule, "service": n.service, "severity": n.severity, "summary": n.summary,
            "firedAt": stamp(n.fired_at), "sentAt": stamp(message.sent_at)}


def stamp(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
