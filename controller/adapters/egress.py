"""The one way out: every outbound HTTP request goes through a guarded aiohttp session.

The policy itself is pure (`core/egress.py`); this file applies it where it matters — on
the address each socket is actually connected to. `guarded_connector` is the only way this
project builds a connector for tenant egress (a test searches the tree for any other): its
dial point (`DialGuard`, aiohttp's socket factory) sees the final IP of every connection
attempt — an IP literal from the URL, which aiohttp never gives the resolver, and every
address a name resolved to alike — and refuses before the socket exists. The resolver
refuses too (a whole answer, with the name's reason), so a name cannot rebind between check
and connect. Every request also has a total deadline, no redirects, no proxy from the
environment, and a body size limit.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import random
import socket
import time
import types
import typing
import weakref

import aiohttp
from aiohttp import abc as aiohttp_abc

from controller.adapters import shares
from controller.core import egress
from controller.core import service_names

AddrInfo = tuple[int, int, int, str, tuple[typing.Any, ...]]
SocketFactory = typing.Callable[[AddrInfo], socket.socket]


T = typing.TypeVar("T")


class EgressRefused(OSError):
    """The destination is refused by the egress policy (an OSError, so aiohttp's connector
    carries it through as the connection error)."""


class ServiceDirectory(typing.Protocol):
    """Where a name of a tenant's own namespace is looked up instead of DNS (the Kubernetes
    API: adapters/kubernetes_services.py): the Service and its EndpointSlices, and which
    addresses are a Running Pod's of the namespace; or why not."""

    async def lookup(self, namespace: str, name: str) -> service_names.Found | str: ...

    async def pods(self, namespace: str, addresses: typing.Iterable[str]) -> typing.AbstractSet[str] | str: ...


# The namespace rule inside the cluster's networks (core/egress.ClusterNetworks), set once at
# start from the operator's flags. A name of the tenant's own namespace is then answered from
# the API (SERVICES, core/service_names.py), never by DNS, and only that answer permits the
# namespace to dial an address inside them: the dial point sees addresses only, not names, so
# it compares the address dialled with what the API gave that namespace's name just before.
CLUSTER = egress.ClusterNetworks()
SERVICES: ServiceDirectory | None = None  # None with networks given: a namespace's names are refused
PERMIT_SECONDS = 300.0  # a name's mark on the connections it opened, renewed by each of its requests
DIAL_PERMIT_SECONDS = 30.0  # from the resolver's answer to the dial (aiohttp dials at once)
_PERMITS: dict[tuple[str, str], float] = {}


def configure_cluster(cluster: egress.ClusterNetworks, services: ServiceDirectory | None = None) -> None:
    global CLUSTER, SERVICES
    CLUSTER, SERVICES = cluster, services
    _PERMITS.clear()
    _NAMED.clear()


_NAMED: dict[str, tuple[str, float]] = {}  # a name that resolved inside: the namespace it is of


def _permit(namespace: str, address: str, host: str) -> None:
    now = time.monotonic()
    if len(_PERMITS) >= 4096:  # the oldest half goes (a name resolves again when asked)
        for address_key in list(_PERMITS)[:2048]:
            del _PERMITS[address_key]
    _PERMITS[(namespace, address)] = now + DIAL_PERMIT_SECONDS
    _mark(host.lower().rstrip("."), namespace, now)


def _mark(name: str, namespace: str, now: float) -> None:
    """`name` is `namespace`'s (and so is a connection it opened) until PERMIT_SECONDS after
    its last use; the least recently used marks go first when there are too many."""
    _NAMED.pop(name, None)
    if len(_NAMED) >= 4096:
        for stale in [key for key, (_, until) in _NAMED.items() if until <= now]:
            del _NAMED[stale]
        if len(_NAMED) >= 3072:
            for oldest in list(_NAMED)[:2048]:
                del _NAMED[oldest]
    _NAMED[name] = (namespace, now + PERMIT_SECONDS)


