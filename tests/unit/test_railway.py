"""The Railway adapter against Railway's published schema and the local simulator."""

from __future__ import annotations

import datetime
import re

import graphql
import pytest

from controller.adapters import railway
from localcluster import railway as railway_sim

SCHEMA = railway_sim.load_schema()


@pytest.mark.parametrize("name", sorted(railway.DOCUMENTS))
def test_every_document_validates_against_the_published_schema(name) -> None:  # noqa: ANN001
    assert graphql.validate(SCHEMA, graphql.parse(railway.DOCUMENTS[name])) == []


def test_the_schema_check_bites() -> None:
    """deploymentRollback returns Boolean!: a selection on it must be refused."""
    bad = graphql.parse('mutation { deploymentRollback(id: "x") { id } }')
    assert graphql.validate(SCHEMA, bad)


@pytest.fixture
def simulator():  # noqa: ANN201
    sim = railway_sim.RailwaySimulator(token="t0ken").start()
    sim.add_service("svc-1", "api", replicas=2)
    yield sim
    sim.stop()


def test_read_scale_and_metrics_through_the_simulator(simulator) -> None:  # noqa: ANN001
    client = railway.RailwayClient(simulator.url, "t0ken", allow_loopback=True)
    before = client.instance("env-1", "svc-1")
    assert (before.name, before.replicas, before.deployment_status) == ("api", 2, "SUCCESS")
    usage = client.usage("env-1", "svc-1", datetime.datetime.now(datetime.timezone.utc))
    assert (usage.cpu, usage.memory) == (20.0, 30.0)  # 0.4 vCPU over 2 replicas of 1 vCPU; 0.3 of 1 GB
    client.set_replicas("env-1", "svc-1", 4)
    after = client.instance("env-1", "svc-1")
    assert after.replicas == 4 and after.deployment_id != before.deployment_id, "applied by a new deploy"
    assert client.usage("env-1", "svc-1", datetime.datetime.now(datetime.timezone.utc)).cpu == 10.0
    assert simulator.invalid == [] and len(simulator.documents) == 5


@pytest.mark.parametrize("token,environment,expected", [
    ("wrong", "env-1", "Railway refused the token (HTTP 401)"),
    ("t0ken", "env-9", "ServiceInstance not found"),
], ids=["bad-token", "unknown-instance"])
def test_errors_are_stable_texts(simulator, token, environment, expected) -> None:  # noqa: ANN001
    with pytest.raises(railway.RailwayError, match=re.escape(expected)):
        railway.RailwayClient(simulator.url, token, allow_loopback=True).instance(environment, "svc-1")


def test_an_invalid_document_is_refused_and_recorded(simulator) -> None:  # noqa: ANN001
    client = railway.RailwayClient(simulator.url, "t0ken", allow_loopback=True)
    with pytest.raises(railway.RailwayError, match="Cannot query field"):
        client._call('query { serviceInstance(environmentId: "env-1", serviceId: "svc-1") { replicas } }', {})
    assert len(simulator.invalid) == 1


@pytest.mark.parametrize("endpoint,expected", [
    ("http://169.254.169.254/graphql", "169.254.169.254 is a cloud metadata address"),
    ("http://127.0.0.1:9/graphql", "loopback"),
], ids=["metadata", "loopback-not-allowed"])
def test_the_token_never_goes_to_a_refused_address(endpoint, expected) -> None:  # noqa: ANN001
    with pytest.raises(railway.RailwayError, match="egress policy") as refused:
        railway.RailwayClient(endpoint, "t0ken").instance("env-1", "svc-1")
    assert expected in str(refused.value)
