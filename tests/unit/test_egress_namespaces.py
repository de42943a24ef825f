"""Egress has a namespace notion inside the cluster's networks (core/egress.ClusterNetworks,
adapters/egress.py): with --cluster-networks set, a tenant reaches an in-cluster address only
through a Service name of its own namespace, answered from the API (test_egress_services.py),
or the operator's configured hosts; a literal cluster address, a short name, another
namespace's Service or any DNS answer inside is refused at the resolver and at the dial point."""

from __future__ import annotations

import asyncio
import typing

import aiohttp
import pytest

from controller.adapters import egress
from controller.adapters import shares
from controller.adapters import kubernetes_services
from controller.core import egress as policy
from controller.core import service_names
from tests.unit import loopback

CLUSTER = policy.cluster_networks(["10.96.0.0/12", "10.244.0.0/16"], "cluster.local",
                                  trusted=["prometheus.monitoring.svc"])


# The rule on a DNS answer: only the operator's own endpoints pass by name. A name of the
# namespace's own is no exception: DNS is never asked for it (its Service may be an ExternalName
# or have hand-written EndpointSlices), the API answers it instead (test_egress_services.py).
@pytest.mark.parametrize("address,host,namespace,allowed", [
    ("10.96.0.10", "web.shop.svc", "shop", False),
    ("10.96.0.10", "web.shop.svc.cluster.local", "shop", False),
    ("10.96.0.10", "WEB.Shop.svc.cluster.local.", "shop", False),
    ("10.96.0.10", "web.shop", "shop", False),                           # public DNS when no such Service (.shop is a TLD)
    ("10.96.0.10", "web-0.web.shop", "shop", False),
    ("10.244.1.7", "web-0.web.shop.svc.cluster.local", "shop", False),  # a StatefulSet pod's name (the API's)
    ("10.96.0.10", "prometheus.monitoring.svc", "shop", True),          # the operator's own Prometheus
    ("10.96.0.11", "db.bank.svc", "shop", False),                        # another namespace's Service
    ("10.96.0.11", "db.bank.svc.cluster.local", "shop", False),
    ("10.96.0.12", "web", "shop", False),                                # short: the operator's namespace
    ("10.96.0.11", "shop.bank.svc", "shop", False),                      # the namespace's name elsewhere
    ("10.96.0.11", "a.b.c.shop.svc", "shop", False),                     # too many labels before it
    ("10.96.0.11", "web.shop.svc.evil.example", "shop", False),          # the suffix is the cluster domain only
    ("10.96.0.10", None, "shop", False),                                 # a literal
    ("10.96.0.10", "10.96.0.10", "shop", False),
    ("::ffff:10.96.0.10", None, "shop", False),                          # mapped IPv6 of a cluster address
    ("10.96.0.10", "db.bank.svc", None, True),                           # the operator's own request
    ("93.184.216.34", "example.com", "shop", True),                      # outside the cluster's networks
])
def test_the_namespace_rule(address: str, host: str | None, namespace: str | None, allowed: bool) -> None:
    refusal = CLUSTER.refused(address, host, namespace)
    assert (refusal is None) == allowed, refusal
    if refusal:
        assert namespace is not None and f"{namespace}.svc" in refusal


def test_no_networks_means_no_namespace_rule() -> None:
    assert policy.ClusterNetworks().refused("10.96.0.10", None, "shop") is None
    with pytest.raises(ValueError, match="not a network: 'ten'"):
        policy.cluster_networks(["ten"])


@pytest.fixture()
def loopback_cluster(monkeypatch: pytest.MonkeyPatch) -> typing.Iterator[None]:
    """Loopback stands in for the cluster's networks (the only addresses a test may reach)."""
    with loopback.cluster("prometheus.monitoring.svc", objects=[
            loopback.service("shop", "web", clusterIP="None", selector={"app": "web"}),
            loopback.endpoint_slice("shop", "web", "127.0.0.1"),
            loopback.service("bank", "db", clusterIP="None", selector={"app": "db"}),
            loopback.endpoint_slice("bank", "db", "127.0.0.1"),
            loopback.pod("shop", "web-0", "127.0.0.1"), loopback.pod("bank", "db-0", "127.0.0.1")]):
        yield