def pooled_refusal(url: str) -> str | None:
    """Before a pooled session is asked (it reuses a kept-alive connection without resolving
    or dialling): a namespace may not ride a connection another namespace's own name or
    permitted literal opened inside the cluster's networks."""
    namespace = shares.TENANT.get()
    if namespace is None or not CLUSTER.networks:
        return None
    target = egress.dialled(url)
    if isinstance(target, str):
        return None  # refused_url says why
    host = target[1].lower().rstrip(".")
    literal = egress.literal_address(host)
    if literal is not None:  # never through a permit: those are for what a name of its own resolved to
        return CLUSTER.refused(literal, None, namespace)
    # Another namespace's Service name, whatever its mark says: marks are few (the least
    # recently used go), and one dropped while its connection was pooled handed that connection
    # to whoever asked next (test_review_findings 24).
    refusal = others_service(host, namespace)
    if refusal is not None:
        return refusal
    owner = _NAMED.get(host)
    if owner is not None and owner[0] == namespace:
        # Its owner's request: the mark lives on with the connection it keeps alive (which is
        # reused without a lookup; a mark set only at the lookup ran out while it was pooled).
        _mark(host, namespace, time.monotonic())
        return None
    if owner is None or owner[1] <= time.monotonic() or host in CLUSTER.trusted:
        return None
    return (f"{host} is inside the cluster's networks but not a Service of namespace {namespace}: "
            f"name one of its own as <service>.{namespace}.svc")


def others_service(host: str, namespace: str) -> str | None:
    """With the cluster's networks given, a name of another namespace's Service is refused
    outright (the operator's trusted names excepted), whatever it resolves to: before the
    pooled session is asked and at the resolver alike."""
    name = host.lower().rstrip(".")
    other = service_names.namespace_of(name, CLUSTER.domain) if CLUSTER.networks else None
    if other is None or other == namespace or name in CLUSTER.trusted:
        return None
    return (f"{name} is a name of a Service of namespace {other}, not a Service of namespace {namespace}: with "
            f"the cluster's networks given, name one of its own as <service>.{namespace}.svc")


def cluster_refusal(address: str) -> str | None:
    """At the dial point: an address inside the cluster's networks is dialled for a namespace
    only if the guarded resolver just gave it for one of its names (the API's answer for a
    Service of its own, or the operator's trusted endpoints); a literal never is (refused
    before the dial, and here without a permit)."""
    namespace = shares.TENANT.get()
    if namespace is None or not CLUSTER.inside(address):
        return None
    if _PERMITS.get((namespace, address), 0.0) > time.monotonic():
        return None
    return CLUSTER.refused(address, None, namespace)


LOOKUP_THREADS = 16  # name lookups in flight at once, in a pool of their own
LOOKUP_SHARE = 4  # of those, what one namespace (else one name) holds at most, however long they hang
LOOKUP_DEADLINE_SECONDS = 10.0  # waiting for a place and for the answer, together
_NUMERIC = socket.AI_NUMERICHOST | socket.AI_NUMERICSERV


_NO_SUCH_NAME = frozenset({socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME)})


def _system_answers(host: str, port: int, family: int) -> list[typing.Any]:
    """getaddrinfo's answers for `host`. A name with a dot is asked as it is written first
    (`name.`: no search domain), and under the search domains only when no such name exists:
    in a pod (ndots:5) the search list comes first, and `hooks.slack.com.svc.cluster.local` is
    endpoint `hooks` of Service `slack` in a namespace named `com`, answered by whoever writes
    its EndpointSlices (test_review_findings 25). A name ending in `.svc` is asked with the
    cluster's domain first (`prometheus.monitoring.svc.svc.cluster.local`, in a namespace named
    `svc`, comes before it in the search list). Short names (`web.shop`, `web`) still resolve
    through the search list, a query later."""
    if "." in host and not host.endswith(".") and ":" not in host and egress.literal_address(host) is None:
        absolute = f"{host}.{CLUSTER.domain}." if host.lower().endswith(".svc") else f"{host}."
        try:
            return socket.getaddrinfo(absolute, port, family, socket.SOCK_STREAM, 0, socket.AI_ADDRCONFIG)
        except socket.gaierror as error:
            if error.errno not in _NO_SUCH_NAME:
                raise
    return socket.getaddrinfo(host, port, family, socket.SOCK_STREAM, 0, socket.AI_ADDRCONFIG)


