"""Fixtures: a real local control plane (session) and the operator as its own ServiceAccount."""

from __future__ import annotations

import pathlib
import time
import typing

import pytest

from localcluster import cluster as cluster_module
from localcluster import operator as operator_module

REPO = cluster_module.REPO
OPERATOR_USER = operator_module.OPERATOR_USER


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> typing.Iterator[cluster_module.LocalCluster]:
    local = cluster_module.LocalCluster(tmp_path_factory.mktemp("cluster"))
    try:
        local.start()
        operator_module.install(local)
        yield local
    finally:
        local.stop()


@pytest.fixture
def operator_factory(cluster: cluster_module.LocalCluster, tmp_path: pathlib.Path):  # noqa: ANN201
    started: list[operator_module.OperatorProcess] = []

    def start(*extra: str) -> operator_module.OperatorProcess:
        process = operator_module.OperatorProcess(cluster, tmp_path / f"operator-{len(started)}.log", *extra).start()
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


@pytest.fixture
def namespace(cluster: cluster_module.LocalCluster, request: pytest.FixtureRequest) -> typing.Iterator[str]:
    name = f"t-{request.node.name.lower().replace('_', '-')[:40].strip('-')}-{int(time.time() * 1000) % 100000}"
    name = "".join(ch if ch.isalnum() or ch == "-" else "-" for ch in name)
    cluster.kubectl("create", "namespace", name)
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false")
