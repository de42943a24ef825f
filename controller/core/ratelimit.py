"""A request budget per API token (a token bucket) and the server's own word on waiting
(429 with Retry-After, X-RateLimit-Remaining/Reset). Pure: times are passed in, seconds on a
monotonic clock for the bucket and Unix seconds for the server's dates."""

from __future__ import annotations

import dataclasses
import email.utils
import typing

MAX_WAIT_SECONDS = 3600.0  # whatever a server says, waiting is capped (and a garbage header ignored)


@dataclasses.dataclass(frozen=True)
class Bucket:
    capacity: float  # a burst of this many requests
    per_second: float  # refilled at this rate
    level: float
    at: float
    blocked_until: float = 0.0


def full(capacity: float, per_second: float, now: float) -> Bucket:
    return Bucket(capacity, per_second, capacity, now)


def take(bucket: Bucket, now: float) -> tuple[Bucket, float]:
    """Spend one request: (the bucket after, 0.0) when one may be sent now; otherwise the bucket
    unspent and the seconds until one may."""
    level = min(bucket.capacity, bucket.level + max(0.0, now - bucket.at) * bucket.per_second)
    refilled = dataclasses.replace(bucket, level=level, at=now)
    if now < bucket.blocked_until:
        return refilled, bucket.blocked_until - now
    if level >= 1.0:
        return dataclasses.replace(refilled, level=level - 1.0), 0.0
    return refilled, (1.0 - level) / bucket.per_second


def idle(bucket: Bucket, now: float) -> bool:
    """Refilled to its burst and not paused: such a bucket acts exactly as a new `full` one
    would from now on, so forgetting it loses nothing (how per-token state stays bounded)."""
    level = bucket.level + max(0.0, now - bucket.at) * bucket.per_second
    return now >= bucket.blocked_until and level >= bucket.capacity


def block(bucket: Bucket, now: float, seconds: float) -> Bucket:
    """The server asked for a pause: nothing is sent before it ends, and the burst is spent."""
    return dataclasses.replace(bucket, blocked_until=max(bucket.blocked_until, now + seconds), level=0.0, at=now)


def _seconds(value: str, now_epoch: float) -> float | None:
    text = value.strip()
    try:
        number = float(text)
    except ValueError:
        try:
            moment = email.utils.parsedate_to_datetime(text)  # Retry-After as an HTTP-date
        except (TypeError, ValueError, IndexError):
            return None
        return moment.timestamp() - now_epoch
    if number != number or number in (float("inf"), float("-inf")):
        return None
    return number


def server_wait(status: int, headers: typing.Mapping[str, str], now_epoch: float) -> float | None:
    """Seconds the server asks the client to wait before its next request, or None.

    Retry-After (delta-seconds or an HTTP-date) on a 429 or 503; else, on any answer,
    X-RateLimit-Remaining 0 with X-RateLimit-Reset (Unix seconds, or seconds from now when it
    is too small to be a date). A 429 without either still waits a second."""
    wait: float | None = None
    if status in (429, 503) and "Retry-After" in headers:
        wait = _seconds(headers["Retry-After"], now_epoch)
    if wait is None and _seconds(headers.get("X-RateLimit-Remaining", ""), now_epoch) == 0:
        reset = _seconds(headers.get("X-RateLimit-Reset", ""), now_epoch)
        if reset is not None:
            wait = reset - now_epoch if reset > now_epoch / 2 else reset  # a date, or seconds from now
    if wait is None and status == 429:
        wait = 1.0
    return None if wait is None else min(max(wait, 0.0), MAX_WAIT_SECONDS)
