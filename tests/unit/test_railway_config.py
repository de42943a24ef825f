"""A Railway service instance's configuration (resources, deploy health check, pre-deploy
command): the documents against Railway's published schema, what is sent (only what differs),
and a round trip through the local Railway, which validates every document it receives."""

from __future__ import annotations

import asyncio
import itertools
import typing

import graphql
import pytest

from controller import validation
from controller.adapters import railway as railway_adapter
from controller.api import monitoredservice as api
from controller.core import railway_config
from localcluster import railway as railway_sim
from tests.unit.test_railway import ask

SCHEMA = railway_sim.load_schema()
IDS = {"environmentId": "env-1", "serviceId": "svc-1"}


def target(**config: object) -> api.RailwayTarget:
    return api.RailwayTarget.model_validate({"projectId": "p", **IDS, "tokenSecretRef": {"name": "r", "key": "t"},
                                             **config})


def _variables(document: str, values: dict) -> list[str]:
    """The errors Railway's schema finds in these variables of this document (graphql-core's
    coercion, as a server runs it before executing anything)."""
    parsed = graphql.parse(document)
    assert graphql.validate(SCHEMA, parsed) == []
    operation = parsed.definitions[0]
    assert isinstance(operation, graphql.OperationDefinitionNode)
    coerced = graphql.execution.values.get_variable_values(SCHEMA, operation.variable_definitions, values)
    return [error.message for error in coerced] if isinstance(coerced, list) else []


def test_limits_and_health_check_documents_validate_against_the_schema() -> None:
    """CONFIGURE with the inputs the client builds: ServiceInstanceLimitsUpdateInput (memoryGB,
    vCPUs as Floats) and ServiceInstanceUpdateInput (healthcheckPath, healthcheckTimeout,
    preDeployCommand [String!])."""
    change = railway_config.changes(
        target(resources={"memoryGB": 4, "vCPUs": 4}, deployHealthCheck={"path": "/api/health", "timeoutSeconds": 10},
               preDeployCommand=["npm run migrate"]),
        railway_config.Observed("/health", 300, None, 1.0, 1.0, limits_known=True))
    sent = {**IDS, "input": dict(change.instance), "limits": {**IDS, **change.limits}, "update": True, "resize": True}
    assert sent["input"] == {"healthcheckPath": "/api/health", "healthcheckTimeout": 10,
                             "preDeployCommand": ["npm run migrate"]}
    assert sent["limits"] == {**IDS, "memoryGB": 4.0, "vCPUs": 4.0}
    assert _variables(railway_adapter.CONFIGURE, sent) == []
    assert _variables(railway_adapter.CONFIG, {**IDS, "limits": True}) == []
    # The check bites: Railway's names, not ours; a string where an Int goes.
    assert _variables(railway_adapter.CONFIGURE, {**sent, "limits": {**IDS, "memory": 4}})
    assert _variables(railway_adapter.CONFIGURE, {**sent, "input": {"healthcheckTimeout": "10"}})
    assert _variables(railway_adapter.CONFIGURE, {**sent, "input": {"path": "/x"}})


def test_only_what_differs_is_sent() -> None:
    spec = target(resources={"memoryGB": 2, "vCPUs": 2}, deployHealthCheck={"path": "/health", "timeoutSeconds": 10})
    steady = railway_config.Observed("/health", 10, None, 2.0, 2.0000001, limits_known=True)
    assert not railway_config.changes(spec, steady), "a steady state sends nothing"
    assert railway_config.in_sync(railway_config.changes(spec, steady)).status == "True"
    one = railway_config.changes(spec, railway_config.Observed("/health", 300, None, 2.0, 1.0, limits_known=True))
    assert (dict(one.instance), dict(one.limits)) == ({"healthcheckTimeout": 10}, {"vCPUs": 2.0})
    assert one.summary == ("vCPUs 1 -> 2", "healthcheckTimeout 300 -> 10")
    # Unset fields are not managed: a path alone leaves Railway's timeout and limits be.
    assert not railway_config.changes(target(deployHealthCheck={"path": "/health"}),
                                      railway_config.Observed("/health", 300))
    assert not railway_config.managed(target())


