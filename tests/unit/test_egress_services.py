"""A name of a tenant's own namespace is answered from the API, never by DNS (core/service_names.py,
adapters/egress.py): with --cluster-networks set, an ExternalName Service of one's own namespace,
a selector-less Service with EndpointSlices written by hand, or a slice of another manager
reaches no other namespace, whatever the cluster's DNS would have answered.

The requests go through aiohttp on loopback (loopback stands for the cluster's networks);
`loopback.Names` stands for the cluster's DNS and records what it was asked, `loopback.Objects`
for the API server's Services and EndpointSlices. The Kubernetes adapter reading them from a
real API server: tests/integration/test_egress_services.py."""

from __future__ import annotations

import asyncio
import contextlib
import typing

import aiohttp
import pytest

from controller.adapters import egress
from controller.adapters import shares
from controller.core import egress as policy
from controller.core import service_names
from tests.unit import loopback

CLUSTER = policy.cluster_networks(["10.96.0.0/12", "10.244.0.0/16"], "cluster.local")
service, endpoint_slice, pod = loopback.service, loopback.endpoint_slice, loopback.pod


# -- which names are a namespace's own (answered from the API) -----------------------------------

@pytest.mark.parametrize("host,named", [
    ("web.shop.svc", ("web", None)),
    ("web.shop.svc.cluster.local", ("web", None)),
    ("WEB.Shop.svc.cluster.local.", ("web", None)),
    ("web-0.web.shop.svc.cluster.local", ("web", "web-0")),      # a StatefulSet pod's name
    ("web-0.web.shop.svc", ("web", "web-0")),
    ("web.shop", None),                                           # public DNS when no such Service (.shop is a TLD)
    ("web", None),                                                # short: the operator's namespace, by the search path
    ("db.bank.svc", None),                                        # another namespace's
    ("shop.bank.svc", None),
    ("a.b.c.shop.svc", None),                                     # too many labels before it
    ("web.shop.svc.evil.example", None),                          # the suffix is the cluster domain only
    ("10-244-1-7.shop.pod.cluster.local", None),                  # pod names: DNS makes any address of them
    ("_http._tcp.web.shop.svc.cluster.local", None),
])
def test_which_names_are_the_namespaces_own(host: str, named: tuple[str, str | None] | None) -> None:
    assert service_names.named(host, "shop", "cluster.local") == named


@pytest.mark.parametrize("host,namespace", [
    ("db.bank.svc", "bank"), ("DB.Bank.svc.cluster.local.", "bank"), ("db-0.db.bank.svc", "bank"),
    ("web.shop.svc", "shop"), ("db.bank", None), ("a.b.c.bank.svc", None), ("db.bank.svc.evil.example", None),
    ("svc", None), ("bank.svc", None), ("db.bank.svc.other.local", None),
])
def test_whose_service_a_name_is(host: str, namespace: str | None) -> None:
    assert service_names.namespace_of(host, "cluster.local") == namespace


# -- what the API's objects make of a name --------------------------------------------------------

def verdict(name: str, *objects: dict[str, typing.Any], namespace: str = "shop", port: int = 80,
            allow_loopback: bool = False) -> service_names.Verdict:
    named = service_names.named(name, namespace, CLUSTER.domain)
    assert named is not None
    return service_names.verdict(named, namespace, port, _found(objects, namespace, named.service), CLUSTER, allow_loopback)


def _found(objects: typing.Sequence[dict[str, typing.Any]], namespace: str, name: str) -> service_names.Found:
    found = asyncio.run(loopback.Objects(objects).lookup(namespace, name))
    assert not isinstance(found, str)
    return found


