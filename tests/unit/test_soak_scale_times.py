"""The soak's scale history times a change by the API server's record of the write when its
watch saw it late (docs/reliability.md, run 14: two changes seen 9 s late, after the watch
caught up with a restarted API server, were counted as steps 7 s apart)."""

from __future__ import annotations

import datetime
import types
import typing

import kubernetes

from bench import soak

WRITTEN = datetime.datetime(2026, 12, 6, 5, 31, 16, tzinfo=datetime.timezone.utc)


def deployment(fields: dict, time: datetime.datetime | None = WRITTEN) -> typing.Any:
    """A Deployment as the watch gives it: only its managedFields are read."""
    entry = kubernetes.client.V1ManagedFieldsEntry(manager="capliquify-operator", operation="Update",
                                                   subresource="scale", time=time, fields_v1=fields)
    return types.SimpleNamespace(metadata=types.SimpleNamespace(managed_fields=[entry]))


def test_a_change_seen_late_is_timed_by_its_write() -> None:
    item = deployment({"f:spec": {"f:replicas": {}}})
    assert soak.changed_at(item, WRITTEN.timestamp() + 9.0) == WRITTEN.timestamp() + 1


def test_a_change_seen_at_once_keeps_the_watch_time() -> None:
    item = deployment({"f:spec": {"f:replicas": {}}})
    assert soak.changed_at(item, WRITTEN.timestamp() + 0.3) == WRITTEN.timestamp() + 0.3


def test_only_the_owner_of_the_replicas_times_it() -> None:
    status_only = deployment({"f:status": {"f:replicas": {}}})
    assert soak.changed_at(status_only, WRITTEN.timestamp() + 9.0) == WRITTEN.timestamp() + 9.0
    assert soak.changed_at(deployment({"f:spec": {"f:replicas": {}}}, time=None), 5.0) == 5.0