def test_unreported_limits_are_never_written_and_commands_never_echoed() -> None:
    spec = target(resources={"memoryGB": 4}, preDeployCommand=["DB_PASSWORD=hunter2 ./migrate"])
    change = railway_config.changes(spec, railway_config.Observed(limits_known=False))
    assert dict(change.limits) == {} and dict(change.instance) == {"preDeployCommand": ["DB_PASSWORD=hunter2 ./migrate"]}
    assert change.summary == ("preDeployCommand changed",)
    assert "hunter2" not in railway_config.applied(change)
    assert "hunter2" not in railway_config.refused(change, "Not Authorized").message
    assert railway_config.in_sync(railway_config.changes(spec, railway_config.Observed(
        pre_deploy_command=("DB_PASSWORD=hunter2 ./migrate",)))).reason == "RailwayConfigUnreadable"


def test_read_configure_and_read_again_through_the_local_railway(railway) -> None:  # noqa: ANN001
    spec = target(resources={"memoryGB": 4, "vCPUs": 4}, deployHealthCheck={"path": "/api/health", "timeoutSeconds": 10},
                  preDeployCommand=["npm run migrate"])

    async def scenario(client: railway_adapter.RailwayClient) -> tuple:
        before = await client.config("env-1", "svc-1", True)
        change = railway_config.changes(spec, before)
        await client.configure("env-1", "svc-1", change.instance, change.limits)
        after = await client.config("env-1", "svc-1", True)
        return before, after, railway_config.changes(spec, after)

    before, after, left = ask(railway.url, "t0ken", scenario)
    assert before == railway_config.Observed(None, None, None, 1.0, 1.0, limits_known=True, sleep_application=False)
    assert after == railway_config.Observed("/api/health", 10, ("npm run migrate",), 4.0, 4.0, limits_known=True,
                                            sleep_application=False)
    assert not left
    assert railway.invalid == [] and len(railway.documents) == 3
    deployments = len(railway.services["svc-1"].deployments)
    assert deployments == 1, "configuration is what the next deploy uses: no deploy of its own"


def test_a_refusal_is_a_stable_error_without_the_token(railway) -> None:  # noqa: ANN001
    railway.refuse_config = "You do not have permission to change limits"

    async def scenario(client: railway_adapter.RailwayClient) -> None:
        await client.configure("env-1", "svc-1", {}, {"memoryGB": 64.0})

    with pytest.raises(railway_adapter.RailwayError, match="^You do not have permission to change limits$"):
        ask(railway.url, "t0ken", scenario)
    assert railway.services["svc-1"].memory_limit_gb == 1.0 and railway.invalid == []


def test_malformed_configuration_answers_are_not_guessed_at() -> None:
    parse = railway_adapter._config_of
    assert parse({"serviceInstance": {"healthcheckPath": 7, "healthcheckTimeout": 10 ** 400,
                                      "preDeployCommand": [1]}, "serviceInstanceLimits": {"memoryGB": "4"}},
                 "svc", True) == railway_config.Observed()
    assert parse({"serviceInstance": {"preDeployCommand": "./migrate"},
                  "serviceInstanceLimits": {"memoryGB": 2, "vCPUs": 1}}, "svc", True) == railway_config.Observed(
        pre_deploy_command=("./migrate",), memory_gb=2.0, vcpus=1.0, limits_known=True)
    with pytest.raises(railway_adapter.RailwayError, match="knows no service svc"):
        parse({"serviceInstance": None}, "svc", False)


@pytest.mark.parametrize(("config", "problem"), [
    ({"resources": {}}, "spec.target.railway.resources: resources needs memoryGB or vCPUs"),
    ({"resources": {"memoryGB": 0}}, "spec.target.railway.resources.memoryGB: Input should be greater than 0"),
    ({"deployHealthCheck": {"path": "health"}}, "spec.target.railway.deployHealthCheck.path: String should match"),
    ({"deployHealthCheck": {"path": "/h", "timeoutSeconds": 0}},
     "spec.target.railway.deployHealthCheck.timeoutSeconds: Input should be greater than or equal to 1"),
    ({"preDeployCommand": []}, "spec.target.railway.preDeployCommand: List should have at least 1 item"),
    ({"preDeployCommand": ["a\nb"]}, "spec.target.railway.preDeployCommand[0]: String should match"),
])
def test_validate_refuses_what_the_crd_refuses(config: dict, problem: str) -> None:
    found = validation.spec_problems("MonitoredService", {"target": {"railway": {
        "projectId": "p", **IDS, "tokenSecretRef": {"name": "r", "key": "t"}, **config}}})
    assert len(found) == 1 and found[0].startswith(problem), found


# -- the watcher: leader only, one send per change, agreement between MonitoredServices ----------