def _getaddrinfo(host: str, port: int, family: int) -> list[tuple[int, str, int]]:
    """(family, address, proto) of each answer for `host` (runs in a lookup thread). A scoped
    IPv6 answer keeps its zone id (`fe80::1%2`), which the policy refuses."""
    answers = []
    for found, _, proto, _, address in _system_answers(host, port, family):
        if found == socket.AF_INET6 and len(address) >= 4:
            answers.append((int(found), f"{address[0]}%{address[3]}" if address[3] else str(address[0]), proto))
        elif found == socket.AF_INET:
            answers.append((int(found), str(address[0]), proto))
    return answers


class Lookups:
    """Name lookups, in threads of their own and handed out in fair shares.

    getaddrinfo blocks its thread until the C library gives up (tens of seconds for a name
    whose DNS never answers) and a thread cannot be cancelled. In the event loop's default
    executor, shared by every tenant and purpose, eight such lookups of one tenant failed
    another tenant's check by name ("no answer within 3s"). Here a lookup holds its place,
    charged to its namespace (`shares.key_for`: the loops' context variable, else the name),
    until its thread returns, not merely until its caller stops waiting: one namespace's
    hanging lookups hold at most `per_key` of the threads, and never anyone else's. The
    caller waits `deadline` seconds at most, for a place and the answer together."""

    def __init__(self, threads: int | None = None, per_key: int | None = None, deadline: float | None = None) -> None:
        threads = LOOKUP_THREADS if threads is None else threads
        # reserve=threads: past its share a key never takes a place (a strict cap), since a
        # place held by a hanging lookup is not given back for as long as it hangs.
        self.shares = shares.FairShares(threads, LOOKUP_SHARE if per_key is None else per_key, reserve=threads)
        self.deadline = LOOKUP_DEADLINE_SECONDS if deadline is None else deadline
        self._pool = concurrent.futures.ThreadPoolExecutor(threads, thread_name_prefix="lookup")

    async def resolve(self, host: str, port: int = 0,
                      family: int = socket.AF_UNSPEC) -> list[aiohttp_abc.ResolveResult]:
        """Raises socket.gaierror (an OSError) when there is no answer, or none in time."""
        key = shares.key_for(f"dns://{host}")
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.deadline):
                await self.shares.acquire(key)
                try:
                    job = self._pool.submit(_getaddrinfo, host, port, family)
                except BaseException:
                    self.shares.release(key)
                    raise
                # Given back when the thread is done (or the job is dropped before it ran).
                job.add_done_callback(functools.partial(_give_back, loop, self.shares, key))
                answers = await asyncio.wrap_future(job)
        except TimeoutError:
            raise socket.gaierror(socket.EAI_AGAIN, f"no answer for {host} within {self.deadline:g}s") from None
        return [aiohttp_abc.ResolveResult(hostname=host, host=address, port=port, family=found, proto=proto,
                                          flags=_NUMERIC) for found, address, proto in answers]


def _give_back(loop: asyncio.AbstractEventLoop, fair: shares.FairShares, key: typing.Hashable,
               _: concurrent.futures.Future[typing.Any]) -> None:
    try:
        loop.call_soon_threadsafe(fair.release, key)
    except RuntimeError:  # the loop is closed: its shares went with it
        pass


_LOOKUPS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Lookups] = weakref.WeakKeyDictionary()


def lookups() -> Lookups:
    """The running loop's lookups (one loop in the operator; a test's loop gets its own)."""
    loop = asyncio.get_running_loop()
    found = _LOOKUPS.get(loop)
    if found is None:
        found = _LOOKUPS[loop] = Lookups()
    return found


class PooledResolver(aiohttp_abc.AbstractResolver):
    """aiohttp's resolver interface over `lookups()` (never the loop's default executor)."""

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[aiohttp_abc.ResolveResult]:
        return await lookups().resolve(host, port, family)

    async def close(self) -> None:
        return None