SELECTOR = {"app": "web"}
PORTS = [{"name": "", "port": 80, "targetPort": 8080, "protocol": "TCP"}]
WEB = service("shop", "web", clusterIP="10.96.0.10", clusterIPs=["10.96.0.10"], selector=SELECTOR, ports=PORTS)
HEADLESS = service("shop", "web", clusterIP="None", selector=SELECTOR, ports=PORTS)
TWO_PORTS = service("shop", "web", clusterIP="10.96.0.10", selector=SELECTOR, ports=[
    {"name": "http", "port": 80, "protocol": "TCP"}, {"name": "admin", "port": 9000, "protocol": "TCP"}])


def named_ports(slice_: dict[str, typing.Any], **ports: int) -> dict[str, typing.Any]:
    return {**slice_, "ports": [{"name": name, "port": port, "protocol": "TCP"} for name, port in ports.items()]}


@pytest.mark.parametrize("objects,name,port,expected", [
    # A ClusterIP Service whose endpoints the EndpointSlice controller chose: those endpoints, on
    # the port the Service maps the port asked for to (never the cluster IP: see the module).
    ([WEB, endpoint_slice("shop", "web", "10.244.1.7", "10.244.2.9")], "web.shop.svc", 80,
     (("10.244.1.7", 8080), ("10.244.2.9", 8080))),
    ([WEB, endpoint_slice("shop", "web", "10.244.1.7"), endpoint_slice("shop", "web", "10.244.1.8", name="b", ready=False)],
     "web.shop.svc.cluster.local", 80, (("10.244.1.7", 8080),)),
    ([TWO_PORTS, named_ports(endpoint_slice("shop", "web", "10.244.1.7"), http=8080, admin=9090),
      named_ports(endpoint_slice("shop", "web", "10.244.1.8", name="b"), http=8081, admin=9091)], "web.shop.svc", 9000,
     (("10.244.1.7", 9090), ("10.244.1.8", 9091))),
    # Headless: the ready endpoints the controller chose (a not-ready one once published), on the port asked.
    ([HEADLESS, endpoint_slice("shop", "web", "10.244.1.7"), endpoint_slice("shop", "web", "10.244.1.8", name="b", ready=False),
      endpoint_slice("shop", "web", "10.244.1.9", name="c", ready=None)], "web.shop.svc", 80,
     (("10.244.1.7", 80), ("10.244.1.9", 80))),
    ([{**HEADLESS, "spec": {**HEADLESS["spec"], "publishNotReadyAddresses": True}},
      endpoint_slice("shop", "web", "10.244.1.8", ready=False)], "web.shop.svc", 8443, (("10.244.1.8", 8443),)),
    ([HEADLESS, endpoint_slice("shop", "web", "10.244.1.7", hostname="web-0"),
      endpoint_slice("shop", "web", "10.244.1.8", name="b", hostname="web-1")], "web-1.web.shop.svc", 80,
     (("10.244.1.8", 80),)),
    # A selector-less Service whose hand-written slice leads outside the cluster's networks: no
    # more than naming that address (the address rules judge it at the dial point too).
    ([service("shop", "db", clusterIP="10.96.0.20", ports=[{"port": 5432}]),
      endpoint_slice("shop", "db", "203.0.113.5", managed_by="me", port=5432)], "db.shop.svc", 5432, (("203.0.113.5", 5432),)),
    # FQDN slices: routed by nobody, ignored.
    ([WEB, endpoint_slice("shop", "web", "10.244.1.7"), {**endpoint_slice("shop", "web", "10.244.9.9", name="f", managed_by="me"),
                                                         "addressType": "FQDN"}], "web.shop.svc", 80, (("10.244.1.7", 8080),)),
])
def test_what_a_name_of_ones_own_leads_to(objects: list[dict[str, typing.Any]], name: str, port: int,
                                           expected: tuple[tuple[str, int], ...]) -> None:
    assert verdict(name, *objects, port=port) == service_names.Answer(expected)


def test_an_externalname_is_judged_as_the_name_it_points_to() -> None:
    alias = service("shop", "alias", type="ExternalName", externalName="DB.bank.svc.cluster.local.")
    assert verdict("alias.shop.svc", alias) == service_names.Alias("db.bank.svc.cluster.local")
    refused = verdict("x.alias.shop.svc", alias)
    assert isinstance(refused, service_names.Refusal) and "ExternalName" in refused.reason


