"""The Railway adapter against Railway's published schema and the local simulator."""

from __future__ import annotations

import asyncio
import datetime
import re

import graphql
import pytest

from controller.adapters import egress
from controller.adapters import railway as railway_adapter
from localcluster import railway as railway_sim

SCHEMA = railway_sim.load_schema()


def ask(endpoint: str, token: str, action, allow_loopback: bool = True):  # noqa: ANN001, ANN201
    """Runs `action(client)` (a coroutine) against the endpoint through a guarded client."""
    async def go():  # noqa: ANN202
        http = egress.GuardedClient(allow_loopback)
        try:
            return await action(railway_adapter.RailwayClient(endpoint, token, http))
        finally:
            await http.close()
    return asyncio.run(go())


@pytest.mark.parametrize("name", sorted(railway_adapter.DOCUMENTS))
def test_every_document_validates_against_the_published_schema(name) -> None:  # noqa: ANN001
    assert graphql.validate(SCHEMA, graphql.parse(railway_adapter.DOCUMENTS[name])) == []


def test_the_schema_check_bites() -> None:
    """deploymentRollback returns Boolean!: a selection on it must be refused."""
    bad = graphql.parse('mutation { deploymentRollback(id: "x") { id } }')
    assert graphql.validate(SCHEMA, bad)


def test_read_scale_and_metrics_through_the_simulator(railway) -> None:  # noqa: ANN001
    now = datetime.datetime.now(datetime.timezone.utc)

    async def scenario(client):  # noqa: ANN001, ANN202
        before = await client.instance("env-1", "svc-1")
        usage = await client.usage("env-1", "svc-1", now)
        await client.set_replicas("env-1", "svc-1", 4)
        return before, usage, await client.instance("env-1", "svc-1"), await client.usage("env-1", "svc-1", now)

    before, usage, after, spread = ask(railway.url, "t0ken", scenario)
    assert (before.name, before.replicas, before.deployment_status) == ("api", 1, "SUCCESS")
    assert (usage.cpu, usage.memory) == (40.0, 30.0)  # 0.4 vCPU on 1 replica of 1 vCPU; 0.3 of 1 GB
    assert (usage.latency_p95, usage.error_rate) == (120.0, 0.0)  # Railway's HTTP metrics, idle of errors
    assert after.replicas == 4 and after.deployment_id != before.deployment_id, "applied by a new deploy"
    assert spread.cpu == 10.0
    assert railway.invalid == [] and len(railway.documents) == 5


def test_http_metrics_take_the_latest_step_and_ignore_malformed_parts() -> None:
    durations = {"samples": [{"ts": 60, "p95": 90.0}, {"ts": 120, "p95": 310.5}, {"ts": 180, "p95": "x"}, "junk"]}
    by_status = [{"statusCode": 200, "samples": [{"ts": 60, "value": 100}, {"ts": 120, "value": 50}]},
                 {"statusCode": 503, "samples": [{"ts": 120, "value": 50}, {"ts": 180, "value": float("nan")}]},
                 {"statusCode": "5xx", "samples": [{"ts": 120, "value": 1000}]}, None]
    latency, errors, at = railway_adapter.http_from(durations, by_status)
    assert (latency, errors) == (310.5, 50.0)
    assert at == datetime.datetime.fromtimestamp(120, tz=datetime.timezone.utc)
    assert railway_adapter.http_from(None, "garbage") == (None, None, None)
    idle = [{"statusCode": 200, "samples": [{"ts": 60, "value": 0}]}]
    assert railway_adapter.http_from({}, idle)[1] == 0.0  # no requests, no errors


@pytest.mark.parametrize("token,environment,expected", [
    ("wrong", "env-1", "Railway refused the token (HTTP 401)"),
    ("t0ken", "env-9", "ServiceInstance not found"),
], ids=["bad-token", "unknown-instance"])
def test_errors_are_stable_texts(railway, token, environment, expected) -> None:  # noqa: ANN001
    with pytest.raises(railway_adapter.RailwayError, match=re.escape(expected)):
        ask(railway.url, token, lambda client: client.instance(environment, "svc-1"))


