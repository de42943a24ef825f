"""The token budget and the server's word on waiting (core/ratelimit.py), and the limiter that
applies them to every Railway request of a token (adapters/railway.py)."""

from __future__ import annotations

import asyncio
import email.utils

import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from controller.adapters import railway
from controller.core import ratelimit


def test_a_burst_then_the_refill_rate() -> None:
    bucket = ratelimit.full(capacity=2, per_second=1, now=0)
    bucket, wait = ratelimit.take(bucket, 0)
    bucket, wait2 = ratelimit.take(bucket, 0)
    bucket, wait3 = ratelimit.take(bucket, 0)
    assert (wait, wait2) == (0, 0) and wait3 == pytest.approx(1.0)
    bucket, wait4 = ratelimit.take(bucket, 0.5)
    assert wait4 == pytest.approx(0.5), "half refilled"
    _, wait5 = ratelimit.take(bucket, 1.0)
    assert wait5 == 0


def test_a_pause_from_the_server_holds_every_request_until_it_ends() -> None:
    bucket = ratelimit.block(ratelimit.full(10, 10, 0), now=0, seconds=2)
    bucket, wait = ratelimit.take(bucket, 1)
    assert wait == pytest.approx(1.0)
    _, wait = ratelimit.take(bucket, 2.0)
    assert wait == 0


@pytest.mark.parametrize("status,headers,expected", [
    (429, {"Retry-After": "2"}, 2.0),
    (429, {"Retry-After": email.utils.formatdate(1_000_030, usegmt=True)}, 30.0),
    (429, {}, 1.0),
    (429, {"Retry-After": "soon"}, 1.0),
    (429, {"Retry-After": "1e12"}, ratelimit.MAX_WAIT_SECONDS),
    (429, {"Retry-After": "-5"}, 0.0),
    (200, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1000010"}, 10.0),
    (200, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "7"}, 7.0),
    (200, {"X-RateLimit-Remaining": "3", "X-RateLimit-Reset": "1000010"}, None),
    (200, {"Retry-After": "5"}, None),
    (503, {"Retry-After": "nan"}, None),
])
def test_server_wait(status: int, headers: dict, expected: float | None) -> None:
    assert ratelimit.server_wait(status, headers, now_epoch=1_000_000) == expected


def test_the_limiter_refuses_rather_than_exceeds_and_never_keys_by_the_token() -> None:
    clock = [0.0]
    limiter = railway.RateLimiter(per_second=1, burst=2, clock=lambda: clock[0], wall=lambda: 1_000_000.0)
    key = railway.RateLimiter.key("secret-token")
    assert "secret" not in key

    async def scenario() -> None:
        await limiter.acquire(key)
        await limiter.acquire(key)
        limiter.note(key, 429, {"Retry-After": "5"})
        with pytest.raises(railway.RailwayRateLimited, match="next request in 5 s"):
            await limiter.acquire(key)
        assert limiter.limited_for(key) == pytest.approx(5.0)
        clock[0] = 6.0
        await limiter.acquire(key)  # the pause is over and the bucket has refilled

    asyncio.run(scenario())


# -- bounded state: idle buckets are forgotten, and forgetting one changes nothing -------------

ops = st.lists(st.tuples(st.floats(0, 30), st.sampled_from(["take", "block"]), st.floats(0, 20)), max_size=30)


@settings(max_examples=300, deadline=None)
@given(st.floats(1, 20), st.floats(0.1, 10), ops, st.floats(0, 100), ops)
def test_an_idle_bucket_acts_as_a_new_one(capacity: float, rate: float, before: list, gap: float, after: list) -> None:
    """Whatever happened before, once `idle` says so a new full bucket gives the same answers
    for every later request and pause: pruning it is invisible."""
    bucket, now = ratelimit.full(capacity, rate, 0.0), 0.0
    for step, op, seconds in before:
        now += step
        bucket = ratelimit.take(bucket, now)[0] if op == "take" else ratelimit.block(bucket, now, seconds)
    now += gap
    if not ratelimit.idle(bucket, now):
        return
    fresh = ratelimit.full(capacity, rate, now)
    for step, op, seconds in after:
        now += step
        if op == "take":
            (bucket, wait), (fresh, wait_fresh) = ratelimit.take(bucket, now), ratelimit.take(fresh, now)
            assert wait == pytest.approx(wait_fresh, abs=1e-6)
        else:
            bucket, fresh = ratelimit.block(bucket, now, seconds), ratelimit.block(fresh, now, seconds)


def test_a_paused_or_spent_bucket_is_not_idle() -> None:
    spent = ratelimit.take(ratelimit.full(2, 1, 0), 0)[0]
    assert not ratelimit.idle(spent, 0.5) and ratelimit.idle(spent, 1.0)
    paused = ratelimit.block(ratelimit.full(2, 100, 0), 0, 30)
    assert not ratelimit.idle(paused, 29) and ratelimit.idle(paused, 30)


def test_the_limiters_buckets_return_to_none_once_tokens_go_idle() -> None:
    now = [0.0]
    limiter = railway.RateLimiter(per_second=5, burst=10, clock=lambda: now[0], wall=lambda: 1e9)

    async def use(keys: list[str]) -> None:
        for key in keys:
            await limiter.acquire(key)

    asyncio.run(use([f"token-{index}" for index in range(500)]))
    limiter.note("paused", 429, {"Retry-After": "600"})
    assert len(limiter._buckets) == 501
    now[0] += limiter.PRUNE_SECONDS
    asyncio.run(use(["another"]))  # any request prunes, at most once a minute
    assert set(limiter._buckets) == {"paused", "another"}, "idle tokens forgotten; a pause is kept"
    assert limiter.limited_for("paused") > 0
    now[0] += 600
    limiter.prune()
    assert len(limiter._buckets) == 0
