"""Benchmark helpers: the objects measured, and reading the operator's /metrics and /proc."""

from __future__ import annotations

import json
import os
import pathlib
import re

from localcluster import cluster as cluster_module


def idle_deployment(name: str, namespace: str) -> dict:
    """A Deployment with no pods: a target that costs the cluster nothing."""
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": namespace},
            "spec": {"replicas": 0, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "app", "image": "bench/app:1"}]}}}}


def deployments_settled(local: cluster_module.LocalCluster, namespace: str) -> int:
    """Deployments their controller has seen and given a revision: the operator starts onto
    settled workloads (one not yet seen is a rollout in progress to the rollout guard, and the
    controller's own churn would share the API server with the phase measured)."""
    items = json.loads(local.kubectl("get", "deployments", "-n", namespace, "-o", "json"))["items"]
    return sum(1 for item in items
               if (item.get("status") or {}).get("observedGeneration") == item["metadata"].get("generation")
               and "deployment.kubernetes.io/revision" in (item["metadata"].get("annotations") or {}))


def metric(text: str, name: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and not line.startswith("#"):
            head, value = line.rsplit(" ", 1)
            if head == name or head.startswith(name + "{"):
                total += float(value)
    return total


def cpu_seconds(pid: int) -> float:
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int) -> float:
    match = re.search(r"VmHWM:\s+(\d+) kB", pathlib.Path(f"/proc/{pid}/status").read_text())
    return int(match.group(1)) / 1024 if match else float("nan")


def histogram_quantile(quantile: float, buckets: dict[float, float]) -> float:
    """Prometheus' histogram_quantile over cumulative bucket counts {upper bound: count}."""
    bounds = sorted(buckets)
    total = buckets[bounds[-1]]
    if total <= 0:
        return float("nan")
    rank = quantile * total
    lower_bound, lower_count = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if bound == float("inf"):
                return lower_bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / max(count - lower_count, 1e-9)
        lower_bound, lower_count = bound, count
    return bounds[-1]


def buckets(text: str, name: str) -> dict[float, float]:
    """Cumulative counts of histogram `name` by `le`."""
    found: dict[float, float] = {}
    for line in text.splitlines():
        match = re.match(rf'{re.escape(name)}_bucket{{.*le="([^"]+)".*}} (\S+)$', line)
        if match:
            found[float(match.group(1))] = found.get(float(match.group(1)), 0.0) + float(match.group(2))
    return found
