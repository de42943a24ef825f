"""With --cluster-networks, a name of a tenant's own namespace is answered from the API server,
never by DNS (core/service_names.py): here the real Kubernetes adapter (adapters/kubernetes_services.py),
authenticated as the operator's ServiceAccount with the shipped RBAC, reads Services and
EndpointSlices of the real control plane, where the real EndpointSlice controller writes the
slices of Services with a selector (kwok runs the Pods and gives them addresses).

Another namespace ("bank") has a Service and a Pod. The tenant's ExternalName Service for bank's
Service, its selector-less Service with an EndpointSlice written by hand to bank's Pod, and a
headless one whose hand-written slice carries the controller's label and a Pod of the tenant's
are all refused, with the reason (and bank's Pod's address is no Running Pod's of the tenant's,
as the Pods say); its ordinary ClusterIP Service and its headless Service give
its own Pod's address (on the Service's target port), as the controller wrote them."""

from __future__ import annotations

import asyncio
import http.server
import json
import socket
import threading
import typing

import pytest
import yaml

from controller.adapters import egress
from controller.adapters import kubernetes_api
from controller.adapters import kubernetes_services
from controller.adapters import shares
from controller.core import egress as policy
from controller.core import service_names
from localcluster import operator as operator_module
from tests.integration import test_monitoredservice as ms
from tests.unit import loopback

pytestmark = pytest.mark.integration


def pod(name: str, app: str) -> dict[str, typing.Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": app}},
            "spec": {"containers": [{"name": "c", "image": "demo/web:1"}]}}


def service(name: str, **spec: typing.Any) -> dict[str, typing.Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"ports": [{"port": 80}], **spec} if spec.get("type") != "ExternalName" else spec}


def slice_by_hand(service_name: str, address: str, namespace: str, **labels: str) -> dict[str, typing.Any]:
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": f"{service_name}-by-hand", "labels": {service_names.SERVICE_NAME_LABEL: service_name, **labels}},
            "addressType": "IPv4", "ports": [{"port": 80}],
            "endpoints": [{"addresses": [address], "targetRef": {"kind": "Pod", "namespace": namespace, "name": "web"}}]}


