"""Operator-side health checks behind the egress guard: HTTP (aiohttp; a method, headers whose
values may come from a Secret, a CA bundle and a server name), TCP (a connection accepted) and
gRPC (grpc.health.v1, adapters/grpc_health.py).

Every kind is charged to its namespace's fair share (adapters/shares.py) and dials through the
guard (adapters/egress.py). A value read from a Secret is sent and nothing else: a probe's
message names the Secret and the key when it cannot be read, never what it holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import ssl
import time
import typing

import aiohttp
import h2.exceptions

from controller.adapters import budget
from controller.adapters import egress
from controller.adapters import grpc_health
from controller.adapters import shares
from controller.api import monitoredservice as api
from controller.core import egress as egress_policy
from controller.core import health

BODY_LIMIT = budget.HEALTH_BODY  # how far into a body `bodyContains` looks
SECRET_TTL_SECONDS = 60.0  # a Secret is read once a minute per check's key, not once a probe
CACHED_SECRETS = 4096  # entries; past it the cache starts again (values are small)

EgressRefused = egress.EgressRefused  # one type, wherever a refusal is caught
SecretReader = typing.Callable[[str, str, str], typing.Awaitable[typing.Optional[str]]]


class CheckFailed(Exception):
    """The check cannot be made as written (a Secret missing, a CA that is no PEM): its message
    is the probe's, and names no secret value."""


