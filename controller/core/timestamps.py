"""Time as written to and read from objects and receivers: the one codec.

`to_status`: RFC 3339 in UTC to the second with `Z` (metav1.Time: status times, conditions,
Events, receivers' bodies, Railway's query window). `to_micro`: the same to the microsecond
(metav1.MicroTime: a Lease's times). `from_status`: RFC 3339 / ISO 8601 with `Z` or an offset,
with or without fractions (`t` and `z` as RFC 3339 allows); a time without an offset is taken as UTC (every time the API server
writes is UTC), so what comes back can always be compared with `now`. `or_none`: the same for
a value read from an object that may be absent or malformed (status is read, never trusted).

A test (tests/unit/test_timestamps.py) fails on a format or parse written by hand elsewhere.
"""

from __future__ import annotations

import datetime
import typing

STATUS_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
MICRO_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def to_status(moment: datetime.datetime) -> str:
    """`2026-12-06T04:37:02Z`: in UTC, to the second."""
    return moment.astimezone(datetime.timezone.utc).strftime(STATUS_FORMAT)


def to_micro(moment: datetime.datetime) -> str:
    """`2026-12-06T04:37:02.123456Z`: in UTC, to the microsecond."""
    return moment.astimezone(datetime.timezone.utc).strftime(MICRO_FORMAT)


def from_status(text: str | datetime.datetime) -> datetime.datetime:
    """The time `text` spells (a datetime comes back as it is, naive ones in UTC); ValueError
    when it spells none."""
    moment = text if isinstance(text, datetime.datetime) else datetime.datetime.fromisoformat(text.strip().upper())
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=datetime.timezone.utc)


def or_none(value: typing.Any) -> datetime.datetime | None:
    """`from_status` for a value read from an object: None when it is absent, empty, not a
    string or no time."""
    if isinstance(value, datetime.datetime):
        return from_status(value)
    if not isinstance(value, str) or not value:
        return None
    try:
        return from_status(value)
    except ValueError:
        return None