class GuardedResolver(aiohttp_abc.AbstractResolver):
    """Resolves like aiohttp does, then refuses forbidden addresses (no DNS-rebinding gap).

    `inner` is the pooled system resolver (`Lookups`) unless a test gives one that asks no
    DNS server. Answers are kept `ttl` seconds (None: for good, as aiohttp's cache), and a
    lookup in flight is shared by the callers of one namespace only: aiohttp's own cache lets
    every caller of a name wait on the first one's lookup, so a namespace whose share of
    lookups hung made another namespace's lookup of the same name wait for its turn."""

    def __init__(self, allow_loopback: bool, inner: aiohttp_abc.AbstractResolver | None = None,
                 ttl: float | None = 0) -> None:
        self._inner = inner if inner is not None else PooledResolver()
        self._allow_loopback = allow_loopback
        self._ttl = ttl
        self._kept: dict[tuple[str, int, int], tuple[float, list[aiohttp_abc.ResolveResult]]] = {}
        self._flying: dict[tuple[typing.Hashable, str, int, int], asyncio.Task[list[aiohttp_abc.ResolveResult]]] = {}

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[aiohttp_abc.ResolveResult]:
        namespace = shares.TENANT.get()
        answers = await self._judged(host, host, port, family, namespace, 0)
        if namespace is not None:
            for answer in answers:
                if CLUSTER.inside(answer["host"]):
                    _permit(namespace, answer["host"], host)
        return answers

    async def _judged(self, asked: str, host: str, port: int, family: int, namespace: str | None,
                      hops: int) -> list[aiohttp_abc.ResolveResult]:
        """The answers for `host` (reached through the name `asked`), every address judged. With
        the cluster's networks given, a name of the namespace's own is answered from the API
        and never by DNS; an ExternalName is judged as the name it points to, and so on."""
        name = host.lower().rstrip(".")
        if namespace is not None and (refusal := others_service(name, namespace)) is not None:
            raise EgressRefused(refusal)
        own = service_names.named(name, namespace, CLUSTER.domain) if namespace is not None and CLUSTER.networks else None
        if own is not None and namespace is not None:
            verdict = await _service_verdict(own, namespace, port, self._allow_loopback)
            if isinstance(verdict, service_names.Refusal):
                raise EgressRefused(verdict.reason)
            if isinstance(verdict, service_names.Alias):
                refusal = egress.refused_host(verdict.name, self._allow_loopback)
                if refusal is None and hops >= service_names.ALIAS_HOPS:
                    refusal = f"{asked}: more than {service_names.ALIAS_HOPS} ExternalName Services in a row"
                if refusal is not None:
                    raise EgressRefused(f"{name} is an ExternalName Service for {verdict.name}: {refusal}")
                try:
                    return await self._judged(asked, verdict.name, port, family, namespace, hops + 1)
                except EgressRefused as beyond:
                    if hops:
                        raise
                    raise EgressRefused(f"{name} is an ExternalName Service for {verdict.name}: {beyond}") from None
            # The endpoints themselves, each on its port (a Service's port mapped as kube-proxy
            # maps it): aiohttp and open_stream dial the answer's port, not the URL's.
            answers = [aiohttp_abc.ResolveResult(hostname=asked, host=address, port=served, proto=0, flags=_NUMERIC,
                                                 family=socket.AF_INET6 if ":" in address else socket.AF_INET)
                       for address, served in verdict.endpoints if family in (socket.AF_UNSPEC, 0)
                       or family == (socket.AF_INET6 if ":" in address else socket.AF_INET)]
            if not answers:
                raise socket.gaierror(socket.EAI_NONAME, f"{name} has no address of the family asked for")
        else:
            literal = egress.literal_address(name) if hops else None  # an ExternalName that is an address
            answers = ([aiohttp_abc.ResolveResult(hostname=asked, host=literal, port=port, proto=0, flags=_NUMERIC,
                                                  family=socket.AF_INET6 if ":" in literal else socket.AF_INET)]
                       if literal is not None else await self._answers(host, port, family))
            if hops:  # after an ExternalName: the name asked for, as a DNS CNAME leaves it (TLS's server name)
                answers = [aiohttp_abc.ResolveResult(**{**answer, "hostname": asked}) for answer in answers]
            # Judged as the name DNS was asked for: after an ExternalName, that name, not `asked`.
            refused_by_name = [CLUSTER.refused(a["host"], None if literal is not None else host, namespace)
                               for a in answers]
            if any(refused_by_name):
                raise EgressRefused(next(r for r in refused_by_name if r))
        refused = [egress.refused_address(a["host"], self._allow_loopback) for a in answers]
        if any(refused):
            raise EgressRefused(next(r for r in refused if r))
        return answers

    async def _answers(self, host: str, port: int, family: int) -> list[aiohttp_abc.ResolveResult]:
        if self._ttl == 0:
            return await self._inner.resolve(host, port, socket.AddressFamily(family))
        where = (host, port, family)
        kept = self._kept.get(where)
        if kept is not None and (self._ttl is None or kept[0] > time.monotonic()):
            return kept[1]
        flight = (shares.key_for(f"dns://{host}"), host, port, family)
        task = self._flying.get(flight)
        if task is None:
            task = self._flying[flight] = asyncio.create_task(self._inner.resolve(host, port, socket.AddressFamily(family)))
            task.add_done_callback(functools.partial(self._landed, flight))
        # Shielded: one caller's deadline does not cancel the lookup its neighbours wait on.
        return await asyncio.shield(task)

    def _landed(self, flight: tuple[typing.Hashable, str, int, int],
                task: asyncio.Task[list[aiohttp_abc.ResolveResult]]) -> None:
        if self._flying.get(flight) is task:
            del self._flying[flight]
        if task.cancelled() or task.exception() is not None:
            return  # not kept (and retrieved: no "never retrieved" warning when nobody waited)
        now = time.monotonic()
        if len(self._kept) >= 1024:
            self._kept = {k: v for k, v in self._kept.items() if self._ttl is None or v[0] > now}
        self._kept[flight[1:]] = (now + (self._ttl or 0), task.result())

    async def close(self) -> None:
        for task in list(self._flying.values()):
            task.cancel()
        await self._inner.close()


