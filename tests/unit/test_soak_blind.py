"""What the soak expects to be notified: an error episode the operator could see for SEEN_FOR
seconds outside every blind window (docs/reliability.md, "15. the missed notifications of run 14,
examined"). A replica that stood down and leads again starts a new term as a new leader does
(its acting loops and their memory were dropped): run 14 counted 49 episodes that began in such
a term's first seconds as missed, because the audit log showed no change of holder."""

from __future__ import annotations

import time
import types

from bench import soak

BEGAN = 1_796_535_038.0


def stamp(epoch: float) -> str:
    """A log line's asctime for `epoch` (the machine's local time, milliseconds after a comma)."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch)) + f",{int(round(epoch % 1 * 1000)):03d}"


def run(log_text: str, lease_writes: list[tuple[float, str]]) -> soak.Soak:
    """A finished run's state as check_notifications reads it: one replica, its log and the
    Lease writes of the audit log; no restart, no Prometheus outage, no pause."""
    found = soak.Soak.__new__(soak.Soak)
    found.began = BEGAN
    found.control_plane_down, found.no_data, found.leader_down = [], [], []
    found.lease_writes = lease_writes
    found.all_replicas = [types.SimpleNamespace(log=lambda: log_text)]
    return found


def renewals(start: float, end: float, who: str = "vm_a") -> list[tuple[float, str]]:
    return [(BEGAN + at, who) for at in range(int(start), int(end))]


# vm_a leads from the start, its renewals stop at 95 s (it stood down: the renew deadline passed)
# and it leads again at 101 s: the same holder in the audit log, a new term by its log.
LAPSE = renewals(-5, 96) + renewals(101, 400)
LOG = "\n".join([
    f"{stamp(BEGAN - 5)} INFO controller.operator.election: became the leader (acquire)",
    f"{stamp(BEGAN + 99.2)} ERROR controller.operator.election: lost the Lease (no renewal within 4.0s): "
    "stopping acting, staying on as a standby",
    f"{stamp(BEGAN + 101.0)} INFO controller.operator.election: became the leader (renew)",
    f"{stamp(BEGAN + 101.5)} WARNING controller.adapters.kubernetes_watch: watch of AlertPolicy broke",
]) + "\n"


def test_term_starts_are_read_from_the_elector_lines_to_the_millisecond() -> None:
    assert [round(at - BEGAN, 3) for at in soak.term_starts(LOG)] == [-5.0, 101.0]
    assert soak.term_starts("2026-12-06 05:33:15,275 INFO controller.operator.loop: became the leader (renew)\n") == []


def test_a_new_term_of_the_same_replica_starts_blind_for_the_takeover_lag() -> None:
    windows = run(LOG, LAPSE).blind()
    assert (BEGAN + 101.0, BEGAN + 101.0 + soak.TAKEOVER_LAG, "a new term of the same replica") in windows
    # The audit log alone shows the lapse and no change of holder (what run 14 counted from).
    assert not [w for w in run("", LAPSE).blind() if w[2] != "no leader" and w[0] > BEGAN + 50]


def test_an_episode_inside_a_new_terms_first_seconds_is_not_expected() -> None:
    # 99-101 s no leader (the renew deadline, 4 s, after the write at 95 s), 101-111 s the new
    # term starting: the episode's longest stretch in view is 111-122 s, under SEEN_FOR.
    episode = soak.Episode(("soak-7-1", "w5"), 90.0, 122.0)
    found = run(LOG, LAPSE)
    assert found.seen_for(episode, found.blind()) < soak.SEEN_FOR
    # Without the term start (the replica had not stood down) it was in view for 21 s: expected.
    unchanged = run("", LAPSE)
    assert unchanged.seen_for(episode, unchanged.blind()) >= soak.SEEN_FOR
