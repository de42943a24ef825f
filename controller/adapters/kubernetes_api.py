"""Writes and point reads against the Kubernetes API (blocking; always with timeouts)."""

from __future__ import annotations

import base64
import datetime
import json
import socket
import typing

import kubernetes

import controller
from controller import reasons
from controller.core import status as status_module
from controller.core import timestamps

PLURALS = {"MonitoredService": "monitoredservices", "ScalingPolicy": "scalingpolicies", "AlertPolicy": "alertpolicies"}
TIMEOUT_SECONDS = (5, 20)  # connect, read
LIST_PAGE = 500
BUILTIN_LISTS = {
    "Deployment": ("_apps", "deployment"),
    "StatefulSet": ("_apps", "stateful_set"),
    "HorizontalPodAutoscaler": ("_autoscaling", "horizontal_pod_autoscaler"),
}


def load_config(kubeconfig: str | None = None, connections: int = 32) -> kubernetes.client.ApiClient:
    """In-cluster config inside a pod; the kubeconfig (or $KUBECONFIG) elsewhere."""
    configuration = kubernetes.client.Configuration()
    try:
        if kubeconfig:
            raise kubernetes.config.ConfigException("explicit kubeconfig")
        kubernetes.config.load_incluster_config(client_configuration=configuration)
    except kubernetes.config.ConfigException:
        kubernetes.config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
    # One kept-alive connection per worker thread: the default (5 per core) would open and
    # drop a TLS connection for every call beyond it when the pool is busy (start-up).
    configuration.connection_pool_maxsize = connections
    return kubernetes.client.ApiClient(configuration)


def bearer_token(configuration: kubernetes.client.Configuration) -> str | None:
    header = configuration.get_api_key_with_prefix("BearerToken") or configuration.get_api_key_with_prefix(
        "authorization"
    )
    return header.split(" ", 1)[-1] if header else None


class KubeApi:
    """What the operator writes: status subresources and Events. And Secret look-ups."""

    def __init__(self, api_client: kubernetes.client.ApiClient, on_write: typing.Callable[[str], None]) -> None:
        # The generated clients take and give plain dicts here; their stubs speak of models.
        self._custom: typing.Any = kubernetes.client.CustomObjectsApi(api_client)
        self._core: typing.Any = kubernetes.client.CoreV1Api(api_client)
        self._apps = kubernetes.client.AppsV1Api(api_client)
        self._autoscaling = kubernetes.client.AutoscalingV2Api(api_client)
        self._on_write = on_write
        self.configuration: kubernetes.client.Configuration = api_client.configuration
        self._instance = socket.gethostname()

    def patch_status(self, kind: str, namespace: str, name: str, patch: dict[str, typing.Any]) -> dict[str, typing.Any]:
        self._on_write("patch")
        return self._custom.patch_namespaced_custom_object_status(
            controller.API_GROUP, controller.API_VERSION, namespace, PLURALS[kind], name,
            {"status": patch}, _request_timeout=TIMEOUT_SECONDS,
        )

    def create_event(self, obj: typing.Mapping[str, typing.Any], event: status_module.EventSpec,
                     now: datetime.datetime) -> None:
        meta = obj["metadata"]
        timestamp = timestamps.to_status(now)
        body = {
            "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
            "involvedObject": {
                "apiVersion": obj.get("apiVersion"), "kind": obj.get("kind"), "name": meta["name"],
                "namespace": meta["namespace"], "uid": meta.get("uid"), "resourceVersion": meta.get("resourceVersion"),
            },
            "type": event.type, "reason": event.reason, "message": event.message[:1024],
            "source": {"component": reasons.COMPONENT},
            "reportingComponent": reasons.COMPONENT, "reportingInstance": self._instance,
            "action": event.reason, "firstTimestamp": timestamp, "lastTimestamp": timestamp, "count": 1,
        }
        self._on_write("create")
        self._core.create_namespaced_event(meta["namespace"], body, _request_timeout=TIMEOUT_SECONDS)

    def secret_keys(self, namespace: str, name: str) -> frozenset[str] | None:
        """The data keys of a Secret, or None when it does not exist."""
        try:
            secret = self._core.read_namespaced_secret(name, namespace, _request_timeout=TIMEOUT_SECONDS)
        except kubernetes.client.ApiException as error:
            if error.status == 404:
                return None
            raise
        return frozenset((secret.data or {}).keys())

    def secret_value(self, namespace: str, name: str, key: str) -> str | None:
        secret = self._core.read_namespaced_secret(name, namespace, _request_timeout=TIMEOUT_SECONDS)
        raw = (secret.data or {}).get(key)
        return base64.b64decode(raw).decode() if raw is not None else None

    def current_uid(self, kind: str, namespace: str, name: str) -> str | None:
        """The uid of one of our objects as the API server has it now; None when it is gone."""
        try:
            obj = self._custom.get_namespaced_custom_object(
                controller.API_GROUP, controller.API_VERSION, namespace, PLURALS[kind], name,
                _request_timeout=TIMEOUT_SECONDS)
        except kubernetes.client.ApiException as error:
            if error.status == 404:
                return None
            raise
        return typing.cast(str, (obj.get("metadata") or {}).get("uid"))

    def list_versioned(self, kind: str, namespace: str | None) -> tuple[list[dict[str, typing.Any]], str]:
        """Every object of a kind (in one namespace, or all), and the listing's resourceVersion."""
        items: list[dict[str, typing.Any]] = []
        token: str | None = None
        while True:
            page, token, version = self.list_page(kind, namespace, token)
            items.extend(page)
            if not token:
                return items, version

    def list_page(self, kind: str, namespace: str | None, token: str | None
                  ) -> tuple[list[dict[str, typing.Any]], str | None, str]:
        """One page of a listing of a kind (in one namespace, or all): its objects as plain dicts
        with `kind` set, the token of the next page (None after the last) and the listing's
        resourceVersion (a watch carries on from it). Pages, so that a caller can take in one
        page at a time: at 10,000 objects a whole answer set the process's peak memory. The
        pages of one listing are one snapshot."""
        listing = self._list_page(kind, namespace, token)
        page = listing.get("items") or []
        for item in page:
            item.setdefault("kind", kind)
        meta = listing.get("metadata") or {}
        return page, meta.get("continue") or None, str(meta.get("resourceVersion") or "")

    def _list_page(self, kind: str, namespace: str | None, token: str | None) -> dict[str, typing.Any]:
        paging: dict[str, typing.Any] = {"limit": LIST_PAGE, "_request_timeout": TIMEOUT_SECONDS}
        if token:
            paging["_continue"] = token
        if kind in PLURALS:
            if namespace is None:
                return typing.cast(dict[str, typing.Any], self._custom.list_cluster_custom_object(
                    controller.API_GROUP, controller.API_VERSION, PLURALS[kind], **paging))
            return typing.cast(dict[str, typing.Any], self._custom.list_namespaced_custom_object(
                controller.API_GROUP, controller.API_VERSION, namespace, PLURALS[kind], **paging))
        api, method = BUILTIN_LISTS[kind]
        client = getattr(self, api)
        if namespace is None:
            response = getattr(client, f"list_{method}_for_all_namespaces")(_preload_content=False, **paging)
        else:
            response = getattr(client, f"list_namespaced_{method}")(namespace, _preload_content=False, **paging)
        return typing.cast(dict[str, typing.Any], json.loads(response.data))
