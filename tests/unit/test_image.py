"""The image's recipe and the real nodes' configuration, checked without building or starting
anything (tests/integration/test_real_node.py runs them for real)."""

from __future__ import annotations

import importlib.metadata
import json
import pathlib
import re
import subprocess
import sys
import threading
import tomllib
import typing
import urllib.error
import urllib.request

import pytest
import yaml

from localcluster import cluster as cluster_module
from localcluster import node as node_module
from localcluster import pods

REPO = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "hack" / "image"))
import pins  # noqa: E402
import testapp  # noqa: E402


def stages(dockerfile: str) -> list[list[str]]:
    """The Dockerfile's instructions, by stage (continuation lines joined)."""
    found: list[list[str]] = []
    for line in dockerfile.replace("\\\n", " ").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("FROM "):
            found.append([])
        if found:
            found[-1].append(line)
    return found


def test_the_operator_stage_runs_no_shell_as_a_non_root_user() -> None:
    final = stages((REPO / "Dockerfile").read_text())[-1]
    assert not [i for i in final if i.startswith("RUN")], "the final stage executes nothing at build"
    entrypoint = next(i for i in final if i.startswith("ENTRYPOINT"))
    assert json.loads(entrypoint.removeprefix("ENTRYPOINT").strip()) == ["/opt/capliquify/bin/capliquify"]
    user = next(i for i in final if i.startswith("USER")).split()[1]
    assert re.fullmatch(r"[1-9][0-9]*:[0-9]+", user), "numeric, not root: runAsNonRoot can check it"
    # Every stage starts from the one base argument (the local base or the pinned release base).
    assert all(stage[0].startswith("FROM ${BASE_IMAGE}") for stage in stages((REPO / "Dockerfile").read_text()))


def test_pins_are_the_installed_runtime_closure() -> None:
    closure = pins.closure("capliquify-operator")
    for name in ("kopf", "kubernetes", "pydantic", "aiohttp", "prometheus-client", "cel-python"):
        assert closure[name] == importlib.metadata.version(name)
    # Extras are not followed: the test and plotting tools stay out of the image.
    assert "pytest" not in closure and "matplotlib" not in closure and "mypy" not in closure


def test_containerd_config_is_what_this_machine_needs() -> None:
    home = pathlib.Path("/x")
    config = tomllib.loads(node_module.containerd_config(home, home / "c.sock", home / "cni"))
    cri = config["plugins"]["io.containerd.grpc.v1.cri"]
    assert cri["restrict_oom_score_adj"] is True and cri["sandbox_image"] == node_module.PAUSE_IMAGE
    assert cri["stream_server_address"] == "127.0.0.1"
    assert cri["containerd"]["runtimes"]["runc"]["options"] == {"SystemdCgroup": False, "Root": "/x/runc"}
    assert (config["root"], config["state"], config["grpc"]["address"]) == ("/x/root", "/x/state", "/x/c.sock")


def test_the_overlay_overrides_the_image_and_keeps_the_shipped_deployment(tmp_path: pathlib.Path) -> None:
    local = cluster_module.LocalCluster(tmp_path / "cluster")
    local.apiserver_port = 6443
    overlay = pods.operator_overlay(tmp_path / "overlay", local, "localhost/capliquify-operator:0.1.0", 18080, 18081,
                                    ["--allow-loopback-checks"])
    rendered = subprocess.run(["kubectl", "kustomize", str(overlay)], check=True, capture_output=True, text=True,
                              timeout=60).stdout
    deployment = next(d for d in yaml.safe_load_all(rendered) if d and d["kind"] == "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["image"] == "localhost/capliquify-operator:0.1.0" and container["imagePullPolicy"] == "Never"
    assert container["args"][:3] == ["run", "--log-format=json", "--leader-elect"] and container["args"][-1] == "--allow-loopback-checks"
    env = {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}
    assert env["KUBERNETES_SERVICE_PORT"] == "6443" and env["CAPLIQUIFY_HEALTH_PORT"] == "18081"
    assert env["CAPLIQUIFY_BIND_ADDRESS"] == {"fieldRef": {"fieldPath": "status.podIP"}}
    assert pod["hostNetwork"] is True and pod["nodeSelector"] == {node_module.LABEL: "real"}
    # What the shipped manifests say stays: replicas, probes, security, resources.
    assert deployment["spec"]["replicas"] == 2
    assert container["readinessProbe"]["httpGet"]["port"] == "health"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True


@pytest.fixture
def app() -> typing.Iterator[str]:
    server = testapp.http.server.ThreadingHTTPServer(("127.0.0.1", 0), testapp.Handler)
    testapp.State.failing = False
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def status(url: str, method: str = "GET") -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method=method, data=b"" if method == "POST" else None),
                                    timeout=5) as answer:
            return answer.status
    except urllib.error.HTTPError as error:
        return error.code


def test_the_demo_app_health_fails_and_recovers_on_request(app: str) -> None:
    assert status(f"{app}/health") == 200
    assert status(f"{app}/fail", "POST") == 200 and status(f"{app}/healthz") == 503
    assert status(f"{app}/recover", "POST") == 200 and status(f"{app}/health") == 200
    assert status(f"{app}/other", "POST") == 404