async def _service_verdict(name: service_names.Named, namespace: str, port: int,
                           allow_loopback: bool) -> service_names.Verdict:
    """What the API holds for a name of `namespace`'s own, judged (core/service_names.py)."""
    if SERVICES is None:
        return service_names.Refusal(f"{name.service}.{namespace}.svc: the operator has no way to read Services, "
                                     "so no name of a namespace is reached inside the cluster's networks")
    found = await SERVICES.lookup(namespace, name.service)
    if isinstance(found, str):
        return service_names.Refusal(f"{name.service}.{namespace}.svc cannot be checked: {found}")
    verdict = service_names.verdict(name, namespace, port, found, CLUSTER, allow_loopback)
    if not isinstance(verdict, service_names.Answer):
        return verdict
    # A few endpoints at random (spread over the Service's Pods), each inside the networks
    # checked against the Pods themselves; none of them a Running Pod's (Pods just gone, or
    # slices that lie): the next few, a bounded number of times.
    endpoints = random.sample(verdict.endpoints, len(verdict.endpoints))
    outcome: service_names.Verdict = service_names.Refusal("")
    for start in range(0, min(len(endpoints), service_names.DIALLED * service_names.DIALLED_ROUNDS), service_names.DIALLED):
        chosen = service_names.Answer(tuple(endpoints[start:start + service_names.DIALLED]))
        inside = sorted({address for address, _ in chosen.endpoints if CLUSTER.inside(address)})
        pods = await SERVICES.pods(namespace, inside) if inside else frozenset()
        if isinstance(pods, str):
            return service_names.Refusal(f"{name.service}.{namespace}.svc cannot be checked: {pods}")
        outcome = service_names.running(name, namespace, chosen, pods, CLUSTER)
        if isinstance(outcome, service_names.Answer):
            break
    return outcome


def dial_refusal(addr_info: AddrInfo, allow_loopback: bool) -> str | None:
    """Why the connection about to be made to `addr_info` is refused, or None.

    Only an address the event loop connects to without a further lookup passes: asyncio
    hands anything `inet_pton` does not read (`127.1`, a zone id `::1%lo`, a name) to
    getaddrinfo at connect time, which would dial an address nobody judged."""
    family, _, _, _, sockaddr = addr_info
    host = sockaddr[0] if isinstance(sockaddr, tuple) and sockaddr else None
    if not isinstance(host, str):
        return "the connection has no IP address to judge"
    try:
        socket.inet_pton(family, host)
    except (OSError, ValueError):
        return f"{host!r} is not an address the connection can be made to without a lookup"
    return egress.refused_address(host, allow_loopback) or cluster_refusal(host)