@pytest.mark.parametrize("objects,name,reason", [
    ([], "web.shop.svc", "there is no Service web in namespace shop"),
    # Hand-written into a selector-less Service: another namespace's pod address.
    ([service("shop", "db", clusterIP="10.96.0.20"), endpoint_slice("shop", "db", "10.244.5.5", managed_by="me")],
     "db.shop.svc", "EndpointSlice db-abcde of Service db leads to 10.244.5.5, inside the cluster's networks"),
    # ... even under the controller's label: it writes slices only for Services with a selector.
    ([service("shop", "db", clusterIP="None"), endpoint_slice("shop", "db", "10.244.5.5")],
     "db.shop.svc", "leads to 10.244.5.5"),
    # ... or bank's Service address itself, or the cloud's metadata address.
    ([service("shop", "db", clusterIP="10.96.0.20"), endpoint_slice("shop", "db", "10.96.0.11", managed_by=None)],
     "db.shop.svc", "leads to 10.96.0.11"),
    ([service("shop", "db", clusterIP="10.96.0.20"), endpoint_slice("shop", "db", "169.254.169.254", managed_by="me")],
     "db.shop.svc", "cloud metadata"),
    # A slice of another manager beside the controller's, on a Service with a selector.
    ([WEB, endpoint_slice("shop", "web", "10.244.1.7"), endpoint_slice("shop", "web", "10.244.5.5", name="x", managed_by="me")],
     "web.shop.svc", "EndpointSlice x of Service web leads to 10.244.5.5"),
    # The controller's label on an endpoint whose Pod is another namespace's.
    ([WEB, endpoint_slice("shop", "web", "10.244.5.5", pod_namespace="bank")], "web.shop.svc", "leads to 10.244.5.5"),
    ([HEADLESS], "web.shop.svc", "no ready endpoint"),
    ([HEADLESS, endpoint_slice("shop", "web", "10.244.1.7", hostname="web-0")], "web-1.web.shop.svc", "no endpoint web-1"),
    ([service("shop", "web", selector=SELECTOR)], "web.shop.svc", "no ready endpoint"),  # no cluster IP read: headless
    ([WEB, endpoint_slice("shop", "web", "10.244.1.7", ready=False)], "web.shop.svc", "no ready endpoint for port 80"),
    ([TWO_PORTS, endpoint_slice("shop", "web", "10.244.1.7")], "web.shop.svc", "no ready endpoint for port 80"),  # no "http"
    ([service("shop", "web", clusterIP="10.96.0.10", selector=SELECTOR, ports=[{"port": 81}])], "web.shop.svc",
     "Service web has no TCP port 80"),
])
def test_what_a_name_of_ones_own_may_not_lead_to(objects: list[dict[str, typing.Any]], name: str, reason: str) -> None:
    refused = verdict(name, *objects)
    assert isinstance(refused, service_names.Refusal) and reason in refused.reason, refused


@pytest.mark.parametrize("document", [None, "x", {"spec": []}, {"spec": {"clusterIPs": "10.0.0.1", "selector": "a"}},
                                      {"spec": {"type": 7, "clusterIP": ["x"]}}])
def test_a_malformed_service_reads_as_the_one_that_reaches_least(document: typing.Any) -> None:
    read = service_names.service_of(document)
    assert read.selector is False and all(isinstance(ip, str) for ip in read.cluster_ips)


@pytest.mark.parametrize("document", [None, {"endpoints": "x"}, {"endpoints": [None, {"addresses": "1.2.3.4"}]},
                                      {"metadata": {"labels": []}, "endpoints": [{"addresses": [1], "targetRef": []}]}])
