"""What a name of a namespace leads to, read from the API's objects instead of the cluster's DNS. Pure.

With the cluster's networks given (core/egress.ClusterNetworks), a tenant reaches an address
inside them only through a name of its own namespace. Judging the *name* is not enough: the
cluster's DNS answers `alias.shop.svc` with whatever the Service `alias` says — an
ExternalName CNAME to `db.bank.svc.cluster.local`, or the addresses of EndpointSlices written
by hand (any address at all), and a ClusterIP is forwarded by kube-proxy to those same slices.
So such a name is never given to DNS: its answer is worked out here from the Service and its
EndpointSlices as the API server holds them (adapters read them; egress dials only this answer).
Every endpoint of the Service (every EndpointSlice labelled for it, whoever wrote it) must be a
Pod of the same namespace chosen by the Service's selector, or an address outside the cluster's
networks that the address rules allow; then:

- ClusterIP (also NodePort, LoadBalancer): the ready endpoints, each on the port the Service
  maps the port asked for to (as kube-proxy would). Not the cluster IP: kube-proxy forwards it
  to whatever slices it last saw, a second or more behind the API, so a tenant flipping a
  hand-written slice in and out would be judged on one set and forwarded to another.
- Headless (`clusterIP: None`): the ready endpoints, on the port asked for (what DNS gives).
- `<hostname>.<service>.<namespace>.svc`: that endpoint, on the port asked for.
- ExternalName: judged as if the tenant had asked for the external name itself (`Alias`).
- No such Service: refused (the cluster's DNS would not answer it either).

An endpoint is the Service's own only in a slice the EndpointSlice controller manages
(`endpointslice.kubernetes.io/managed-by: endpointslice-controller.k8s.io`) of a Service with
a selector (the controller writes slices for those alone), whose targetRef is a Pod of the
same namespace. Anything else inside the cluster's networks — a selector-less Service's
hand-written or mirrored slices, a slice of another manager — is refused with the reason.
Labels and targetRefs are whatever a slice's writer put there, though (the controller undoes
a forged one only when it next syncs the Service): so of the endpoints about to be dialled
(`DIALLED`, a few), each one inside the networks must also be the address of a Running Pod of
the namespace as the Pods themselves say (`running`).
"""

from __future__ import annotations

import ipaddress
import re
import typing

from controller.core import egress

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
ENDPOINTSLICE_CONTROLLER = "endpointslice-controller.k8s.io"
ALIAS_HOPS = 8  # ExternalName after ExternalName: past this, refused (a loop, or nearly)
ENDPOINTS = 5000  # addresses judged for one Service at most: past it, refused (adapters stop reading)
DIALLED = 3  # endpoints of an answer checked against the Pods and given to the client (it needs one)
DIALLED_ROUNDS = 3  # ... and when none of those is a Running Pod's, the next DIALLED, this many times at most

_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")  # RFC 1123 label (a Service name is one)


class Named(typing.NamedTuple):
    """A name of a namespace's own: its Service, and the endpoint's hostname when the name is
    `<hostname>.<service>.<namespace>.svc`."""

    service: str
    hostname: str | None = None


def named(host: str, namespace: str, domain: str) -> Named | None:
    """The Service `host` names in `namespace` (`<service>.<namespace>.svc[.<domain>]`, or
    `<hostname>.<service>.<namespace>.svc[.<domain>]`), or None when it is no name of that
    namespace's. Only these forms: `<service>.<namespace>` falls through to public DNS when no
    such Service exists, where a namespace named like a top-level domain is anyone's name."""
    labels = host.lower().rstrip(".").split(".")
    for suffix in ([namespace, "svc"], [namespace, "svc", *domain.lower().strip(".").split(".")]):
        head = len(labels) - len(suffix)
        if 1 <= head <= 2 and labels[head:] == suffix:
            return Named(labels[head - 1], labels[0] if head == 2 else None)
    return None


def namespace_of(host: str, domain: str) -> str | None:
    """The namespace `host` is a Service name of (`<service>.<namespace>.svc[.<domain>]`, or
    `<hostname>.<service>.<namespace>.svc[.<domain>]`), whichever namespace that is, or None."""
    labels = host.lower().rstrip(".").split(".")
    domain_labels = domain.lower().strip(".").split(".")
    for tail in (["svc"], ["svc", *domain_labels]):
        head = len(labels) - len(tail) - 1  # labels before the namespace's
        if 1 <= head <= 2 and labels[head + 1:] == tail and named(host, labels[head], domain) is not None:
            return labels[head]
    return None


