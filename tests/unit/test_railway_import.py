"""`capliquify railway import`: the policy set it writes, and how it reads Railway's answer."""

from __future__ import annotations

import asyncio
import json

import pytest
import yaml

from controller import cli
from controller.adapters import egress
from controller.adapters import railway
from controller.core import railway_import

WEB = railway.ServiceSummary("svc-web", "Web Front", 3, "/health", 30, ("web.example.com", "web.up.railway.app"))
WORKER = railway.ServiceSummary("svc-worker", "worker", None, "/health", None, ())
OPTIONS = railway_import.Options(project_id="p", environment_id="e")


def test_one_service_gives_three_objects_with_railway_s_settings() -> None:
    msvc, scp, alp = railway_import.manifests([WEB], OPTIONS)
    assert [d["kind"] for d in (msvc, scp, alp)] == ["MonitoredService", "ScalingPolicy", "AlertPolicy"]
    assert msvc["metadata"]["name"] == "web-front" and msvc["metadata"]["annotations"][
        "ops.capliquify.io/railway-service-name"] == "Web Front"
    assert msvc["spec"]["target"]["railway"] == {"projectId": "p", "environmentId": "e", "serviceId": "svc-web",
                                                 "tokenSecretRef": {"name": "railway-token", "key": "token"},
                                                 "deployHealthCheck": {"path": "/health", "timeoutSeconds": 30}}
    (check,) = msvc["spec"]["healthChecks"]
    assert check["http"] == {"url": "https://web.example.com/health", "timeoutSeconds": 10}, "timeout capped at 10 s"
    assert (check["intervalSeconds"], check["failureThreshold"], check["startPeriodSeconds"]) == (30, 3, 60)
    assert (scp["spec"]["minReplicas"], scp["spec"]["maxReplicas"]) == (3, 20)
    assert [m["type"] for m in scp["spec"]["metrics"]] == ["cpu", "memory", "latencyP95", "errorRate"]
    assert alp["spec"]["serviceRef"] == "web-front"


def test_no_domain_no_check_and_names_never_collide() -> None:
    other = railway.ServiceSummary("svc-2", "web front!", 0, None, None, ())
    documents = railway_import.manifests([WORKER, WEB, other], OPTIONS)
    names = [d["metadata"]["name"] for d in documents if d["kind"] == "MonitoredService"]
    assert names == ["web-front", "web-front-2", "worker"]
    worker = next(d for d in documents if d["kind"] == "MonitoredService" and d["metadata"]["name"] == "worker")
    assert "healthChecks" not in worker["spec"]
    floors = [d["spec"]["minReplicas"] for d in documents if d["kind"] == "ScalingPolicy"]
    assert floors == [3, 1, 1], "no count, or 0, still floors at 1"
    assert railway_import.object_name("***") == "service"


def test_the_written_policy_set_validates_as_the_api_server_would() -> None:
    documents = railway_import.manifests([WEB, WORKER], OPTIONS)
    for document in documents:
        document["metadata"]["namespace"] = "shop"
    assert cli.validate_documents(documents) == []


class Canned:
    """The guarded client's seam, answering one body: what a hostile or broken Railway may say."""

    def __init__(self, body: object) -> None:
        self.body = json.dumps(body).encode()

    async def request(self, *_: object, **__: object) -> egress.Response:
        return egress.Response(200, self.body, False)


@pytest.mark.parametrize("body,message", [
    ({"data": {"environment": None}}, "knows no environment"),
    ({"data": {"environment": {"serviceInstances": {"edges": "many"}}}}, "not a list"),
    ({"data": {"environment": {"serviceInstances": {"edges": [{"node": {"serviceName": "x"}}]}}}}, "without id"),
])
def test_a_malformed_environment_is_refused(body: object, message: str) -> None:
    client = railway.RailwayClient("http://railway", "t", Canned(body))  # type: ignore[arg-type]
    with pytest.raises(railway.RailwayError, match=message):
        asyncio.run(client.environment("p", "e"))


def test_odd_fields_are_dropped_not_trusted() -> None:
    body = {"data": {"environment": {"name": "production", "serviceInstances": {"edges": [{"node": {
        "serviceId": "s", "serviceName": "api", "numReplicas": True, "healthcheckPath": "health",
        "healthcheckTimeout": -1, "domains": {"serviceDomains": [{"domain": 5}, {"domain": "api.up.railway.app"}]}}}]}}}}
    client = railway.RailwayClient("http://railway", "t", Canned(body))  # type: ignore[arg-type]
    name, (service,) = asyncio.run(client.environment("p", "e"))
    assert name == "production"
    assert service == railway.ServiceSummary("s", "api", None, None, None, ("api.up.railway.app",))