class HttpChecker:
    def __init__(self, allow_loopback: bool, concurrency: int = 256, secrets: SecretReader | None = None) -> None:
        self.allow_loopback = allow_loopback
        self._concurrency = concurrency
        # One namespace (the guard says whose check this is; else one host) holds at most its
        # share of the connections (adapters/shares.py).
        self.shares = shares.FairShares(concurrency, min(concurrency, budget.HEALTH_PER_NAMESPACE))
        self._session: aiohttp.ClientSession | None = None
        self._secrets = secrets
        self._secret_values: dict[tuple[str, str, str], tuple[float, str]] = {}
        self._contexts: dict[tuple[str, bool], ssl.SSLContext] = {}

    async def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = egress.guarded_connector(self.allow_loopback, limit=self._concurrency)
            self._session = aiohttp.ClientSession(connector=connector, trust_env=False)
        return self._session

    def literal_refusal(self, url: str) -> str | None:
        """Scheme, port and literal addresses, judged before any lookup (core/egress.py)."""
        return egress_policy.refused_url(url, self.allow_loopback) or egress.pooled_refusal(url)

    async def probe(self, check: api.HealthCheck | api.HttpCheck) -> health.ProbeResult:
        """One probe of `check` (an HttpCheck alone: an HTTP check without a Secret), in the
        namespace the guard names (shares.tenant), which is where its Secret is read."""
        spec = check if isinstance(check, api.HealthCheck) else None
        http = check if isinstance(check, api.HttpCheck) else check.http
        endpoint = spec.tcp or spec.grpc if spec is not None else None
        if http is not None:
            url, refusal = http.url, self.literal_refusal(http.url)
        elif endpoint is not None:
            url = f"tcp://{endpoint.host}:{endpoint.port}"
            refusal = egress_policy.refused_host(endpoint.host.strip("[]"), self.allow_loopback)
        else:
            return health.ProbeResult(False, None, "the check has no http, tcp or grpc")
        if refusal is not None:
            raise EgressRefused(refusal)
        async with self.shares.hold(shares.key_for(url)):
            try:
                if http is not None:
                    return await self._http(await self._client(), http, spec.secretName if spec else None)
                if spec is not None and spec.tcp is not None:
                    return await self._tcp(spec.tcp)
                assert spec is not None and spec.grpc is not None
                return await self._grpc(spec.grpc, spec.secretName)
            except CheckFailed as failed:
                return health.ProbeResult(False, None, str(failed))

    # -- Secrets and TLS -------------------------------------------------------------------
    async def _secret(self, name: str | None, key: str) -> str:
        namespace = shares.TENANT.get()
        if name is None or namespace is None or self._secrets is None:
            raise CheckFailed(f"no Secret to read key {key} from")
        now = time.monotonic()
        cached = self._secret_values.get((namespace, name, key))
        if cached is not None and now - cached[0] < SECRET_TTL_SECONDS:
            return cached[1]
        try:
            value = await self._secrets(namespace, name, key)
        except Exception as error:  # not found, forbidden, unreachable: said by its type alone
            raise CheckFailed(f"Secret {name} cannot be read ({type(error).__name__})") from None
        if value is None:
            raise CheckFailed(f"Secret {name} has no key {key}")
        if len(self._secret_values) >= CACHED_SECRETS:
            self._secret_values.clear()
        self._secret_values[(namespace, name, key)] = (now, value)
        return value

    async def _tls(self, tls: api.Tls | None, secret_name: str | None, http2: bool) -> ssl.SSLContext | None:
        """The client context for `tls`: the system's CAs, or the bundle of the check's Secret."""
        if tls is None and not http2:
            return None
        bundle = await self._secret(secret_name, tls.caSecretKey) if tls is not None and tls.caSecretKey else ""
        key = (hashlib.sha256(bundle.encode()).hexdigest(), http2)
        context = self._contexts.get(key)
        if context is None:
            try:
                context = ssl.create_default_context(cadata=bundle) if bundle else ssl.create_default_context()
            except (ssl.SSLError, ValueError):
                raise CheckFailed(f"Secret {secret_name} key {tls.caSecretKey if tls else ''}: "
                                  "not a PEM CA bundle") from None
            if http2:
                context.set_alpn_protocols(["h2"])
            if len(self._contexts) >= 64:
                self._contexts.clear()
            self._contexts[key] = context
        return context

    # -- the three kinds -------------------------------------------------------------------
    async def _http(self, session: aiohttp.ClientSession, check: api.HttpCheck, secret_name: str | None) -> health.ProbeResult:
        headers = {}
        for header in check.headers:
            value = header.value if header.value is not None else await self._secret(secret_name, header.secretKey or "")
            if any((ord(c) < 32 and c != "\t") or ord(c) == 127 for c in value):
                raise CheckFailed(f"header {header.name}: the value has a control character in it")
            headers[header.name] = value
        options: dict[str, typing.Any] = {}
        if check.tls is not None and check.url.startswith("https:"):
            options["ssl"] = await self._tls(check.tls, secret_name, http2=False)
            if check.tls.serverName:
                options["server_hostname"] = check.tls.serverName
        started = time.perf_counter()  # once it has its place: a wait for one is not latency
        try:
            async with session.request(check.method, check.url, headers=headers,
                                       timeout=aiohttp.ClientTimeout(total=check.timeoutSeconds),
                                       allow_redirects=False, **options) as response:
                # Searched as it streams: 256 probes in flight never hold 256 bodies.
                needle = check.bodyContains.encode() if check.bodyContains is not None else None
                found = await egress.contains(response.content, needle, BODY_LIMIT, budget.HEALTH_READ)
                ok, message = health.judge_response(response.status, (check.bodyContains or "") if found else "", check)
        except EgressRefused:
            raise
        except aiohttp.ClientConnectorCertificateError:
            return health.ProbeResult(False, None, "TLS: the certificate is not trusted, or not for this name")
        except aiohttp.ClientConnectorSSLError:
            return health.ProbeResult(False, None, "TLS: the handshake failed")
        except aiohttp.ClientConnectorError as error:
            refusal = egress.refusal_of(error)
            if refusal is not None:
                raise EgressRefused(refusal) from None
            cause = error.os_error
            return health.ProbeResult(False, None, f"cannot connect: {cause.strerror or type(cause).__name__}")
        except asyncio.TimeoutError:
            return health.ProbeResult(False, None, f"no answer within {check.timeoutSeconds}s")
        except aiohttp.ClientError as error:
            return health.ProbeResult(False, None, f"{type(error).__name__}")
        except ValueError:  # a header the client will not write (its message may quote the value): said without it
            return health.ProbeResult(False, None, "a header value cannot be sent as HTTP")
        return health.ProbeResult(ok, (time.perf_counter() - started) * 1000, message)

    async def _tcp(self, check: api.TcpCheck) -> health.ProbeResult:
        started = time.perf_counter()
        try:
            async with asyncio.timeout(check.timeoutSeconds):
                _, writer = await egress.open_stream(check.host, check.port, self.allow_loopback)
        except EgressRefused:
            raise
        except TimeoutError:
            return health.ProbeResult(False, None, f"no connection within {check.timeoutSeconds}s")
        except OSError as error:
            return health.ProbeResult(False, None, f"cannot connect: {_reason(error)}")
        latency = (time.perf_counter() - started) * 1000
        await _close(writer)
        return health.ProbeResult(True, latency, f"port {check.port} accepted the connection")

    async def _grpc(self, check: api.GrpcCheck, secret_name: str | None) -> health.ProbeResult:
        context = await self._tls(check.tls, secret_name, http2=True) if check.tls is not None else None
        server_name = check.tls.serverName if check.tls is not None else None
        started = time.perf_counter()
        try:
            async with asyncio.timeout(check.timeoutSeconds):
                reader, writer = await egress.open_stream(check.host, check.port, self.allow_loopback, ssl=context,
                                                          server_hostname=server_name)
                try:
                    answer = await grpc_health.check(reader, writer, authority=f"{check.host}:{check.port}",
                                                     service=check.service, tls=context is not None,
                                                     timeout_seconds=check.timeoutSeconds)
                finally:
                    writer.close()
        except EgressRefused:
            raise
        except TimeoutError:
            return health.ProbeResult(False, None, f"no answer within {check.timeoutSeconds}s")
        except ssl.SSLCertVerificationError:
            return health.ProbeResult(False, None, "TLS: the certificate is not trusted, or not for this name")
        except ssl.SSLError:
            return health.ProbeResult(False, None, "TLS: the handshake failed")
        except h2.exceptions.H2Error:
            return health.ProbeResult(False, None, "not HTTP/2 (a gRPC server speaks HTTP/2)")
        except OSError as error:
            return health.ProbeResult(False, None, f"cannot connect: {_reason(error)}")
        return health.ProbeResult(answer.ok, (time.perf_counter() - started) * 1000, answer.message)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


def _reason(error: OSError) -> str:
    """The system's words for a failed connect (the event loop's own message names the address)."""
    return os.strerror(error.errno) if error.errno else (error.strerror or type(error).__name__)


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError, asyncio.TimeoutError):
        async with asyncio.timeout(1):
            await writer.wait_closed()