class Endpoint(typing.NamedTuple):
    addresses: tuple[str, ...]
    hostname: str | None
    ready: bool
    pod_namespace: str | None  # targetRef's namespace when it is a Pod, else None


class Port(typing.NamedTuple):
    name: str
    port: int
    protocol: str


class Slice(typing.NamedTuple):
    name: str
    service: str  # its kubernetes.io/service-name label
    managed_by: str
    ip: bool  # addressType IPv4 or IPv6 (FQDN slices are routed by nobody)
    endpoints: tuple[Endpoint, ...]
    ports: tuple[Port, ...] = ()


class Service(typing.NamedTuple):
    type: str
    cluster_ips: tuple[str, ...]  # "None" for a headless Service
    external_name: str
    selector: bool  # has a non-empty selector
    publish_not_ready: bool
    ports: tuple[Port, ...] = ()


class Found(typing.NamedTuple):
    """What the API holds for one Service name: the Service (None: there is none) and its slices."""

    service: Service | None
    slices: tuple[Slice, ...] = ()


class Answer(typing.NamedTuple):
    endpoints: tuple[tuple[str, int], ...]  # (address, port) to dial


class Alias(typing.NamedTuple):
    name: str


class Refusal(typing.NamedTuple):
    reason: str


Verdict = typing.Union[Answer, Alias, Refusal]


def _mapping(value: typing.Any) -> typing.Mapping[str, typing.Any]:
    return value if isinstance(value, dict) else {}


def _list(value: typing.Any) -> list[typing.Any]:
    return value if isinstance(value, list) else []


def _text(value: typing.Any) -> str:
    return value if isinstance(value, str) else ""


def _ports(value: typing.Any) -> tuple[Port, ...]:
    """Ports as a Service's or an EndpointSlice's `ports` hold them; one not a port number is left out."""
    ports = []
    for item in _list(value)[:100]:
        port = _mapping(item).get("port")
        if isinstance(port, int) and not isinstance(port, bool) and 1 <= port <= 65535:
            ports.append(Port(_text(_mapping(item).get("name")), port, _text(_mapping(item).get("protocol")) or "TCP"))
    return tuple(ports)


def service_of(document: typing.Any) -> Service:
    """A Service object (JSON) as far as the verdict needs it; never raises. A malformed field
    reads as the value that reaches least (no cluster IP, no selector)."""
    spec = _mapping(_mapping(document).get("spec"))
    ips = tuple(ip for ip in (_text(v) for v in _list(spec.get("clusterIPs"))) if ip) or (
        (_text(spec.get("clusterIP")),) if _text(spec.get("clusterIP")) else ())
    return Service(_text(spec.get("type")) or "ClusterIP", ips[:2], _text(spec.get("externalName"))[:253],
                   bool(_mapping(spec.get("selector"))), spec.get("publishNotReadyAddresses") is True,
                   _ports(spec.get("ports")))


def slice_of(document: typing.Any) -> Slice:
    """An EndpointSlice object (JSON) as far as the verdict needs it; never raises."""
    meta = _mapping(_mapping(document).get("metadata"))
    labels = _mapping(meta.get("labels"))
    endpoints = []
    for item in _list(_mapping(document).get("endpoints"))[:ENDPOINTS]:
        endpoint = _mapping(item)
        ref = _mapping(endpoint.get("targetRef"))
        endpoints.append(Endpoint(
            tuple(str(a)[:64] for a in _list(endpoint.get("addresses"))[:100]),
            _text(endpoint.get("hostname")) or None,
            _mapping(endpoint.get("conditions")).get("ready") is not False,  # unset means ready (the API's rule)
            _text(ref.get("namespace")) if _text(ref.get("kind")) == "Pod" else None))
    return Slice(_text(meta.get("name"))[:253], _text(labels.get(SERVICE_NAME_LABEL)), _text(labels.get(MANAGED_BY_LABEL)),
                 _text(_mapping(document).get("addressType")) in ("IPv4", "IPv6"), tuple(endpoints),
                 _ports(_mapping(document).get("ports")))