class Api:
    """The Kubernetes side the watcher uses: the token Secret, and Events (recorded)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, str]] = []

    def secret_value(self, namespace: str, name: str, key: str) -> str | None:
        return "t0ken"

    def create_event(self, obj: dict, event: typing.Any, now: typing.Any) -> None:
        self.events.append((obj["metadata"]["name"], event.reason, event.message))


GENERATIONS = itertools.count(1)


def service(name: str, url: str, **config: object) -> dict:
    generation = next(GENERATIONS)  # a new spec is parsed again (the view caches by uid and generation)
    return {"apiVersion": "ops.capliquify.io/v1alpha1", "kind": "MonitoredService",
            "metadata": {"namespace": "shop", "name": name, "generation": generation, "uid": f"uid-{name}",
                         "resourceVersion": str(generation)},
            "spec": {"target": {"railway": {"projectId": "p", **IDS, "tokenSecretRef": {"name": "r", "key": "t"},
                                            "endpoint": url, **config}}}}


def test_the_watcher_sends_once_agrees_or_holds_and_only_leads(railway) -> None:  # noqa: ANN001
    from controller.operator import loop
    from controller.operator import railway as railway_module
    from controller.operator import view as view_module

    view, api, leading, clock = view_module.View(), Api(), [False], [0.0]
    evaluator = loop.Evaluator(view, api, 60.0, 4)  # type: ignore[arg-type]
    watcher = railway_module.RailwayWatcher(view, evaluator, api, railway.url, allow_loopback=True,  # type: ignore[arg-type]
                                            leading=lambda: leading[0], monotonic=lambda: clock[0])
    config = {"resources": {"memoryGB": 2}, "deployHealthCheck": {"path": "/health"}}

    def sent() -> int:
        return sum(1 for d in railway.documents if "CapliquifyConfigure" in d)

    def reason(name: str) -> str | None:
        change = watcher.contribute(("MonitoredService", "shop", name), {})
        return change[1][0].reason if change else None

    async def scenario() -> None:
        view.upsert(service("a", railway.url, **config))
        view.upsert(service("b", railway.url, **config))
        await watcher.poll()
        assert sent() == 0 and not any("CapliquifyInstanceConfig" in d for d in railway.documents), "not leading"
        leading[0] = True
        await watcher.poll()
        await watcher.poll()
        assert sent() == 1 and (reason("a"), reason("b")) == ("RailwayConfigInSync",) * 2
        assert [(name, why) for name, why, _ in api.events] == [("a", "RailwayConfigApplied"), ("b", "RailwayConfigApplied")]
        assert "memoryGB 1 -> 2; healthcheckPath unset -> /health" in api.events[0][2]
        # They disagree: neither is applied, both say why.
        view.upsert(service("b", railway.url, resources={"memoryGB": 8}))
        await watcher.poll()
        assert sent() == 1 and reason("a") == reason("b") == "RailwayConfigConflict"
        # b agrees again with another value; Railway refuses it: one try per 300 s, not per poll.
        view.upsert(service("b", railway.url, resources={"memoryGB": 3}, deployHealthCheck={"path": "/health"}))
        view.upsert(service("a", railway.url, resources={"memoryGB": 3}, deployHealthCheck={"path": "/health"}))
        railway.refuse_config = "Not allowed on this plan for token t0ken"  # a Railway that echoes the token
        for _ in range(3):
            await watcher.poll()
        assert sent() == 2 and reason("a") == "RailwayConfigRefused"
        refused = watcher.contribute(("MonitoredService", "shop", "a"), {})
        assert refused is not None and refused[1][0].message == \
            "Railway refused memoryGB: Not allowed on this plan for token [token]"
        clock[0] += railway_module.CONFIG_RESEND_SECONDS + 1
        railway.refuse_config = ""
        await watcher.poll()
        assert sent() == 3 and reason("a") == "RailwayConfigInSync" and railway.services["svc-1"].memory_limit_gb == 3
        # a stops managing it: its condition says so (a condition is never removed), b's stays.
        view.upsert(service("a", railway.url))
        await watcher.poll()
        written = {"conditions": [{"type": "RailwayConfigured", "status": "True", "reason": "RailwayConfigInSync"}]}
        stale = watcher.contribute(("MonitoredService", "shop", "a"), written)
        assert stale is not None and (stale[1][0].status, stale[1][0].reason) == ("True", "NotManaged")
        assert watcher.contribute(("MonitoredService", "shop", "a"), {}) is None, "never had one: none"
        assert reason("b") == "RailwayConfigInSync"
        await watcher.close()

    asyncio.run(scenario())
    assert railway.invalid == []
