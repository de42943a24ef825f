"""The Service reader egress asks for a name of a tenant's own namespace (adapters/kubernetes_services.py),
the real Kubernetes client against an API server on loopback that answers what a test sets: a
hostile or broken answer is that name's refusal with a reason, never an exception; answers are
kept a short while and a read in flight is shared; one namespace's hanging reads leave another's
alone. (The real API server and its EndpointSlice controller: tests/integration/test_egress_services.py.)"""

from __future__ import annotations

import asyncio
import contextlib
import json
import typing

import kubernetes
from aiohttp import web

from controller.adapters import kubernetes_services
from controller.core import service_names
from tests.unit import loopback

Handler = typing.Callable[[web.Request], typing.Awaitable[web.StreamResponse]]


async def pods_at(request: web.Request) -> web.Response:
    """Pods whose address is the field selector's: shop has 10.244.0.1 Running and 10.244.0.2 Succeeded."""
    selector = dict(term.split("=", 1) for term in request.query["fieldSelector"].split(","))
    table = {("shop", "10.244.0.1"): "Running", ("shop", "10.244.0.2"): "Succeeded", ("bank", "10.244.0.3"): "Running"}
    assert selector["spec.hostNetwork"] == "false"  # a host-network Pod's address is its node's, anyone's
    phase = table.get((request.match_info["namespace"], selector["status.podIP"]))
    items = [loopback.pod(request.match_info["namespace"], "p", selector["status.podIP"], phase)] if phase and (
        selector.get("status.phase") in (None, phase)) else []
    return as_json({"items": items, "metadata": {}})


@contextlib.asynccontextmanager
async def api_server(services: Handler, slices: Handler, pods: Handler = pods_at) -> typing.AsyncIterator[kubernetes.client.ApiClient]:
    app = web.Application()
    app.router.add_get("/api/v1/namespaces/{namespace}/services/{name}", services)
    app.router.add_get("/apis/discovery.k8s.io/v1/namespaces/{namespace}/endpointslices", slices)
    app.router.add_get("/api/v1/namespaces/{namespace}/pods", pods)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    client = kubernetes.client.ApiClient(kubernetes.client.Configuration(host=f"http://127.0.0.1:{port}"))
    try:
        yield client
    finally:
        client.close()
        await runner.cleanup()


def as_json(document: typing.Any, status: int = 200) -> web.Response:
    return web.Response(text=json.dumps(document), status=status, content_type="application/json")


