"""A namespace's Services and their EndpointSlices as the API server holds them: what egress
dials for a name of a tenant's own namespace, instead of asking the cluster's DNS
(core/service_names.py says why and judges; adapters/egress.py asks here).

Reads are `get services` and `list endpointslices` (label `kubernetes.io/service-name`) in the
name's namespace, and `list pods` by `status.podIP` for the few endpoints about to be dialled
(an EndpointSlice's labels and targetRef are whatever its writer put there: the Pod itself says
whose the address is), in the blocking pool given, each page's bytes capped (`budget.SERVICES_PAGE`)
and parsed one at a time; answers are kept `ttl` seconds (a bounded number of endpoints in
all), a read in flight is shared by its namespace's callers only, and reads are handed out in
fair shares by namespace: one tenant's thousand names or a hanging API server cost others
nothing more than a share. A read outlives a caller past its deadline, so at most
`WAITING_PER_NAMESPACE` of a namespace's are started and not landed: past it a name of that
namespace is refused at once. Any failure is that name's refusal, never an exception out of here.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import json
import threading
import time
import typing

import kubernetes

from controller.adapters import boundary
from controller.adapters import budget
from controller.adapters import shares
from controller.core import service_names

RunBlocking = typing.Callable[..., typing.Awaitable[typing.Any]]
T = typing.TypeVar("T")
TIMEOUT_SECONDS = (5, 10)  # connect, read (each call)
DEADLINE_SECONDS = 10.0  # a caller waits this long at most for a place and the answer, together
TTL_SECONDS = 5.0  # how long an answer is kept: a Service changed meanwhile is seen this late at most
SLICES_PAGE = 8  # EndpointSlices a list page asks for (a slice holds up to 100 endpoints by default)
KEPT_ENDPOINTS = 20_000  # endpoints kept in all the answers cached: past it the oldest go
WAITING_PER_NAMESPACE = 16  # reads of one namespace started and not landed: past it, its names are refused at once
READ_CHUNK = 64 * 1024
_PARSING = threading.Lock()  # one page parsed at a time (budget.py)


class ReadFailed(Exception):
    """The Service or its slices could not be read (its text names no tenant value)."""


class KubernetesServices:
    """The service directory egress asks (`lookup`), over the Kubernetes API."""

    def __init__(self, api_client: kubernetes.client.ApiClient, run_blocking: RunBlocking,
                 ttl: float = TTL_SECONDS) -> None:
        self._core: typing.Any = kubernetes.client.CoreV1Api(api_client)
        self._discovery: typing.Any = kubernetes.client.DiscoveryV1Api(api_client)
        self._run = run_blocking
        self._ttl = ttl
        self.shares = shares.FairShares(budget.SERVICES_READS, budget.SERVICES_PER_NAMESPACE)
        self._kept: collections.OrderedDict[tuple[str, str], tuple[float, service_names.Found]] = collections.OrderedDict()
        self._kept_endpoints = 0
        self._flying: dict[tuple[str, str], asyncio.Task[service_names.Found]] = {}
        self._pods_kept: dict[tuple[str, str], tuple[float, bool]] = {}
        self._pods_flying: dict[tuple[str, str], asyncio.Task[bool]] = {}
        # Reads started and not landed, by namespace: a read outlives a caller past its deadline
        # (shielded, shared), so without a bound a namespace's queue grew with every lookup.
        self._waiting: collections.Counter[str] = collections.Counter()

    def _busy(self, namespace: str) -> str | None:
        if self._waiting[namespace] < WAITING_PER_NAMESPACE:
            return None
        return (f"{self._waiting[namespace]} reads of {namespace} are still waiting for the API server "
                "(a name of it is refused until they land)")

    def _started(self, namespace: str) -> None:
        self._waiting[namespace] += 1

    def _ended(self, namespace: str) -> None:
        self._waiting[namespace] -= 1
        if self._waiting[namespace] <= 0:
            del self._waiting[namespace]

    async def pods(self, namespace: str, addresses: typing.Iterable[str]) -> frozenset[str] | str:
        """Which of `addresses` (IP addresses, as core/service_names gives them) belong to a
        Running Pod of `namespace`, or why that could not be read."""
        running: set[str] = set()
        waiting: dict[str, asyncio.Task[bool]] = {}
        now = time.monotonic()
        for address in addresses:
            key = (namespace, address)
            kept = self._pods_kept.get(key)
            if kept is not None and kept[0] > now:
                if kept[1]:
                    running.add(address)
                continue
            task = self._join(self._pods_flying, key, functools.partial(self._read_pod, namespace, address), self._pod_landed)
            if isinstance(task, str):
                return task
            waiting[address] = task
        try:
            async with asyncio.timeout(DEADLINE_SECONDS):
                for address, task in waiting.items():
                    if await asyncio.shield(task):
                        running.add(address)
        except TimeoutError:
            return f"the Pods of {namespace} could not be read within {DEADLINE_SECONDS:g}s"
        except ReadFailed as failed:
            return str(failed)
        return frozenset(running)

    def _join(self, flying: dict[tuple[str, str], asyncio.Task[T]], key: tuple[str, str],
              read: typing.Callable[[], typing.Coroutine[typing.Any, typing.Any, T]],
              landed: typing.Callable[[tuple[str, str], asyncio.Task[T]], None]) -> asyncio.Task[T] | str:
        """The read of `key` in flight, or a new one (counted among its namespace's waiting
        reads, `landed` when it ends); why not, when the namespace has too many waiting."""
        task = flying.get(key)
        if task is None:
            busy = self._busy(key[0])
            if busy is not None:
                return busy
            task = flying[key] = asyncio.create_task(read())
            self._started(key[0])
            task.add_done_callback(functools.partial(landed, key))
        return task

    def _pod_landed(self, key: tuple[str, str], task: asyncio.Task[bool]) -> None:
        self._ended(key[0])
        if self._pods_flying.get(key) is task:
            del self._pods_flying[key]
        if task.cancelled() or task.exception() is not None:
            return
        now = time.monotonic()
        if len(self._pods_kept) >= KEPT_ENDPOINTS:
            self._pods_kept = {k: v for k, v in self._pods_kept.items() if v[0] > now}
            if len(self._pods_kept) >= KEPT_ENDPOINTS // 2:
                self._pods_kept.clear()
        self._pods_kept[key] = (now + self._ttl, task.result())

    async def _read_pod(self, namespace: str, address: str) -> bool:
        async with self.shares.hold(("namespace", namespace)):
            return await self._read_pod_contained(namespace, address)

    @boundary.contained("a Pod read for egress", lambda error: _failed(error), passes=(ReadFailed,))
    async def _read_pod_contained(self, namespace: str, address: str) -> bool:
        return bool(await self._run(self._running_pod, namespace, address))

    async def lookup(self, namespace: str, name: str) -> service_names.Found | str:
        """The Service `name` of `namespace` and its slices, or why they could not be read."""
        key = (namespace, name)
        kept = self._kept.get(key)
        if kept is not None and kept[0] > time.monotonic():
            return kept[1]
        task = self._join(self._flying, key, functools.partial(self._read, namespace, name), self._landed)
        if isinstance(task, str):
            return task
        try:
            async with asyncio.timeout(DEADLINE_SECONDS):
                # Shielded: one caller's deadline does not cancel the read its neighbours wait on,
                # and the share is held until the read's thread is done.
                return await asyncio.shield(task)
        except TimeoutError:
            return f"Service {name} of {namespace} could not be read within {DEADLINE_SECONDS:g}s"
        except ReadFailed as failed:
            return str(failed)

    def _landed(self, key: tuple[str, str], task: asyncio.Task[service_names.Found]) -> None:
        self._ended(key[0])
        if self._flying.get(key) is task:
            del self._flying[key]
        if task.cancelled() or task.exception() is not None:
            return  # not kept (and retrieved: no "never retrieved" warning)
        found = task.result()
        size = 1 + sum(len(piece.endpoints) for piece in found.slices)
        previous = self._kept.pop(key, None)
        if previous is not None:
            self._kept_endpoints -= 1 + sum(len(piece.endpoints) for piece in previous[1].slices)
        while self._kept and self._kept_endpoints + size > KEPT_ENDPOINTS:
            _, (_, oldest) = self._kept.popitem(last=False)
            self._kept_endpoints -= 1 + sum(len(piece.endpoints) for piece in oldest.slices)
        self._kept[key] = (time.monotonic() + self._ttl, found)
        self._kept_endpoints += size

    async def _read(self, namespace: str, name: str) -> service_names.Found:
        async with self.shares.hold(("namespace", namespace)):
            return await self._read_contained(namespace, name)

    @boundary.contained("a Service read for egress", lambda error: _failed(error), passes=(ReadFailed,))
    async def _read_contained(self, namespace: str, name: str) -> service_names.Found:
        service = await self._run(self._service, namespace, name)
        if service is None:
            return service_names.Found(None)
        return service_names.Found(service, await self._run(self._slices, namespace, name))

    # -- blocking, in the pool given ----------------------------------------------------------
    def _service(self, namespace: str, name: str) -> service_names.Service | None:
        try:
            response = self._core.read_namespaced_service(name, namespace, _preload_content=False,
                                                          _request_timeout=TIMEOUT_SECONDS)
        except kubernetes.client.ApiException as error:
            if error.status == 404:
                return None
            raise ReadFailed(_describe(error, "get services", namespace)) from None
        document = _parsed(response, f"Service {name} of {namespace}")
        return service_names.service_of(document)

    def _running_pod(self, namespace: str, address: str) -> bool:
        # `address` is an ip_address()'s text (core/service_names): nothing else reaches the selector.
        # Not a host-network Pod: its address is its node's, shared with every such Pod on the node.
        try:
            response = self._core.list_namespaced_pod(
                namespace, field_selector=f"status.podIP={address},status.phase=Running,spec.hostNetwork=false", limit=1,
                _preload_content=False, _request_timeout=TIMEOUT_SECONDS)
        except kubernetes.client.ApiException as error:
            raise ReadFailed(_describe(error, "list pods", namespace)) from None
        page = _mapping(_parsed(response, f"the Pod of {namespace} at {address}"))
        return any(address in service_names.pod_addresses(item) for item in _items(page.get("items")))

    def _slices(self, namespace: str, name: str) -> tuple[service_names.Slice, ...]:
        slices: list[service_names.Slice] = []
        endpoints = 0
        token: str | None = None
        while True:
            paging = {"_continue": token} if token else {}
            try:
                response = self._discovery.list_namespaced_endpoint_slice(
                    namespace, label_selector=f"{service_names.SERVICE_NAME_LABEL}={name}", limit=SLICES_PAGE,
                    _preload_content=False, _request_timeout=TIMEOUT_SECONDS, **paging)
            except kubernetes.client.ApiException as error:
                raise ReadFailed(_describe(error, "list endpointslices.discovery.k8s.io", namespace)) from None
            page = _mapping(_parsed(response, f"the EndpointSlices of Service {name} of {namespace}"))
            for item in _items(page.get("items")):
                piece = service_names.slice_of(item)
                endpoints += len(piece.endpoints)
                slices.append(piece)
            if endpoints > service_names.ENDPOINTS:
                raise ReadFailed(f"Service {name} of {namespace} has more than {service_names.ENDPOINTS} endpoints "
                                 "to check: too many to reach by its name")
            after = _mapping(page.get("metadata")).get("continue")
            if not after or not isinstance(after, str):
                return tuple(slices)
            token = after


def _failed(error: Exception) -> typing.NoReturn:
    """Anything unforeseen (a malformed answer): the name's refusal, said by its type alone."""
    raise ReadFailed(f"the Service could not be read ({type(error).__name__})") from None


def _parsed(response: typing.Any, what: str) -> typing.Any:
    body = bytearray()
    try:
        while chunk := response.read(READ_CHUNK):
            body += chunk
            if len(body) > budget.SERVICES_PAGE:
                response.close()  # the rest is never read: the connection is not reused
                raise ReadFailed(f"{what} fills more than {budget.SERVICES_PAGE // 1024} KiB (annotations?)")
    finally:
        response.release_conn()
    with _PARSING:
        return json.loads(body)


def _describe(error: kubernetes.client.ApiException, verb: str, namespace: str) -> str:
    if error.status == 403:
        return f"the operator may not {verb} in {namespace} (RBAC), so a name of {namespace} cannot be checked"
    return f"{verb} in {namespace}: HTTP {error.status}"


def _mapping(value: typing.Any) -> typing.Mapping[str, typing.Any]:
    return value if isinstance(value, dict) else {}


def _items(value: typing.Any) -> list[typing.Any]:
    return value if isinstance(value, list) else []
