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
