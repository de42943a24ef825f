"""`make demo` with the operator as pods: when it falls back to a host process (and says why),
and the examples' endpoints all on loopback before they are applied (the operator's pods are
already running then). The demo itself runs for real in `make demo`."""

from __future__ import annotations

import datetime
import json
import pathlib
import subprocess
import typing
import urllib.parse

import pytest
import yaml

import demo.__main__ as demo
from localcluster import cluster as cluster_module
from localcluster import pods

TOOLS = ("buildah", "containerd", "ctr", "runc")


@pytest.fixture
def machine(monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path) -> dict[str, typing.Any]:
    """A machine whose user id, tools and CNI plugin the test sets (all present, root, by default)."""
    state: dict[str, typing.Any] = {"uid": 0, "tools": set(TOOLS)}
    (tmp_path / "loopback").write_text("")
    monkeypatch.setattr(pods, "CNI_LOOPBACK", tmp_path / "loopback")
    monkeypatch.setattr(pods.os, "geteuid", lambda: state["uid"])
    monkeypatch.setattr(pods.shutil, "which", lambda tool: f"/usr/bin/{tool}" if tool in state["tools"] else None)
    state["cni"] = tmp_path / "loopback"
    return state


def test_pods_when_root_and_every_tool_is_there(machine: dict[str, typing.Any]) -> None:
    assert pods.unavailable() is None


def test_not_root_is_the_reason_named(machine: dict[str, typing.Any]) -> None:
    machine["uid"] = 1000
    assert pods.unavailable() == "not root (containerd, runc and buildah's store need root)"


@pytest.mark.parametrize("missing", [("buildah",), ("runc",), ("containerd", "ctr")])
def test_a_missing_tool_is_named(machine: dict[str, typing.Any], missing: tuple[str, ...]) -> None:
    machine["tools"] -= set(missing)
    reason = pods.unavailable()
    assert reason is not None and reason.endswith("not installed (make apt installs them)")
    assert all(tool in reason for tool in missing) and not any(tool in reason for tool in set(TOOLS) - set(missing))


def test_a_missing_cni_plugin_is_named(machine: dict[str, typing.Any]) -> None:
    machine["cni"].unlink()
    assert "CNI loopback plugin" in (pods.unavailable() or "")


def test_the_built_archive_is_where_make_image_writes_it(monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\nversion = "9.8.7"\n')
    monkeypatch.setattr(pods.cluster_module, "REPO", tmp_path)
    with pytest.raises(FileNotFoundError, match="make image writes it"):
        pods.built_image()
    (tmp_path / "dist").mkdir()
    (tmp_path / "dist" / "capliquify-operator-9.8.7.tar").write_bytes(b"archive")
    assert pods.built_image() == tmp_path / "dist" / "capliquify-operator-9.8.7.tar"


class Kustomize:
    """What local_examples asks of the cluster: `kubectl kustomize`, which needs no server."""

    def kubectl(self, *args: str) -> str:
        return subprocess.run(["kubectl", *args], check=True, capture_output=True, text=True, timeout=60).stdout


def hosts(text: str) -> set[str]:
    """Every URL's host and every `host:` line in a channel's secret value."""
    found = {urllib.parse.urlsplit(word).hostname or "" for word in text.split() if "://" in word}
    found |= {line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("host:")}
    return found


def test_the_examples_endpoints_are_all_on_loopback_before_they_are_applied() -> None:
    objects = demo.local_examples(typing.cast(cluster_module.LocalCluster, Kustomize()),
                                  "http://127.0.0.1:9090", "http://127.0.0.1:8089/health")
    by_kind = {(o["kind"], o["metadata"]["name"]): o for o in objects}
    # The shipped examples name real endpoints (the test fails if they no longer do: then this
    # rewrite is no longer needed, or names other objects).
    shipped = {(o["kind"], o["metadata"]["name"]): o
               for o in yaml.safe_load_all(Kustomize().kubectl("kustomize", str(demo.REPO / "manifests" / "examples"))) if o}
    assert "hooks.slack.com" in hosts("\n".join(shipped[("Secret", "alert-channels")]["stringData"].values()))
    service = by_kind[("MonitoredService", "web")]["spec"]
    assert [urllib.parse.urlsplit(c["http"]["url"]).hostname for c in service["healthChecks"]] == ["127.0.0.1"]
    assert urllib.parse.urlsplit(service["metrics"]["prometheus"]["url"]).hostname == "127.0.0.1"
    assert hosts("\n".join(by_kind[("Secret", "alert-channels")]["stringData"].values())) == {"127.0.0.1"}
    channels = by_kind[("AlertPolicy", "prod-web")]["spec"]["channels"]
    urls = [c["alertmanager"]["url"] for c in channels if "alertmanager" in c]
    assert urls and all(urllib.parse.urlsplit(url).hostname == "127.0.0.1" for url in urls)
    # Every other channel reads its endpoint from that Secret.
    for channel in channels:
        configs = [value for key, value in channel.items() if key != "name"]
        assert "alertmanager" in channel or any(key.endswith("SecretRef") for config in configs for key in config), channel


class LeaseReader:
    """A cluster whose Lease is `spec` (None: there is none)."""

    def __init__(self, spec: dict[str, typing.Any] | None) -> None:
        self.spec = spec

    def kubectl(self, *args: str, check: bool = True) -> str:
        assert args[:3] == ("get", "lease", pods.LEASE) and not check
        return "" if self.spec is None else json.dumps({"spec": self.spec})


def renewed(seconds_ago: float) -> str:
    moment = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=seconds_ago)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@pytest.mark.parametrize(("spec", "renewed_ago", "free"), [
    (None, None, True),
    ({"leaseDurationSeconds": 15}, None, True),  # released: no holder
    ({"holderIdentity": "pod-a_1", "leaseDurationSeconds": 15}, 2, False),
    ({"holderIdentity": "pod-a_1", "leaseDurationSeconds": 15}, 20, True),  # expired
    ({"holderIdentity": "pod-a_1", "leaseDurationSeconds": 30}, 20, False),
])
def test_the_lease_is_free_when_released_or_expired(spec: dict[str, typing.Any] | None, renewed_ago: float | None,
                                                   free: bool) -> None:
    # The renewal is stamped when the test runs, not when it is collected (make test collects
    # everything, then runs the integration tests for most of an hour before this one).
    if spec is not None and renewed_ago is not None:
        spec = {**spec, "renewTime": renewed(renewed_ago)}
    assert pods.lease_free(typing.cast(cluster_module.LocalCluster, LeaseReader(spec))) is free