def test_requests_through_aiohttp_reach_only_the_namespaces_own_services(loopback_cluster: None) -> None:
    async def scenario() -> dict[str, str]:
        names = loopback.Names({"web.shop.svc": "127.0.0.1", "db.bank.svc": "127.0.0.1", "web": "127.0.0.1",
                                "prometheus.monitoring.svc": "127.0.0.1"})
        client = egress.GuardedClient(True, 8, resolver=names)
        outcomes: dict[str, str] = {}
        async with loopback.text_site("ok") as port:
            # bank first: its connection to db.bank.svc is kept alive in the pool shop would ask next.
            for namespace, host in (("shop", "127.0.0.1"), ("bank", "db.bank.svc"), ("shop", "db.bank.svc"),
                                    ("shop", "web"), ("shop", "web.shop.svc"), ("shop", "prometheus.monitoring.svc"),
                                    ("cafe", "127.0.0.1"), (None, "127.0.0.1"), ("shop", "127.0.0.1")):
                with shares.tenant(namespace):
                    try:
                        answer = await client.request("GET", f"http://{host}:{port}/", deadline=5, body_limit=100)
                        outcome = answer.body.decode()
                    except (egress.EgressRefused, aiohttp.ClientError) as error:
                        outcome = egress.refusal_of(error) or str(error)
                    outcomes.setdefault(f"{namespace}->{host}", outcome)
                    outcomes[f"{namespace}->{host} (last)"] = outcome
            await client.close()
        return outcomes

    outcomes = asyncio.run(scenario())
    assert outcomes["shop->web.shop.svc"] == "ok"
    assert outcomes["shop->prometheus.monitoring.svc"] == "ok"
    assert outcomes["bank->db.bank.svc"] == "ok"
    assert outcomes["None->127.0.0.1"] == "ok"
    # Its own Service's address is reached by its name only: a literal never rides the permit
    # the name's answer left for the dial.
    for refused in ("shop->127.0.0.1", "shop->127.0.0.1 (last)", "shop->db.bank.svc", "shop->web", "cafe->127.0.0.1"):
        assert "cluster's networks" in outcomes[refused], (refused, outcomes[refused])


def test_a_tcp_check_to_a_literal_cluster_address_is_refused_at_the_dial_point(loopback_cluster: None) -> None:
    async def scenario() -> str:
        with shares.tenant("shop"):
            try:
                await egress.open_stream("127.0.0.1", 9, True)
            except egress.EgressRefused as refused:
                return str(refused)
        return "connected"

    assert "cluster's networks" in asyncio.run(scenario())


def test_the_operator_configures_the_rule_from_its_flags_and_trusts_its_own_endpoints() -> None:
    import kubernetes

    from controller.core import election
    from controller.operator import config as config_module
    from controller.operator import runtime as runtime_module

    def client() -> kubernetes.client.ApiClient:
        return kubernetes.client.ApiClient(kubernetes.client.Configuration(host="http://127.0.0.1:9"))

    config = config_module.OperatorConfig(cluster_networks=("10.96.0.0/12",), cluster_domain="corp.local",
                                          prometheus_url="http://Prometheus.Monitoring.svc:9090/")
    try:
        runtime_module.build(config, runtime_module.Options(timing=election.Timing(15, 10, 2)), client(), client())
        assert egress.CLUSTER.domain == "corp.local" and egress.CLUSTER.inside("10.100.0.1")
        assert "prometheus.monitoring.svc" in egress.CLUSTER.trusted
        assert service_names.named("web.shop.svc.corp.local", "shop", egress.CLUSTER.domain) == ("web", None)
        assert service_names.named("web.shop.svc.cluster.local", "shop", egress.CLUSTER.domain) is None
        assert egress.CLUSTER.refused("10.96.0.1", "web.bank.svc.corp.local", "shop") is not None
        assert isinstance(egress.SERVICES, kubernetes_services.KubernetesServices)  # the API answers shop's names
    finally:
        egress.configure_cluster(policy.ClusterNetworks())