class DialGuard:
    """aiohttp's socket factory: the single point every connection passes, with its final IP.

    aiohttp calls it once per address it is about to connect to — a literal from the URL
    and each address a name resolved to — so judging here covers both by construction.
    `then` makes the socket (a test records what was dialled); by default a plain one."""

    def __init__(self, allow_loopback: bool, then: SocketFactory | None = None) -> None:
        self._allow_loopback = allow_loopback
        self._then = then

    def __call__(self, addr_info: AddrInfo) -> socket.socket:
        refusal = dial_refusal(addr_info, self._allow_loopback)
        if refusal is not None:
            raise EgressRefused(refusal)
        if self._then is not None:
            return self._then(addr_info)
        family, type_, proto, _, _ = addr_info
        return socket.socket(family=family, type=type_, proto=proto)


def guarded_connector(allow_loopback: bool, *, limit: int, ttl_dns_cache: int | None = 30,
                      resolver: aiohttp_abc.AbstractResolver | None = None,
                      dial: SocketFactory | None = None) -> aiohttp.TCPConnector:
    """The connector every tenant-directed session uses: the guarded resolver and the dial
    point. `resolver` and `dial` are for tests (no DNS traffic; record what is dialled)."""
    # aiohttp's own cache stays off: it shares a lookup in flight between namespaces.
    return aiohttp.TCPConnector(limit=limit, use_dns_cache=False,
                                resolver=GuardedResolver(allow_loopback, inner=resolver, ttl=ttl_dns_cache),
                                socket_factory=DialGuard(allow_loopback, then=dial))