PLATFORM = [railway.ServiceSummary("svc-web", "web", 3, "/api/health", 10, ("web.up.railway.app",), 4.0, 4.0,
                                   ("npm run db:migrate",)),
            railway.ServiceSummary("svc-worker", "worker", 2, "/worker/health", 10, (), 2.0, 2.0)]


def test_the_instance_configuration_and_replica_ranges_are_written() -> None:
    options = railway_import.Options(project_id="p", environment_id="e", replicas={"web": (2, 10)})
    web, web_scp, _, worker, worker_scp, _ = railway_import.manifests(PLATFORM, options)
    assert web["spec"]["target"]["railway"] == {
        "projectId": "p", "environmentId": "e", "serviceId": "svc-web",
        "tokenSecretRef": {"name": "railway-token", "key": "token"}, "resources": {"memoryGB": 4, "vCPUs": 4},
        "deployHealthCheck": {"path": "/api/health", "timeoutSeconds": 10}, "preDeployCommand": ["npm run db:migrate"]}
    assert (web_scp["spec"]["minReplicas"], web_scp["spec"]["maxReplicas"]) == (2, 10)
    assert (worker_scp["spec"]["minReplicas"], worker_scp["spec"]["maxReplicas"]) == (2, 20), "no range: now..20"
    assert "healthChecks" not in worker["spec"] and worker["spec"]["target"]["railway"]["deployHealthCheck"] == {
        "path": "/worker/health", "timeoutSeconds": 10}
    for document in railway_import.manifests(PLATFORM, options):
        document["metadata"]["namespace"] = "shop"
        assert cli.validate_documents([document]) == []


def test_rendered_comments_change_nothing_kubectl_reads() -> None:
    options = railway_import.Options(project_id="p", environment_id="e", replicas={"worker": (1, 5)})
    text = railway_import.render(PLATFORM, options, "header")
    assert [d for d in yaml.safe_load_all(text) if d is not None] == railway_import.manifests(PLATFORM, options)
    assert "# Railway service worker (svc-worker): 2 replica(s) now, 2 GB / 2 vCPU each" in text
    lines = text.splitlines()
    assert lines[lines.index("      resources:") - 1].startswith("      # ")
    assert max(len(line) for line in lines) <= 120


@pytest.mark.parametrize("text,error", [("web=2-10", None), ("web=10-2", "1 <= MIN <= MAX"),
                                         ("web=0-2", "1 <= MIN <= MAX"), ("web:2-10", "expected SERVICE=MIN-MAX"),
                                         ("web=2", "expected SERVICE=MIN-MAX")])
def test_replica_ranges_are_read_strictly(text: str, error: str | None) -> None:
    if error is None:
        assert railway_import.replica_range(text) == ("web", (2, 10))
    else:
        with pytest.raises(ValueError, match=error):
            railway_import.replica_range(text)
    options = railway_import.Options(project_id="p", environment_id="e", replicas={"web": (1, 2), "wbe": (1, 2)})
    assert railway_import.unknown_ranges(PLATFORM, options) == ["wbe"]


def test_the_import_reads_each_instance_and_goes_on_without_what_railway_cannot_tell(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from localcluster import railway as railway_sim

    simulator = railway_sim.RailwaySimulator(token="import-token", environment_id="env-production").start()
    try:
        railway_sim.add_platform_services(simulator)
        simulator.services["svc-worker"].limits_error = "Problem processing request"
        simulator.services["svc-web"].pre_deploy_command = ["npm run db:migrate"]
        monkeypatch.setenv("RAILWAY_TOKEN", "import-token")
        code = cli.main(["railway", "import", "--project", "prj-platform", "--environment", "env-production",
                         "--endpoint", simulator.url, "--allow-loopback-egress", "--replicas", "web=2-10"])
        out, err = capsys.readouterr()
        assert code == 0 and simulator.invalid == []
        assert err == ("warning: service worker: its limits and pre-deploy command were not read "
                       "(Problem processing request); written without them\n")
        targets = {d["metadata"]["name"]: d["spec"]["target"]["railway"] for d in yaml.safe_load_all(out)
                   if d and d["kind"] == "MonitoredService"}
        assert targets["web"]["preDeployCommand"] == ["npm run db:migrate"]
        assert targets["web"]["resources"] == {"memoryGB": 4, "vCPUs": 4} and "resources" not in targets["worker"]
        assert targets["worker"]["deployHealthCheck"] == {"path": "/worker/health", "timeoutSeconds": 10}
        assert "import-token" not in out
        simulator.token = "rotated"
        assert cli.main(["railway", "import", "--project", "p", "--environment", "env-production",
                         "--endpoint", simulator.url, "--allow-loopback-egress"]) == 1
        assert capsys.readouterr().err == "error: Railway refused the token (HTTP 401)\n"
    finally:
        simulator.stop()