async def web_service(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if name == "missing":
        return as_json({"kind": "Status", "code": 404}, 404)
    return as_json(loopback.service(request.match_info["namespace"], name, clusterIP="10.96.0.10", selector={"app": name},
                                    ports=[{"port": 80}]))


async def no_slices(request: web.Request) -> web.Response:
    return as_json({"items": [], "metadata": {}})


def lookup(services: Handler, slices: Handler, *names: tuple[str, str],
           ttl: float = kubernetes_services.TTL_SECONDS) -> list[service_names.Found | str]:
    async def scenario() -> list[service_names.Found | str]:
        async with api_server(services, slices) as client:
            reader = kubernetes_services.KubernetesServices(client, asyncio.to_thread, ttl=ttl)
            return [await reader.lookup(namespace, name) for namespace, name in names]

    return asyncio.run(scenario())


def test_a_service_and_its_slices_page_by_page() -> None:
    pages: list[str | None] = []

    async def slices(request: web.Request) -> web.Response:
        token = request.query.get("continue")
        pages.append(token)
        assert request.query["labelSelector"] == "kubernetes.io/service-name=web"
        page = [loopback.endpoint_slice("shop", "web", f"10.244.0.{len(pages)}", name=f"web-{len(pages)}")]
        return as_json({"items": page, "metadata": {"continue": "next"} if token is None else {}})

    found, missing = lookup(web_service, slices, ("shop", "web"), ("shop", "missing"))
    assert isinstance(found, service_names.Found) and found.service is not None
    assert found.service.cluster_ips == ("10.96.0.10",) and found.service.selector
    assert [piece.endpoints[0].addresses for piece in found.slices] == [("10.244.0.1",), ("10.244.0.2",)]
    assert pages == [None, "next"] and missing == service_names.Found(None)


def test_whatever_the_api_server_answers_is_a_refusal_with_a_reason_never_an_exception() -> None:
    async def forbidden(request: web.Request) -> web.Response:
        return as_json({"kind": "Status", "code": 403}, 403)

    async def fat(request: web.Request) -> web.Response:
        document = loopback.service("shop", "web", clusterIP="10.96.0.10")
        document["metadata"]["annotations"] = {"a": "x" * (2 * 1024 * 1024)}
        return as_json(document)

    async def not_json(request: web.Request) -> web.Response:
        return web.Response(text="{\"spec\": ", content_type="application/json")

    async def endless(request: web.Request) -> web.Response:  # every page full, always another
        return as_json({"items": [loopback.endpoint_slice("shop", "web", *[f"10.244.0.{i}" for i in range(1, 101)])],
                        "metadata": {"continue": "more"}})

    assert lookup(forbidden, no_slices, ("shop", "web")) == [
        "the operator may not get services in shop (RBAC), so a name of shop cannot be checked"]
    assert lookup(web_service, forbidden, ("shop", "web")) == [
        "the operator may not list endpointslices.discovery.k8s.io in shop (RBAC), so a name of shop cannot be checked"]
    assert lookup(fat, no_slices, ("shop", "web")) == [
        f"Service web of shop fills more than {kubernetes_services.budget.SERVICES_PAGE // 1024} KiB (annotations?)"]
    assert lookup(not_json, no_slices, ("shop", "web")) == ["the Service could not be read (JSONDecodeError)"]
    assert lookup(web_service, endless, ("shop", "web")) == [
        "Service web of shop has more than 5000 endpoints to check: too many to reach by its name"]


def test_an_answer_is_kept_a_short_while_and_a_read_in_flight_is_shared() -> None:
    reads: list[str] = []

    async def counted(request: web.Request) -> web.Response:
        reads.append(request.match_info["name"])
        await asyncio.sleep(0.05)  # long enough for the other callers to arrive while it is in flight
        return await web_service(request)

    async def scenario(ttl: float) -> list[service_names.Found | str]:
        async with api_server(counted, no_slices) as client:
            reader = kubernetes_services.KubernetesServices(client, asyncio.to_thread, ttl=ttl)
            together = await asyncio.gather(*(reader.lookup("shop", "web") for _ in range(5)))
            return [*together, await reader.lookup("shop", "web")]

    kept = asyncio.run(scenario(60.0))
    assert reads == ["web"] and len(set(kept)) == 1
    reads.clear()
    asyncio.run(scenario(0.0))
    assert reads == ["web", "web"]  # five callers share one read; asked again once it is stale


def test_one_namespaces_hanging_reads_leave_another_namespaces_read_alone() -> None:
    released = asyncio.Event()

    async def services(request: web.Request) -> web.Response:
        if request.match_info["namespace"] == "slow":
            await released.wait()
        return await web_service(request)

    async def scenario() -> tuple[service_names.Found | str, int]:
        async with api_server(services, no_slices) as client:
            reader = kubernetes_services.KubernetesServices(client, asyncio.to_thread)
            hanging = [asyncio.create_task(reader.lookup("slow", f"s{i}")) for i in range(16)]
            await asyncio.sleep(0.1)  # the slow namespace has taken what places it may
            other = await reader.lookup("shop", "web")
            still = sum(not task.done() for task in hanging)
            released.set()
            await asyncio.gather(*hanging)
            return other, still

    other, still = asyncio.run(scenario())
    assert isinstance(other, service_names.Found) and other.service is not None and still == 16


def test_which_addresses_are_a_running_pods_of_the_namespace_as_the_pods_say() -> None:
    async def forbidden(request: web.Request) -> web.Response:
        return as_json({"kind": "Status", "code": 403}, 403)

    async def scenario(pods: Handler) -> tuple[frozenset[str] | str, frozenset[str] | str]:
        async with api_server(web_service, no_slices, pods) as client:
            reader = kubernetes_services.KubernetesServices(client, asyncio.to_thread)
            return (await reader.pods("shop", ["10.244.0.1", "10.244.0.2", "10.244.0.3"]),
                    await reader.pods("bank", ["10.244.0.1", "10.244.0.3"]))

    assert asyncio.run(scenario(pods_at)) == (frozenset({"10.244.0.1"}), frozenset({"10.244.0.3"}))
    assert asyncio.run(scenario(forbidden)) == (
        "the operator may not list pods in shop (RBAC), so a name of shop cannot be checked",
        "the operator may not list pods in bank (RBAC), so a name of bank cannot be checked")


def test_what_a_name_costs_the_api_server_cold_and_warm() -> None:
    """Through egress's resolver: a name not seen for TTL_SECONDS costs one Service read, one
    slice list (a page of 8) and one Pod list per endpoint drawn (3, and 3 more while none is a
    Running Pod's of the namespace); again within the TTL, no Service or slice read, and a Pod
    list only for an endpoint drawn that was not drawn before."""
    from controller.adapters import egress
    from controller.adapters import shares
    from controller.core import egress as policy

    asked: list[str] = []

    async def slices(request: web.Request) -> web.Response:
        asked.append("endpointslices")
        return as_json({"items": [loopback.endpoint_slice("shop", "web", *[f"10.244.0.{i}" for i in range(1, 6)])],
                        "metadata": {}})

    async def services(request: web.Request) -> web.Response:
        asked.append("service")
        return await web_service(request)

    async def pods(request: web.Request) -> web.Response:
        asked.append("pods")
        return await pods_at(request)

    async def scenario() -> list[list[str]]:
        async with api_server(services, slices, pods) as client:
            egress.configure_cluster(policy.cluster_networks(["10.244.0.0/16", "10.96.0.0/12"]),
                                     kubernetes_services.KubernetesServices(client, asyncio.to_thread))
            costs = []
            try:
                for _ in range(2):
                    asked.clear()
                    with shares.tenant("shop"):
                        answers = await egress.GuardedResolver(False).resolve("web.shop.svc", 80, 0)
                    assert [(a["host"], a["port"]) for a in answers] == [("10.244.0.1", 8080)]  # shop's one Running Pod
                    costs.append(sorted(asked))
            finally:
                egress.configure_cluster(policy.ClusterNetworks())
            return costs

    cold, warm = asyncio.run(scenario())
    assert cold.count("service") == cold.count("endpointslices") == 1 and cold.count("pods") in (3, 5), cold
    assert warm == ["pods"] * len(warm) and len(warm) <= 2, warm


def test_reads_nobody_waits_for_any_more_are_few_however_many_names_a_namespace_asks(monkeypatch) -> None:  # noqa: ANN001
    """A namespace's forged slices give thousands of distinct addresses; each check's lookup
    draws new ones, and a Pod read per address waits for the namespace's one place while the API
    server hangs. A caller gives up at its deadline but its read stays queued (shielded, shared):
    the queue, and the reads it later sends for nobody, grew with every check. Bounded: past
    WAITING_PER_NAMESPACE reads of a namespace waiting, a name of it is refused at once."""
    released = asyncio.Event()
    asked: list[str] = []

    async def pods(request: web.Request) -> web.Response:
        asked.append(request.query["fieldSelector"])
        await released.wait()
        return await pods_at(request)

    monkeypatch.setattr(kubernetes_services, "DEADLINE_SECONDS", 0.05)

    async def scenario() -> list[frozenset[str] | str]:
        async with api_server(web_service, no_slices, pods) as client:
            reader = kubernetes_services.KubernetesServices(client, asyncio.to_thread)
            answers = [await reader.pods("shop", [f"10.244.{check}.{i}" for i in range(1, 4)]) for check in range(100)]
            asked.clear()
            released.set()
            while reader._pods_flying:  # noqa: SLF001 -- every read queued lands (or none was)
                await asyncio.sleep(0.01)
            return answers

    answers = asyncio.run(scenario())
    assert all(isinstance(answer, str) for answer in answers)
    assert len(asked) <= 32, f"{len(asked)} Pod reads sent for callers long gone"  # WAITING_PER_NAMESPACE is 16
    assert "reads of shop are still waiting for the API server" in answers[-1], answers[-1]
