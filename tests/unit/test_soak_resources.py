"""The soak's memory and socket check compares a replica's steady level with its end, like with
like (docs/reliability.md, run 14: a standby's first sample, 12 sockets and 114 MB, was compared
with the same process leading at its end, 109 sockets and 206 MB, and judged a leak)."""

from __future__ import annotations

from bench import soak


def life(*stretches: tuple[float, bool | None, float, float, int, int]) -> list[soak.Sample]:
    """Samples every 5 s: each stretch (seconds, leading, RSS from, RSS to, sockets from, sockets to)."""
    rows, at = [], 1000.0
    for seconds, leading, rss0, rss1, sockets0, sockets1 in stretches:
        count = int(seconds // 5)
        for i in range(count):
            share = i / max(1, count - 1)
            rows.append(soak.Sample(at, rss0 + (rss1 - rss0) * share, round(sockets0 + (sockets1 - sockets0) * share),
                                    leading))
            at += 5
    return rows


def old_check(rows: list[soak.Sample]) -> list[str]:
    """What the harness judged before: the first sample against the last, whatever the role."""
    first, last = rows[0], rows[-1]
    return [name for name, grew in (("rss", last.rss_mb > 1.5 * first.rss_mb + 20),
                                    ("sockets", last.sockets > 2 * first.sockets + 20)) if grew]


def test_a_standby_that_takes_over_is_not_a_leak() -> None:
    # Run 14's longest-lived replica, in shape: a standby for two minutes, then leading, flat.
    rows = life((120, False, 112, 114, 12, 12), (60, True, 150, 190, 60, 100), (1500, True, 200, 206, 100, 109))
    assert old_check(rows) == ["rss", "sockets"]  # what run 14 reported
    found = soak.resource_growth(rows)
    assert found["violations"] == []
    assert found["led"] and found["span_s"] >= 1400
    assert found["sockets_leading"][0] >= 100 and found["rss_mb"][0] >= 200


def test_a_leader_that_stands_down_keeps_its_pools_and_is_compared_with_standbys_that_led() -> None:
    rows = life((90, False, 112, 114, 12, 12), (300, True, 180, 190, 100, 110), (900, False, 190, 192, 41, 41),
                (300, True, 192, 195, 100, 112), (600, False, 195, 195, 40, 44))
    assert soak.resource_growth(rows)["violations"] == []


def test_sockets_that_grow_while_leading_are_a_leak() -> None:
    rows = life((120, False, 112, 114, 12, 12), (1500, True, 180, 190, 100, 260))
    assert any("open sockets (leading) grew from" in line for line in soak.resource_growth(rows)["violations"])


def test_sockets_that_grow_on_a_standby_are_a_leak() -> None:
    rows = life((1500, False, 112, 115, 12, 60))
    found = soak.resource_growth(rows)
    assert not found["led"]
    assert any("open sockets (standby) grew from 14 to 60" in line for line in found["violations"])


def test_memory_that_grows_after_the_first_term_is_a_leak() -> None:
    rows = life((120, False, 112, 114, 12, 12), (1500, True, 180, 320, 100, 105))
    assert any(line.startswith("RSS grew from") for line in soak.resource_growth(rows)["violations"])


def test_a_term_s_first_minute_and_unknown_roles_do_not_count() -> None:
    # Pools filling in a term's first seconds, and a SIGSTOPped replica (role unknown).
    rows = life((120, False, 112, 114, 12, 12), (55, True, 140, 250, 20, 300), (30, None, 250, 250, 300, 300),
                (1500, True, 260, 262, 100, 104))
    found = soak.resource_growth(rows)
    assert found["violations"] == []
    assert found["rss_mb"][0] == 260 and found["sockets_leading"][0] == 100


def test_a_short_life_is_reported_not_judged() -> None:
    rows = life((60, False, 112, 114, 12, 12), (400, True, 180, 400, 100, 400))
    found = soak.resource_growth(rows)
    assert found["violations"] == [] and found["span_s"] < soak.JUDGED_SPAN
    assert soak.resource_growth([]) == {"span_s": 0, "led": False, "violations": []}


# -- CPU per scaling round, while leading (soak.cpu_per_round) ------------------------------------

IDLE_MS = 4.0  # CPU between two samples besides the rounds (watches, the Lease), leading or not


def rounds(*stretches: tuple[float, bool | None, float, float, int]) -> list[soak.Sample]:
    """Samples every 5 s: each stretch (seconds, leading, CPU ms per round from, to, one round every
    n samples); a leader does its rounds, a standby none; the CPU and round counters accumulate."""
    rows, at, cpu, done = [], 1000.0, 3.0, 0
    for seconds, leading, ms0, ms1, every in stretches:
        count = int(seconds // 5)
        for i in range(count):
            share = i / max(1, count - 1)
            cpu += IDLE_MS / 1000
            if leading and i % every == 0:
                cpu += (ms0 + (ms1 - ms0) * share) / 1000
                done += 1
            rows.append(soak.Sample(at, 150.0, 40, leading, round(cpu, 2), done, 3 * done))
            at += 5
    return rows


def test_cpu_per_round_flat_over_terms_passes() -> None:
    # A standby first, then leading for 15 minutes, a stand-down (its CPU goes on, its rounds stop),
    # and a short last term: the end window takes that term's settled minutes and the first term's end.
    rows = rounds((120, False, 0, 0, 1), (900, True, 30, 30, 1), (600, False, 0, 0, 1), (200, True, 30, 30, 1))
    found = soak.cpu_per_round(rows)
    assert found["judged"] and found["violations"] == []
    assert found["steady"]["rounds"] >= soak.CPU_MIN_ROUNDS and found["end"]["rounds"] >= soak.CPU_MIN_ROUNDS
    assert found["end"]["from"] < 1000 + 120 + 900 < found["end"]["to"]  # both terms, not the standby between
    assert abs(found["steady"]["ms"] - (30 + IDLE_MS)) <= 1 and abs(found["end"]["ms"] - (30 + IDLE_MS)) <= 1
    assert found["steady"]["evaluation_rounds"] == 3 * found["steady"]["rounds"]


def test_cpu_per_round_that_grows_within_the_bound_passes() -> None:
    found = soak.cpu_per_round(rounds((120, False, 0, 0, 1), (1500, True, 30, 45, 1)))
    assert found["judged"] and found["violations"] == []
    assert found["end"]["ms"] > found["steady"]["ms"] + 8


def test_cpu_per_round_that_grows_is_a_violation() -> None:
    found = soak.cpu_per_round(rounds((120, False, 0, 0, 1), (1500, True, 30, 90, 1)))
    assert found["judged"]
    assert [line.split(" ms")[0] for line in found["violations"]] == [
        f"CPU per scaling round rose from {found['steady']['ms']:.1f}"]
    assert found["end"]["ms"] > soak.CPU_BOUND[0] * found["steady"]["ms"] + soak.CPU_BOUND[1]


def test_cpu_per_round_on_too_few_rounds_is_reported_not_judged() -> None:
    # The 240 s soak of `make test`: at most three minutes of settled leading; the windows overlap.
    short = soak.cpu_per_round(rounds((30, False, 0, 0, 1), (210, True, 30, 300, 1)))
    assert not short["judged"] and short["violations"] == []
    assert short["steady"] == short["end"] and short["end"]["ms"] > 100  # the same stretches, reported
    # Long enough, but one round a minute (a few policies with long intervals): 5 a window.
    sparse = soak.cpu_per_round(rounds((120, False, 0, 0, 1), (1500, True, 30, 300, 12)))
    assert not sparse["judged"] and sparse["violations"] == []
    assert 0 < sparse["end"]["rounds"] < soak.CPU_MIN_ROUNDS
    # Rounds enough in each window, but the two windows share them: not judged either.
    shared = soak.cpu_per_round(rounds((60, False, 0, 0, 1), (460, True, 30, 300, 1)))
    assert min(shared["steady"]["rounds"], shared["end"]["rounds"]) >= soak.CPU_MIN_ROUNDS
    assert not shared["judged"] and shared["violations"] == [] and shared["end"]["from"] < shared["steady"]["to"]
    # A replica that never led has no figure at all.
    assert soak.cpu_per_round(rounds((1500, False, 0, 0, 1))) == {"rounds": 0, "judged": False, "violations": []}
    assert soak.cpu_per_round([]) == {"rounds": 0, "judged": False, "violations": []}


def test_unknown_reads_and_a_term_s_first_minute_are_skipped() -> None:
    import dataclasses

    rows = rounds((120, False, 0, 0, 1), (50, True, 400, 400, 1), (1500, True, 30, 30, 1))
    plain = soak.cpu_per_round(rows)
    # Reads that failed: the CPU time, the round counter, the role (SIGSTOPped, /metrics silent).
    holes = [dataclasses.replace(row, cpu_s=None) if i % 7 == 3 else
             dataclasses.replace(row, scaling_rounds=None) if i % 11 == 5 else
             dataclasses.replace(row, leading=None) if i == 200 else row for i, row in enumerate(rows)]
    found = soak.cpu_per_round(holes)
    assert found["judged"] and found["violations"] == []
    assert abs(plain["steady"]["ms"] - (30 + IDLE_MS)) <= 1  # the term's first minute (400 ms a round) is not in it
    assert abs(found["steady"]["ms"] - (30 + IDLE_MS)) <= 1 and abs(found["end"]["ms"] - (30 + IDLE_MS)) <= 1
    assert found["rounds"] < plain["rounds"]  # the stretches beside a failed read are left out, not guessed