def test_a_malformed_slice_reads_as_nobodys(document: typing.Any) -> None:
    read = service_names.slice_of(document)
    assert read.managed_by == "" and all(e.pod_namespace is None for e in read.endpoints)


@pytest.mark.parametrize("document,addresses", [
    (None, set()), ({"status": {"podIP": "10.244.1.7", "podIPs": [{"ip": "10.244.1.7"}, {"ip": "fd00::7"}]}},
                    {"10.244.1.7", "fd00::7"}),
    ({"status": {"podIP": 7, "podIPs": "x"}}, set()), ({"status": {"podIPs": [None, {"ip": "not an address"}]}}, set()),
])
def test_a_pods_addresses_are_read_without_an_exception(document: typing.Any, addresses: set[str]) -> None:
    assert service_names.pod_addresses(document) == addresses


# -- through aiohttp, on loopback ----------------------------------------------------------------

def fetch(names: loopback.Names, requests: typing.Sequence[tuple[str | None, str]],
          objects: typing.Callable[[int], list[dict[str, typing.Any]]] | None = None) -> dict[str, str]:
    """Each (namespace, URL host[:port]) asked in turn through one GuardedClient (the site's port
    when the host has none): the body or the refusal. With `objects` (given the site's port),
    the namespace rule is on, with those objects as the API's."""
    async def scenario() -> dict[str, str]:
        client = egress.GuardedClient(True, 8, resolver=names, per_key=8)
        outcomes: dict[str, str] = {}
        async with loopback.text_site("ok") as port:
            with loopback.cluster(objects=objects(port)) if objects is not None else contextlib.nullcontext():
                for namespace, host in requests:
                    with shares.tenant(namespace):
                        try:
                            url = f"http://{host}/" if ":" in host else f"http://{host}:{port}/"
                            answer = await client.request("GET", url, deadline=5, body_limit=100)
                            outcomes[f"{namespace}->{host}"] = answer.body.decode()
                        except (egress.EgressRefused, aiohttp.ClientError, OSError) as error:
                            outcomes[f"{namespace}->{host}"] = egress.refusal_of(error) or str(error)
            await client.close()
        return outcomes

    return asyncio.run(scenario())


