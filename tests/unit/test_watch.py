"""The watch stream's pure parts: paths, line splitting, where to carry on from."""

from __future__ import annotations

import pytest

from controller.adapters import kubernetes_watch


def test_paths_of_each_kind() -> None:
    assert kubernetes_watch.path("ScalingPolicy", "team-a") == \
        "/apis/ops.capliquify.io/v1alpha1/namespaces/team-a/scalingpolicies"
    assert kubernetes_watch.path("Deployment", None) == "/apis/apps/v1/deployments"
    assert kubernetes_watch.path("HorizontalPodAutoscaler", "b") == \
        "/apis/autoscaling/v2/namespaces/b/horizontalpodautoscalers"


def test_lines_split_across_chunks() -> None:
    lines, rest = kubernetes_watch.split_lines(b"", b'{"a": 1}\n{"b"')
    assert (lines, rest) == ([b'{"a": 1}'], b'{"b"')
    lines, rest = kubernetes_watch.split_lines(rest, b': 2}\n\n')
    assert (lines, rest) == ([b'{"b": 2}'], b"")


def test_an_endless_line_is_refused() -> None:
    with pytest.raises(ValueError, match="longer than"):
        kubernetes_watch.split_lines(b"x" * kubernetes_watch.MAX_LINE_BYTES, b"y")


def test_resume_version_follows_objects_and_bookmarks() -> None:
    modified = {"type": "MODIFIED", "object": {"metadata": {"resourceVersion": "42"}}}
    bookmark = {"type": "BOOKMARK", "object": {"kind": "ScalingPolicy", "metadata": {"resourceVersion": "50"}}}
    assert kubernetes_watch.version_after(modified, "ScalingPolicy", "7") == "42"
    assert kubernetes_watch.version_after(bookmark, "ScalingPolicy", "42") == "50"
    assert kubernetes_watch.version_after({"type": "MODIFIED", "object": {}}, "ScalingPolicy", "50") == "50"


def test_410_means_list_again_and_other_errors_break_the_stream() -> None:
    gone = {"type": "ERROR", "object": {"kind": "Status", "code": 410, "message": "too old resource version: 1 (9)"}}
    with pytest.raises(kubernetes_watch.Gone, match="too old"):
        kubernetes_watch.version_after(gone, "Deployment", "1")
    with pytest.raises(ValueError, match="500"):
        kubernetes_watch.version_after({"type": "ERROR", "object": {"code": 500, "reason": "InternalError"}},
                                       "Deployment", "1")
