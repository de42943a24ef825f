"""List and watch one kind in one namespace (or all), over aiohttp, for the operator's view.

Why not kopf's watch: kopf lists every watched kind itself (a second full listing beside the
warm-up's) and runs a worker task per object for each event. At 10,000 objects those were most
of the start-up's peak memory and much of its CPU (issue 10), and the operator needs neither:
only the raw events, in order. This is that, with the API server's own resume rules: carry on
from the last resourceVersion seen (bookmarks included) after a disconnect; list again after
"410 Gone".
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import ssl
import typing

import aiohttp
import kubernetes

import controller
from controller.adapters import kubernetes_api

logger = logging.getLogger(__name__)

SERVER_TIMEOUT_SECONDS = 300  # the API server ends each watch after this; we carry on from there
READ_TIMEOUT_SECONDS = 330  # silence longer than the server's own end of the watch: a dead connection
CONNECT_TIMEOUT_SECONDS = 10
MAX_LINE_BYTES = 16 * 1024 * 1024  # etcd's object limit is 1.5 MB; anything far beyond is not an event
BACKOFF_SECONDS = (1.0, 2.0, 5.0, 10.0, 30.0)
MIN_STREAM_SECONDS = 1.0

BUILTIN_PATHS = {
    "Deployment": "/apis/apps/v1", "StatefulSet": "/apis/apps/v1",
    "HorizontalPodAutoscaler": "/apis/autoscaling/v2",
}
BUILTIN_PLURALS = {"Deployment": "deployments", "StatefulSet": "statefulsets",
                   "HorizontalPodAutoscaler": "horizontalpodautoscalers"}

Event = typing.Mapping[str, typing.Any]


class Gone(Exception):
    """The resourceVersion to carry on from is too old: list again."""


def path(kind: str, namespace: str | None) -> str:
    if kind in kubernetes_api.PLURALS:
        group, plural = f"/apis/{controller.API_GROUP}/{controller.API_VERSION}", kubernetes_api.PLURALS[kind]
    else:
        group, plural = BUILTIN_PATHS[kind], BUILTIN_PLURALS[kind]
    return f"{group}/namespaces/{namespace}/{plural}" if namespace else f"{group}/{plural}"


def split_lines(buffer: bytes, data: bytes) -> tuple[list[bytes], bytes]:
    """Complete lines in buffer+data, and the unfinished rest."""
    *lines, rest = (buffer + data).split(b"\n")
    if len(rest) > MAX_LINE_BYTES:
        raise ValueError(f"a watch event longer than {MAX_LINE_BYTES} bytes")
    return [line for line in lines if line.strip()], rest


def version_after(event: Event, kind: str, current: str) -> str:
    """The resourceVersion to resume from after `event`; raises Gone for a 410, ValueError for
    any other error the API server sends inside the stream."""
    kind_of_event, obj = event.get("type"), event.get("object") or {}
    if kind_of_event == "ERROR":
        if obj.get("code") == 410:
            raise Gone(obj.get("message", "410 Gone"))
        raise ValueError(f"watch of {kind} failed: {obj.get('code')} {obj.get('reason')}")
    return str((obj.get("metadata") or {}).get("resourceVersion") or current)


def ssl_context(configuration: kubernetes.client.Configuration) -> ssl.SSLContext | bool:
    if not configuration.verify_ssl:
        return False
    context = ssl.create_default_context(cafile=configuration.ssl_ca_cert)
    if configuration.cert_file:
        context.load_cert_chain(configuration.cert_file, configuration.key_file)
    return context


@dataclasses.dataclass
class Watcher:
    """One session for all of the operator's watches; one long request per (kind, namespace)."""

    configuration: kubernetes.client.Configuration
    user_agent: str = "capliquify-operator"
    on_restart: typing.Callable[[str, str], None] = lambda kind, why: None
    _session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            # One connection per watch: each is a request that stays open (no limit needed
            # beyond the number of watches, which the operator fixes at start).
            connector = aiohttp.TCPConnector(limit=0, ssl=ssl_context(self.configuration))
            self._session = aiohttp.ClientSession(connector=connector)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    def _headers(self) -> dict[str, str]:
        token = kubernetes_api.bearer_token(self.configuration)  # read per request: tokens rotate
        headers = {"Accept": "application/json", "User-Agent": self.user_agent}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return headers

    async def watch(self, kind: str, namespace: str | None, since: str,
                    relist: typing.Callable[[], typing.Awaitable[str]],
                    on_event: typing.Callable[[Event], None]) -> None:
        """Forever: events of `kind` after resourceVersion `since` to `on_event`; after a 410,
        `relist` (which takes in a fresh listing and returns its resourceVersion) and events after
        that. Never returns; errors back off and resume from the last version seen."""
        version: str | None = since
        failures = 0
        while True:
            try:
                if version is None:
                    version = await relist()
                started = asyncio.get_running_loop().time()
                version = await self._stream(kind, namespace, version, on_event)
                failures = 0
                if asyncio.get_running_loop().time() - started < MIN_STREAM_SECONDS:
                    await asyncio.sleep(MIN_STREAM_SECONDS)  # a server that ends every watch at once is not hammered
            except Gone as gone:
                logger.info("watch of %s in %s: %s; listing again", kind, namespace or "all namespaces", gone)
                self.on_restart(kind, "gone")
                version = None
            except asyncio.CancelledError:
                raise
            except Exception as error:  # the API server down, a reset, garbage: back off, resume
                delay = BACKOFF_SECONDS[min(failures, len(BACKOFF_SECONDS) - 1)]
                failures += 1
                logger.warning("watch of %s in %s broke (%s); again in %.0f s", kind,
                               namespace or "all namespaces", type(error).__name__, delay)
                self.on_restart(kind, "error")
                await asyncio.sleep(delay)

    async def _stream(self, kind: str, namespace: str | None, version: str,
                      on_event: typing.Callable[[Event], None]) -> str:
        """One watch request, to its end; returns the resourceVersion to carry on from."""
        params = {"watch": "true", "allowWatchBookmarks": "true", "resourceVersion": version,
                  "timeoutSeconds": str(SERVER_TIMEOUT_SECONDS)}
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=CONNECT_TIMEOUT_SECONDS,
                                        sock_read=READ_TIMEOUT_SECONDS)
        url = str(self.configuration.host).rstrip("/") + path(kind, namespace)
        # A kubeconfig's tls-server-name is the name the API server's certificate is checked against.
        extra: dict[str, typing.Any] = {}
        if getattr(self.configuration, "tls_server_name", None):
            extra["server_hostname"] = self.configuration.tls_server_name
        async with self.session().get(url, params=params, headers=self._headers(), timeout=timeout, **extra) as response:
            if response.status == 410:
                raise Gone("410 Gone")
            if response.status != 200:
                raise ValueError(f"watch of {kind}: HTTP {response.status}")
            buffer = b""
            async for data in response.content.iter_any():
                lines, buffer = split_lines(buffer, data)
                for line in lines:
                    event = json.loads(line)
                    version = version_after(event, kind, version)
                    if event.get("type") in ("ADDED", "MODIFIED", "DELETED"):
                        event["object"].setdefault("kind", kind)
                        on_event(event)
        return version