def test_a_name_of_ones_own_is_never_asked_of_dns_and_dials_only_the_apis_endpoints() -> None:
    # DNS says 127.0.0.9 (nobody listens there) for shop's names, and so do the cluster IPs; the
    # API's endpoints are the site, on its port: an answer means the endpoint was dialled.
    names = loopback.Names({"web.shop.svc": "127.0.0.9", "api.shop.svc": "127.0.0.9", "db.bank.svc.cluster.local": "127.0.0.1",
                            "outside.example": "127.0.0.1", "forged.shop.svc": "127.0.0.9"})

    def objects(port: int) -> list[dict[str, typing.Any]]:
        return [service("shop", "web", clusterIP="127.0.0.9", selector=SELECTOR, ports=[{"port": 80}]),
                endpoint_slice("shop", "web", "127.0.0.1", port=port),
                service("shop", "api", clusterIP="None", selector={"app": "api"}), endpoint_slice("shop", "api", "127.0.0.1"),
                service("shop", "next", type="ExternalName", externalName="web.shop.svc.cluster.local"),
                service("shop", "alias", type="ExternalName", externalName="db.bank.svc.cluster.local"),
                service("shop", "out", type="ExternalName", externalName="outside.example"),
                service("shop", "loop", type="ExternalName", externalName="loop.shop.svc"),
                service("shop", "by-hand", clusterIP="127.0.0.9", ports=[{"port": 80}]),
                endpoint_slice("shop", "by-hand", "127.0.0.3", managed_by="me", port=port),
                # The controller's label and a Pod of shop's in the slice, bank's Pod at the address.
                service("shop", "forged", clusterIP="127.0.0.9", selector=SELECTOR, ports=[{"port": 80}]),
                endpoint_slice("shop", "forged", "127.0.0.1", "127.0.0.4", port=port),
                # An endpoint whose Pod has finished (its address is free for anyone's next Pod).
                service("shop", "done", clusterIP="None", selector={"app": "done"}), endpoint_slice("shop", "done", "127.0.0.5"),
                service("bank", "db", clusterIP="None", selector={"app": "db"}), endpoint_slice("bank", "db", "127.0.0.1"),
                pod("shop", "web-0", "127.0.0.1"), pod("shop", "done-0", "127.0.0.5", phase="Succeeded"),
                pod("bank", "db-0", "127.0.0.1"), pod("bank", "db-1", "127.0.0.4")]

    outcomes = fetch(names, [("shop", host) for host in (
        "web.shop.svc:80", "api.shop.svc", "next.shop.svc:80", "alias.shop.svc", "out.shop.svc", "loop.shop.svc",
        "by-hand.shop.svc:80", "gone.shop.svc", "web.shop.svc", "done.shop.svc")] + [
            ("bank", "db.bank.svc.cluster.local"), ("bank", "forged.shop.svc:80")], objects)
    assert outcomes["shop->web.shop.svc:80"] == outcomes["shop->api.shop.svc"] == outcomes["shop->next.shop.svc:80"] == "ok"
    assert "ExternalName Service for db.bank.svc.cluster.local" in outcomes["shop->alias.shop.svc"]
    # An ExternalName out of the cluster, to a name whose DNS answer is inside its networks.
    assert "outside.example is 127.0.0.1, inside the cluster's networks" in outcomes["shop->out.shop.svc"]
    assert "more than 8 ExternalName Services in a row" in outcomes["shop->loop.shop.svc"]
    assert "EndpointSlice by-hand-abcde of Service by-hand leads to 127.0.0.3" in outcomes["shop->by-hand.shop.svc:80"]
    assert "there is no Service gone in namespace shop" in outcomes["shop->gone.shop.svc"]
    assert "Service web has no TCP port" in outcomes["shop->web.shop.svc"]  # through a cluster IP: the Service's ports only
    assert outcomes["bank->db.bank.svc.cluster.local"] == "ok"
    assert "done.shop.svc: its endpoints 127.0.0.5 are not the addresses of Running Pods of shop" in outcomes[
        "shop->done.shop.svc"]
    assert "not a Service of namespace bank" in outcomes["bank->forged.shop.svc:80"]  # shop's name is not bank's
    # bank's request for shop's name is refused before any lookup (test_review_findings 24)
    assert [name for name in names.asked if name.endswith((".shop.svc", ".shop.svc.cluster.local"))] == [], names.asked


def test_a_forged_controller_label_leads_only_to_the_namespaces_own_running_pods() -> None:
    # shop writes (or the controller has not yet undone) a slice with the controller's label and
    # a targetRef to a Pod of its own, at bank's Pod's address, beside its own Pod's: whichever
    # endpoints are drawn, only its own Pod is dialled; with bank's alone, nothing is.
    names = loopback.Names({})

    def objects(port: int) -> list[dict[str, typing.Any]]:
        return [service("shop", "web", clusterIP="127.0.0.9", selector=SELECTOR, ports=[{"port": 80}]),
                endpoint_slice("shop", "web", "127.0.0.1", "127.0.0.4", "127.0.0.6", "127.0.0.7", port=port),
                service("shop", "only-bank", clusterIP="127.0.0.9", selector=SELECTOR, ports=[{"port": 80}]),
                endpoint_slice("shop", "only-bank", "127.0.0.4", port=port),
                pod("shop", "web-0", "127.0.0.1"), pod("bank", "db-0", "127.0.0.4"), pod("bank", "db-1", "127.0.0.6"),
                pod("bank", "db-2", "127.0.0.7")]

    # Whichever three are drawn first, the next draw reaches shop's own Pod.
    outcomes = [fetch(names, [("shop", "web.shop.svc:80"), ("shop", "only-bank.shop.svc:80")], objects) for _ in range(12)]
    assert {outcome["shop->web.shop.svc:80"] for outcome in outcomes} == {"ok"}
    assert {outcome["shop->only-bank.shop.svc:80"] for outcome in outcomes} == {
        "only-bank.shop.svc: its endpoints 127.0.0.4 are not the addresses of Running Pods of shop "
        "(EndpointSlices say so, the Pods do not)"}