async def open_stream(host: str, port: int, allow_loopback: bool, *, ssl: typing.Any = None,
                      server_hostname: str | None = None,
                      resolver: aiohttp_abc.AbstractResolver | None = None) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A TCP (or, with `ssl`, TLS) stream to host:port for the checks that are not HTTP/1 (TCP,
    gRPC), guarded as `guarded_connector` guards aiohttp's: a literal judged before anything,
    a name resolved by the guarded resolver (one forbidden address refuses the whole answer),
    and every address judged again at the dial point, where the socket is made. Raises
    EgressRefused, or OSError when no address accepts. The caller bounds the time."""
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    refusal = egress.refused_host(host, allow_loopback)
    if refusal is not None:
        raise EgressRefused(refusal)
    literal = egress.literal_address(host)
    if literal is not None:
        refusal = CLUSTER.refused(literal, None, shares.TENANT.get())  # never through a permit (see cluster_refusal)
        if refusal is not None:
            raise EgressRefused(refusal)
        addresses: list[tuple[int, str, int]] = [(socket.AF_INET6 if ":" in literal else socket.AF_INET, literal, port)]
    else:
        answers = await GuardedResolver(allow_loopback, inner=resolver).resolve(host, port, socket.AF_UNSPEC)
        addresses = [(answer["family"], answer["host"], answer["port"]) for answer in answers]
    loop = asyncio.get_running_loop()
    failure: OSError = OSError(f"{host!r} has no address")
    for family, address, served in addresses:  # a Service's endpoint serves on its own port (resolve says which)
        sock = DialGuard(allow_loopback)((family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, served)))
        try:
            sock.setblocking(False)
            await loop.sock_connect(sock, (address, served))
        except OSError as error:
            sock.close()
            failure = error
            continue
        except BaseException:  # cancelled (the caller's deadline): the socket is not leaked
            sock.close()
            raise
        return await asyncio.open_connection(sock=sock, ssl=ssl, server_hostname=(server_hostname or host) if ssl else None)
    raise failure


def refusal_of(error: BaseException) -> str | None:
    """The egress refusal behind an aiohttp connection error, if that is what it is."""
    cause = getattr(error, "os_error", error)
    for candidate in (cause, getattr(cause, "__cause__", None)):
        if isinstance(candidate, EgressRefused):
            return str(candidate.args[0] if candidate.args else candidate)
    return None


async def read_limited(content: aiohttp.StreamReader, limit: int) -> bytes:
    """Up to `limit` bytes of a body, to its end (one `read` returns only what has arrived)."""
    chunks, size = [], 0
    while size < limit:
        chunk = await content.read(limit - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


async def contains(content: aiohttp.StreamReader, needle: bytes | None, limit: int, read_size: int) -> bool:
    """Whether `needle` occurs within the first `limit` bytes of a body, reading it as it
    streams: one read's buffer and the needle's length are held, never the body."""
    carried, size = b"", 0
    found = not needle  # None (nothing to look for) or b"" (found in any body, the empty one too)
    while size < limit:
        chunk = await content.read(min(read_size, limit - size))
        if not chunk:
            break
        size += len(chunk)
        if not found and needle is not None:
            window = carried + chunk
            found = needle in window
            carried = window[-(len(needle) - 1):] if len(needle) > 1 else b""
    return found


RATE_HEADERS = ("Retry-After", "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")


class Response(typing.NamedTuple):
    status: int
    body: bytes
    truncated: bool
    # Only the headers a caller may act on (rate limits), each capped: a hostile server's
    # headers are not kept whole.
    headers: typing.Mapping[str, str] = types.MappingProxyType({})


class GuardedClient:
    """One pooled session for one purpose (checks, notifications, metrics), its own limit."""

    def __init__(self, allow_loopback: bool, limit: int = 64, *, resolver: aiohttp_abc.AbstractResolver | None = None,
                 dial: SocketFactory | None = None, per_key: int | None = None) -> None:
        self.allow_loopback = allow_loopback
        self._limit = limit
        # A tenant (else a destination host) holds at most `per_key` of the connections:
        # one slow namespace cannot take every place (adapters/shares.py).
        self.shares = shares.FairShares(limit, per_key or limit)
        self._resolver, self._dial = resolver, dial  # tests only: see guarded_connector
        self._session: aiohttp.ClientSession | None = None

    def refused(self, url: str) -> str | None:
        return egress.refused_url(url, self.allow_loopback) or pooled_refusal(url)

    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = guarded_connector(self.allow_loopback, limit=self._limit, resolver=self._resolver, dial=self._dial)
            self._session = aiohttp.ClientSession(connector=connector, trust_env=False)
        return self._session

    async def request(self, method: str, url: str, *, deadline: float, body_limit: int,
                      **kwargs: typing.Any) -> Response:
        """One request within `deadline` seconds in total (connect, send, every byte back);
        raises EgressRefused, asyncio.TimeoutError or aiohttp.ClientError."""
        return await self.exchange(method, url, _as_is, deadline=deadline, body_limit=body_limit, **kwargs)

    async def exchange(self, method: str, url: str, then: typing.Callable[[Response], typing.Awaitable[T]], *,
                       deadline: float, body_limit: int, **kwargs: typing.Any) -> T:
        """`request`, and `then` done with its answer while the share is still held: an answer
        waiting for its parse keeps its place, so the answers this client holds in memory are
        never more than its connections (a parse queue once held dozens of them)."""
        refusal = self.refused(url)
        if refusal is not None:
            raise EgressRefused(refusal)
        async with self.shares.hold(shares.key_for(url)):
            return await then(await self._request(method, url, deadline, body_limit, **kwargs))

    async def _request(self, method: str, url: str, deadline: float, body_limit: int, **kwargs: typing.Any) -> Response:
        try:
            async with self.session().request(method, url, allow_redirects=False,
                                              timeout=aiohttp.ClientTimeout(total=deadline), **kwargs) as response:
                kept = {name: response.headers[name][:64] for name in RATE_HEADERS if name in response.headers}
                if response.content_length is not None and response.content_length > body_limit:
                    return Response(response.status, b"", True, kept)  # said so up front: nothing read
                body = await read_limited(response.content, body_limit + 1)
                # Past the limit: the answer is refused, and not kept (its bytes would stay
                # alive with the Response however little of it the caller reads).
                truncated = len(body) > body_limit
                return Response(response.status, b"" if truncated else body, truncated, kept)
        except aiohttp.ClientConnectorError as error:
            refusal = refusal_of(error)
            if refusal is not None:
                raise EgressRefused(refusal) from None
            raise

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


async def _as_is(response: Response) -> Response:
    return response