def test_an_invalid_document_is_refused_and_recorded(railway) -> None:  # noqa: ANN001
    with pytest.raises(railway_adapter.RailwayError, match="Cannot query field"):
        ask(railway.url, "t0ken", lambda client: client._call(
            'query { serviceInstance(environmentId: "env-1", serviceId: "svc-1") { replicas } }', {}))
    assert len(railway.invalid) == 1


@pytest.mark.parametrize("endpoint,expected", [
    ("http://169.254.169.254/graphql", "169.254.169.254 is a cloud metadata address"),
    ("http://127.0.0.1:9/graphql", "loopback"),
], ids=["metadata", "loopback-not-allowed"])
def test_the_token_never_goes_to_a_refused_address(endpoint, expected) -> None:  # noqa: ANN001
    with pytest.raises(railway_adapter.RailwayError, match="egress policy") as refused:
        ask(endpoint, "t0ken", lambda client: client.instance("env-1", "svc-1"), allow_loopback=False)
    assert expected in str(refused.value)


def control(railway, **body) -> dict:  # noqa: ANN001, ANN003
    import json
    import urllib.request
    request = urllib.request.Request(f"http://127.0.0.1:{railway.port}/control", method="POST",
                                     data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.load(answer)


def test_a_failed_deployment_is_rolled_back_once_to_the_newest_that_can_be(railway) -> None:  # noqa: ANN001
    good = railway.services["svc-1"].deployments[-1]["id"]
    control(railway, serviceId="svc-1", deploy={"status": "SUCCESS", "errorPercent": 1})
    better = railway.services["svc-1"].deployments[-1]["id"]
    failed = control(railway, serviceId="svc-1", deploy={"status": "FAILED", "errorPercent": 50})["latestDeployment"]

    async def scenario(client):  # noqa: ANN001, ANN202
        first = await client.rollback("env-1", "svc-1", failed)
        again = await client.rollback("env-1", "svc-1", failed)  # the same intent once more: nothing
        return first, again, await client.instance("env-1", "svc-1")

    first, again, after = ask(railway.url, "t0ken", scenario)
    assert (first, again) == (better, "") and good != better
    assert [r[2] for r in railway.rollbacks] == [better]
    assert after.deployment_status == "SUCCESS" and after.deployment_id not in (failed, better)
    assert railway.services["svc-1"].error_percent == 1  # the code of the deployment rolled back to
    assert railway.invalid == []


def test_no_deployment_to_roll_back_to_is_an_error(railway) -> None:  # noqa: ANN001
    first = railway.services["svc-1"].deployments[-1]
    first["canRollback"] = False
    failed = control(railway, serviceId="svc-1", deploy={"status": "CRASHED"})["latestDeployment"]
    with pytest.raises(railway_adapter.RailwayError, match="can be rolled back to"):
        ask(railway.url, "t0ken", lambda client: client.rollback("env-1", "svc-1", failed))
    assert railway.rollbacks == []


def test_malformed_deployments_are_never_guessed_at() -> None:
    for answer in (None, {"edges": "x"}, {"edges": [{"node": {"id": "a"}}]},
                   {"edges": [{"node": {"id": "a", "createdAt": "yesterday"}}]}):
        with pytest.raises(railway_adapter.RailwayError, match="malformed"):
            railway_adapter._deployments(answer)


def test_several_regions_are_scaled_per_region(railway) -> None:  # noqa: ANN001
    railway.add_service("svc-2", "web", regions={"us-west2": 2, "europe-west4": 1})

    async def scenario(client):  # noqa: ANN001, ANN202
        before = await client.instance("env-1", "svc-2")
        await client.set_replicas("env-1", "svc-2", 6, {"us-west2": 4, "europe-west4": 2})
        return before, await client.instance("env-1", "svc-2")

    before, after = ask(railway.url, "t0ken", scenario)
    assert before.regions == {"us-west2": 2, "europe-west4": 1} and before.replicas == 3
    assert after.regions == {"us-west2": 4, "europe-west4": 2} and after.replicas == 6
    assert railway.invalid == []