def test_a_tcp_check_dials_a_services_endpoint_and_refuses_an_externalname_to_another_namespace() -> None:
    async def scenario(host: str, port: int) -> str:
        with shares.tenant("shop"):
            try:
                _, writer = await egress.open_stream(host, port, True, resolver=names)
            except egress.EgressRefused as refused:
                return str(refused)
            writer.close()
            return "connected"

    names = loopback.Names({"db.bank.svc.cluster.local": "127.0.0.1"})

    async def both() -> tuple[str, str]:
        server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
        served = server.sockets[0].getsockname()[1]
        with loopback.cluster(objects=[
                service("shop", "alias", type="ExternalName", externalName="db.bank.svc.cluster.local"),
                service("shop", "web", clusterIP="127.0.0.9", selector=SELECTOR, ports=[{"port": 5000}]),
                endpoint_slice("shop", "web", "127.0.0.1", port=served), pod("shop", "web-0", "127.0.0.1")]):
            async with server:
                return await scenario("alias.shop.svc", served), await scenario("web.shop.svc", 5000)

    alias, web = asyncio.run(both())
    assert "ExternalName Service for db.bank.svc.cluster.local" in alias and web == "connected"


def test_without_a_way_to_read_services_no_name_of_a_namespace_reaches_inside() -> None:
    names = loopback.Names({"web.shop.svc": "127.0.0.1"})
    egress.configure_cluster(policy.cluster_networks(["127.0.0.0/8"]))
    try:
        outcome = fetch(names, [("shop", "web.shop.svc")])["shop->web.shop.svc"]
    finally:
        egress.configure_cluster(policy.ClusterNetworks())
    assert "no way to read Services" in outcome and names.asked == []


def test_a_service_or_pod_that_cannot_be_read_is_refused_with_the_reason() -> None:
    class Unreadable(loopback.Objects):
        async def lookup(self, namespace: str, name: str) -> service_names.Found | str:
            if name == "web":
                return f"the operator may not get services in {namespace} (RBAC)"
            return await super().lookup(namespace, name)

        async def pods(self, namespace: str, addresses: typing.Iterable[str]) -> str:  # type: ignore[override]
            return f"the operator may not list pods in {namespace} (RBAC)"

    egress.configure_cluster(policy.cluster_networks(["127.0.0.0/8"]), Unreadable([
        service("shop", "api", clusterIP="None", selector=SELECTOR), endpoint_slice("shop", "api", "127.0.0.1"),
        pod("shop", "api-0", "127.0.0.1")]))
    try:
        outcomes = fetch(loopback.Names({}), [("shop", "web.shop.svc"), ("shop", "api.shop.svc")])
    finally:
        egress.configure_cluster(policy.ClusterNetworks())
    assert outcomes == {"shop->web.shop.svc": "web.shop.svc cannot be checked: the operator may not get services in shop (RBAC)",
                        "shop->api.shop.svc": "api.shop.svc cannot be checked: the operator may not list pods in shop (RBAC)"}


def test_the_operators_own_requests_and_rule_free_clusters_still_ask_dns() -> None:
    names = loopback.Names({"web.shop.svc": "127.0.0.1"})
    assert fetch(names, [(None, "web.shop.svc")], lambda port: []) == {"None->web.shop.svc": "ok"}
    assert fetch(names, [("shop", "web.shop.svc")]) == {"shop->web.shop.svc": "ok"}
    assert names.asked == ["web.shop.svc", "web.shop.svc"]