def test_names_of_a_namespace_are_what_the_api_says_they_are(cluster, namespace) -> None:  # noqa: ANN001
    bank = f"{namespace[:50]}-bank"
    cluster.kubectl("create", "namespace", bank)
    try:
        def apply(where: str, *objects: dict[str, typing.Any]) -> None:
            cluster.kubectl("apply", "-n", where, "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List",
                                                                              "items": list(objects)}))

        def get(where: str, kind: str, name: str, path: str) -> str:
            return cluster.kubectl("get", "-n", where, kind, name, "-o", f"jsonpath={path}")

        apply(bank, service("db", selector={"app": "db"}), pod("db", "db"))
        # web maps its port 80 to the Pod's 8080: dialled there, as kube-proxy would forward it; the
        # headless one gives the Pod's address on the port asked for, as DNS would.
        host_network = pod("host", "host")
        host_network["spec"]["hostNetwork"] = True  # its address is its node's: anyone's host-network Pod's too
        apply(namespace, pod("web", "web"), host_network,
              service("web", selector={"app": "web"}, ports=[{"port": 80, "targetPort": 8080}]),
              service("web-headless", clusterIP="None", selector={"app": "web"}),
              service("alias", type="ExternalName", externalName=f"db.{bank}.svc.cluster.local"))
        cluster.wait_for(lambda: all(get(where, "pod", name, "{.status.podIP}") for where, name in (
            (bank, "db"), (namespace, "web"), (namespace, "host"))), 60, "kwok gives the Pods their addresses")
        bank_pod, bank_ip = get(bank, "pod", "db", "{.status.podIP}"), get(bank, "service", "db", "{.spec.clusterIP}")
        own_pod = get(namespace, "pod", "web", "{.status.podIP}")
        apply(namespace, service("by-hand"), slice_by_hand("by-hand", bank_pod, namespace, **{
            service_names.MANAGED_BY_LABEL: "staff"}),
              service("forged", clusterIP="None"), slice_by_hand("forged", bank_pod, namespace, **{
                  service_names.MANAGED_BY_LABEL: service_names.ENDPOINTSLICE_CONTROLLER}))

        # The operator's own identity and RBAC; the cluster's DNS would answer bank's name.
        api_client = kubernetes_api.load_config(str(cluster.service_account_kubeconfig(
            operator_module.OPERATOR_NAMESPACE, operator_module.OPERATOR_ACCOUNT)))
        dns = loopback.Names({f"db.{bank}.svc.cluster.local": bank_ip})
        networks = ["10.96.0.0/16", "10.0.0.0/24"]  # the control plane's Service range, kwok's Pod range

        async def resolve(host: str) -> list[tuple[str, int]] | str:
            with shares.tenant(namespace):
                try:
                    answers = await egress.GuardedResolver(False, inner=dns).resolve(host, 80, socket.AF_UNSPEC)
                except egress.EgressRefused as refused:
                    return str(refused)
            return [(answer["host"], answer["port"]) for answer in answers]

        async def names() -> dict[str, list[tuple[str, int]] | str]:
            return {name: await resolve(f"{name}.{namespace}.svc") for name in ("web", "web-headless", "alias", "by-hand", "forged")}

        reader = kubernetes_services.KubernetesServices(api_client, asyncio.to_thread, ttl=0)
        egress.configure_cluster(policy.cluster_networks(networks), reader)
        try:
            # Whose an address is, as the Pods say (list pods by status.podIP): the tenant's own only.
            host_ip = get(namespace, "pod", "host", "{.status.podIP}")
            assert asyncio.run(reader.pods(namespace, [own_pod, bank_pod, host_ip])) == {own_pod}
            # The controller writes the slices once the Pod is ready: asked until it has.
            outcomes: dict[str, list[tuple[str, int]] | str] = {}

            def settled() -> bool:
                outcomes.update(asyncio.run(names()))
                return outcomes["web"] == [(own_pod, 8080)] and outcomes["web-headless"] == [(own_pod, 80)]

            try:
                cluster.wait_for(settled, 30, "the controller's slices of web and web-headless")
            except TimeoutError:
                raise AssertionError(f"web and web-headless are not its Pod {own_pod}: {outcomes}") from None
        finally:
            egress.configure_cluster(policy.ClusterNetworks())
            api_client.close()
        assert f"ExternalName Service for db.{bank}.svc.cluster.local" in str(outcomes["alias"]), outcomes
        assert f"not a Service of namespace {namespace}" in str(outcomes["alias"]), outcomes
        assert f"EndpointSlice by-hand-by-hand of Service by-hand leads to {bank_pod}" in str(outcomes["by-hand"]), outcomes
        assert f"EndpointSlice forged-by-hand of Service forged leads to {bank_pod}" in str(outcomes["forged"]), outcomes
        assert dns.asked == [], dns.asked  # another namespace's Service name is refused before any lookup (cf317f5)
    finally:
        cluster.kubectl("delete", "namespace", bank, "--wait=false")


class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *_: object) -> None:
        pass


def test_the_operator_checks_what_the_api_says_a_name_is(cluster, namespace, operator_factory) -> None:  # noqa: ANN001
    """The operator as users run it (its ServiceAccount, the shipped RBAC, --cluster-networks): a
    check of a name of its namespace is answered from the API (no DNS here knows the name): an
    ExternalName Service for `localhost` (outside the networks given) is followed and passes,
    and a Service whose hand-written slice leads inside the networks is refused with the reason."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        checks = [{"name": name, "intervalSeconds": 1, "failureThreshold": 1,
                   "http": {"url": f"http://{name}.{namespace}.svc:{port}/health", "timeoutSeconds": 1}}
                  for name in ("local", "by-hand")]
        cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all([
            ms.deployment(), service("local", type="ExternalName", externalName="localhost"),
            service("by-hand", ports=[{"port": port}]),
            slice_by_hand("by-hand", "10.0.0.250", namespace, **{service_names.MANAGED_BY_LABEL: "staff"}),
            ms.msvc(checks=checks)]))
        operator_factory("--allow-loopback-checks", "--cluster-networks=10.96.0.0/16,10.0.0.0/24")

        def checked() -> dict[str, dict[str, typing.Any]]:
            return {c["name"]: c for c in ms.get(cluster, "msvc", namespace).get("status", {}).get("checks", [])}

        cluster.wait_for(lambda: checked().get("local", {}).get("healthy") is True and "by-hand" in checked(), 60,
                         "the local check passes and the by-hand one is judged")
        refused = checked()["by-hand"]
        assert refused.get("healthy") is not True and "EndpointSlice by-hand-by-hand of Service by-hand leads to 10.0.0.250" \
            in refused.get("message", ""), refused
    finally:
        server.shutdown()
