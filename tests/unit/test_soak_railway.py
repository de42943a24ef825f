"""The soak's Railway record (docs/reliability.md §17): a Railway service's replica change is
timed by the local Railway's own stamp (run 14's harness loop saw soak-7-1's step of ~103 s at
109.5 s, and counted it 3.1 s before the next one), and a scale whose answer was partial must
not be sent again, the same count to the same service, within the step's period."""

from __future__ import annotations

import types

from bench import soak

BEGAN = 1_800_000_000.0


def harness(requests: list[dict] | None = None, changes: list[tuple[float, str, int, int]] | None = None) -> soak.Soak:
    run = soak.Soak.__new__(soak.Soak)
    run.began = BEGAN
    run.namespaces = ["soak-7-1"]
    run.railway_keys = [("soak-7-1", soak.RAILWAY_NAME)]
    run.railway_seen = 0
    run.railway = types.SimpleNamespace(requests=requests or [], changes=changes or [],  # type: ignore[assignment]
                                        services={"svc-soak-7-1": types.SimpleNamespace(replicas=6)})
    run.history = types.SimpleNamespace(changes=[], replicas={})  # type: ignore[assignment]
    return run


def scale(at: float, replicas: int, answer: str = "ok") -> dict:
    return {"at": BEGAN + at, "agent": "capliquify-operator (vm_1)", "operation": "CapliquifySetReplicas",
            "mutation": True, "service": "svc-soak-7-1", "replicas": replicas, "answer": answer}


def test_a_railway_change_is_timed_by_the_local_railway_not_by_when_the_loop_saw_it() -> None:
    run = harness(changes=[(BEGAN + 103.2, "svc-soak-7-1", 4, 5), (BEGAN + 112.4, "svc-soak-7-1", 5, 6)])
    run.railway_history()  # the loop comes by at 112.6 s: both at once
    run.railway_history()  # and again: nothing taken twice
    assert run.history.changes == [(BEGAN + 103.2, ("soak-7-1", "rw"), 4, 5), (BEGAN + 112.4, ("soak-7-1", "rw"), 5, 6)]
    assert run.history.replicas == {("soak-7-1", "rw"): 6}


def test_a_partial_answer_to_a_scale_sent_again_within_the_period_is_a_double_write() -> None:
    run = harness([scale(100.0, 5, "cut-body"), scale(104.0, 5)])
    found = run.check_railway_writes()
    assert len(found) == 1 and "answered cut-body at 100.0s and sent again at [104.0]s" in found[0], found


def test_a_scale_sent_again_after_the_period_or_refused_or_whole_is_not() -> None:
    assert harness([scale(100.0, 5, "cut-body"), scale(110.0, 5)]).check_railway_writes() == []
    assert harness([scale(100.0, 5, "null-data"), scale(102.0, 5, "429")]).check_railway_writes() == []
    assert harness([scale(100.0, 5, "null-data"), scale(102.0, 4)]).check_railway_writes() == []  # the other way
    assert harness([scale(100.0, 5), scale(102.0, 5)]).check_railway_writes() == []  # whole: the step check's