def verdict(name: Named, namespace: str, port: int, found: Found, cluster: egress.ClusterNetworks,
            allow_loopback: bool) -> Verdict:
    """What `namespace` may dial for `name` on `port`, from what the API holds (see the module)."""
    shown = f"{name.hostname + '.' if name.hostname else ''}{name.service}.{namespace}.svc"
    if not _LABEL.fullmatch(name.service) or name.hostname is not None and not _LABEL.fullmatch(name.hostname):
        return Refusal(f"{shown} is not the name of a Service")
    service = found.service
    if service is None:
        return Refusal(f"{shown}: there is no Service {name.service} in namespace {namespace}")
    if service.type == "ExternalName":
        if name.hostname is not None or not service.external_name:
            return Refusal(f"{shown}: Service {name.service} is an ExternalName Service without endpoints")
        return Alias(service.external_name.lower().rstrip("."))
    endpoints: list[tuple[Endpoint, Slice]] = []
    for piece in found.slices:
        if piece.service != name.service or not piece.ip:
            continue  # not this Service's, or an FQDN slice (neither kube-proxy nor the DNS uses them)
        own = service.selector and piece.managed_by == ENDPOINTSLICE_CONTROLLER
        for endpoint in piece.endpoints:
            if not (own and endpoint.pod_namespace == namespace):
                for address in endpoint.addresses:
                    refusal = _foreign(address, cluster, allow_loopback)
                    if refusal is not None:
                        return Refusal(
                            f"{shown}: EndpointSlice {piece.name or '?'} of Service {name.service} leads to {address}, "
                            f"{refusal}; only endpoints the EndpointSlice controller chose for the Service's selector "
                            f"(Pods of {namespace}) are reached inside the cluster's networks")
            endpoints.append((endpoint, piece))
    if name.hostname is not None:
        dialled = _dialled((e, port) for e, _ in endpoints if e.hostname == name.hostname)
        return Answer(dialled) if dialled else Refusal(f"{shown}: Service {name.service} has no endpoint {name.hostname}")
    ready = [(e, piece) for e, piece in endpoints if e.ready or service.publish_not_ready]
    if not service.cluster_ips or service.cluster_ips[0] == "None":  # headless: DNS gives the endpoints, dialled as asked
        dialled = _dialled((e, port) for e, _ in ready)
        return Answer(dialled) if dialled else Refusal(f"{shown}: headless Service {name.service} has no ready endpoint")
    # Through the cluster IP the port asked for is the Service's; each slice says the number its
    # endpoints serve it on (a named targetPort may differ between Pods).
    asked = next((p for p in service.ports if p.port == port and p.protocol == "TCP"), None)
    if asked is None:
        return Refusal(f"{shown}: Service {name.service} has no TCP port {port}")
    dialled = _dialled((e, served.port) for e, piece in ready
                       for served in piece.ports if served.name == asked.name and served.protocol == "TCP")
    return Answer(dialled) if dialled else Refusal(f"{shown}: Service {name.service} has no ready endpoint for port {port}")


def running(name: Named, namespace: str, answer: Answer, pods: typing.AbstractSet[str],
            cluster: egress.ClusterNetworks) -> Verdict:
    """`answer` without the endpoints inside the cluster's networks that no Running Pod of
    `namespace` has as its address (`pods`: those that one has); refused when none is left."""
    kept = tuple((address, port) for address, port in answer.endpoints if address in pods or not cluster.inside(address))
    if kept:
        return Answer(kept)
    shown = f"{name.hostname + '.' if name.hostname else ''}{name.service}.{namespace}.svc"
    addresses = ", ".join(sorted({address for address, _ in answer.endpoints}))
    return Refusal(f"{shown}: its endpoints {addresses} are not the addresses of Running Pods of {namespace} "
                   "(EndpointSlices say so, the Pods do not)")


def pod_addresses(document: typing.Any) -> frozenset[str]:
    """A Pod object's (JSON) addresses, normalised as `verdict` gives them; never raises."""
    status = _mapping(_mapping(document).get("status"))
    found = set()
    for text in [status.get("podIP"), *(_mapping(item).get("ip") for item in _list(status.get("podIPs"))[:4])]:
        try:
            found.add(str(ipaddress.ip_address(_text(text))))
        except ValueError:
            continue
    return frozenset(found)


def _foreign(address: str, cluster: egress.ClusterNetworks, allow_loopback: bool) -> str | None:
    """Why an endpoint the Service's selector did not choose may not be reached, or None (an
    address outside the cluster's networks that the address rules allow: naming it is no
    more than naming the address)."""
    if cluster.inside(address):
        return "inside the cluster's networks, written by hand or by another manager"
    return egress.refused_address(address, allow_loopback)


def _dialled(endpoints: typing.Iterable[tuple[Endpoint, int]]) -> tuple[tuple[str, int], ...]:
    found: dict[tuple[str, int], None] = {}
    for endpoint, port in endpoints:
        for address in endpoint.addresses:
            try:
                found[(str(ipaddress.ip_address(address)), port)] = None
            except ValueError:
                continue  # not an address: nothing to dial (the API server validates them anyway)
    return tuple(found)
