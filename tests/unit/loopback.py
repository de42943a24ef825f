"""Loopback stand-ins the egress tests share: a site answering one text, a resolver that
answers names from a table (the cluster's DNS, a public record) without asking any DNS server,
and a table of Kubernetes objects (Services, EndpointSlices) standing for the API server."""

from __future__ import annotations

import contextlib
import socket
import typing

from aiohttp import abc as aiohttp_abc
from aiohttp import web

from controller.adapters import egress
from controller.core import egress as policy
from controller.core import service_names


@contextlib.contextmanager
def cluster(*trusted: str, objects: typing.Iterable[typing.Mapping[str, typing.Any]] = ()) -> typing.Iterator[None]:
    """Loopback stands in for the cluster's networks (the only addresses a test may reach):
    egress's namespace rule on for the block, off after it; `objects` are the API's Services
    and EndpointSlices (a name of a namespace's own is looked up there, never in DNS)."""
    egress.configure_cluster(policy.cluster_networks(["127.0.0.0/8"], trusted=trusted), Objects(objects))
    try:
        yield
    finally:
        egress.configure_cluster(policy.ClusterNetworks())


@contextlib.asynccontextmanager
async def text_site(text: str) -> typing.AsyncIterator[int]:
    """An HTTP server on 127.0.0.1 answering `text` at /; yields its port."""
    app = web.Application()

    async def answer(_: web.Request) -> web.Response:
        return web.Response(text=text)

    app.router.add_get("/", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    finally:
        await runner.cleanup()


class Names(aiohttp_abc.AbstractResolver):
    """Answers each name from `names` (a name not there: itself, as for a literal)."""

    def __init__(self, names: typing.Mapping[str, str]) -> None:
        self.names = names
        self.asked: list[str] = []

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[aiohttp_abc.ResolveResult]:
        self.asked.append(host)
        return [{"hostname": host, "host": self.names.get(host, host), "port": port, "family": socket.AF_INET,
                 "proto": 0, "flags": socket.AI_NUMERICHOST | socket.AI_NUMERICSERV}]

    async def close(self) -> None:
        return None


class Objects:
    """The API server's Services and EndpointSlices, from a list of objects as `kubectl get -o
    json` shows them; read through the same parse as the Kubernetes adapter's answers."""

    def __init__(self, objects: typing.Iterable[typing.Mapping[str, typing.Any]]) -> None:
        self.objects = list(objects)
        self.lookups: list[tuple[str, str]] = []

    async def lookup(self, namespace: str, name: str) -> service_names.Found | str:
        self.lookups.append((namespace, name))

        def of(kind: str) -> list[typing.Mapping[str, typing.Any]]:
            return [o for o in self.objects if o["kind"] == kind and o["metadata"]["namespace"] == namespace]

        service = next((o for o in of("Service") if o["metadata"]["name"] == name), None)
        if service is None:
            return service_names.Found(None)
        return service_names.Found(service_names.service_of(service), tuple(
            service_names.slice_of(o) for o in of("EndpointSlice")
            if o["metadata"].get("labels", {}).get(service_names.SERVICE_NAME_LABEL) == name))

    async def pods(self, namespace: str, addresses: typing.Iterable[str]) -> frozenset[str]:
        running = {address for o in self.objects if o["kind"] == "Pod" and o["metadata"]["namespace"] == namespace
                   and o["status"].get("phase") == "Running" for address in service_names.pod_addresses(o)}
        return frozenset(address for address in addresses if address in running)


def pod(namespace: str, name: str, address: str, phase: str = "Running") -> dict[str, typing.Any]:
    """A Pod object as the kubelet reports it: its address and phase."""
    return {"kind": "Pod", "metadata": {"namespace": namespace, "name": name},
            "status": {"phase": phase, "podIP": address, "podIPs": [{"ip": address}]}}


def service(namespace: str, name: str, **spec: typing.Any) -> dict[str, typing.Any]:
    """A Service object: `spec` as written (type, clusterIP, selector, externalName...)."""
    return {"kind": "Service", "metadata": {"namespace": namespace, "name": name}, "spec": spec}


def endpoint_slice(namespace: str, service_name: str, *addresses: str, name: str | None = None,
                   managed_by: str | None = service_names.ENDPOINTSLICE_CONTROLLER, pod_namespace: str | None = None,
                   hostname: str | None = None, ready: bool | None = True, port: int = 8080) -> dict[str, typing.Any]:
    """An EndpointSlice of `service_name`, one endpoint per address serving `port` (the port
    unnamed, as for a Service of one port); by default as the EndpointSlice controller writes
    it (its label, each endpoint a Pod of the namespace)."""
    labels = {service_names.SERVICE_NAME_LABEL: service_name}
    if managed_by is not None:
        labels[service_names.MANAGED_BY_LABEL] = managed_by
    endpoints = []
    for index, address in enumerate(addresses):
        endpoint: dict[str, typing.Any] = {"addresses": [address], "conditions": {} if ready is None else {"ready": ready},
                                           "targetRef": {"kind": "Pod", "namespace": pod_namespace or namespace,
                                                         "name": f"{service_name}-{index}"}}
        if hostname is not None:
            endpoint["hostname"] = hostname
        endpoints.append(endpoint)
    return {"kind": "EndpointSlice", "metadata": {"namespace": namespace, "name": name or f"{service_name}-abcde",
                                                  "labels": labels},
            "addressType": "IPv6" if addresses and ":" in addresses[0] else "IPv4", "endpoints": endpoints,
            "ports": [{"name": "", "port": port, "protocol": "TCP"}]}
