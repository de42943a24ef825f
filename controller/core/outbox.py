"""The delivery log in AlertPolicy status doubles as an outbox: pure.

A notification is written as Pending before it is sent and marked Sent after, so a restart
re-sends what may not have gone out (at least once; receivers get a stable idempotency key)
and never re-decides what was already queued (same key). Pending entries are kept up to
PENDING_LIMIT; beyond it the oldest are given up, said so in their message.
"""

from __future__ import annotations

import datetime
import typing

from controller.api import alertpolicy as api
from controller.core import alerting
from controller.core import timestamps

LIMIT = 50  # done deliveries kept
PENDING_LIMIT = 150  # with LIMIT, the schema's 200: the outbox always fits status
MAX_ATTEMPTS = 5
OVERFLOW = f"dropped: more than {PENDING_LIMIT} notifications pending at once (the outbox is full)"
SENT, FAILED, PENDING = (outcome.value for outcome in api.DeliveryOutcome)


def enqueue(deliveries: typing.Sequence[typing.Mapping[str, typing.Any]],
            notifications: typing.Iterable[alerting.Notification], now: datetime.datetime) -> list[dict[str, typing.Any]]:
    known = {d.get("key") for d in deliveries}
    fresh = [n for n in notifications if n.key not in known]
    # Only the newest PENDING_LIMIT + LIMIT can survive `trim` (it walks newest first: past
    # PENDING_LIMIT pending the rest are given up, and only LIMIT of those are kept): the rest
    # are never built (an incident of 144,000 notifications cost 3.5 s of the event loop).
    fresh = fresh[-(PENDING_LIMIT + LIMIT):]
    queued = [{"time": timestamps.to_status(now), "channel": n.channel, "alert": f"{n.rule}/{n.service}",
               "kind": n.kind, "outcome": PENDING, "attempt": 1, "key": n.key, "severity": n.severity,
               "summary": n.summary[:1024], "firedAt": timestamps.to_status(n.fired_at),
               **({"group": n.group[:1024], "alerts": list(n.alerts[:100])} if n.group else {})}
              for n in fresh]
    return trim([*reversed(queued), *map(dict, deliveries)])


def due(deliveries: typing.Sequence[typing.Mapping[str, typing.Any]], now: datetime.datetime,
        retry_base_seconds: float = 5.0) -> list[dict[str, typing.Any]]:
    """Pending deliveries whose (back-off) time has come, oldest first. Of one alert's (or one
    group's) deliveries to one channel only the oldest Pending one is due: a resolution decided
    while its firing waits for a retry (or is still in flight) goes after it, never before."""
    ready, ahead = [], set()
    for delivery in reversed(deliveries):  # oldest first: the log is kept newest first
        if delivery.get("outcome") != PENDING:
            continue
        stream = (delivery.get("channel"), delivery.get("group") or delivery.get("alert"))
        if stream in ahead:
            continue  # an older notice of the same alert to the same channel goes first
        ahead.add(stream)
        attempt = int(delivery.get("attempt") or 1)
        wait = 0.0 if attempt <= 1 and not delivery.get("message") else retry_base_seconds * 2 ** (attempt - 1)
        # A first attempt waits for nothing, whoever's clock stamped it (one ahead of this
        # replica's held a predecessor's firing until this clock reached its stamp).
        if wait == 0.0 or (now - timestamps.from_status(delivery["time"])).total_seconds() >= wait:
            ready.append(dict(delivery))
    return ready


def complete(deliveries: typing.Sequence[typing.Mapping[str, typing.Any]], key: str, error: str | None,
             now: datetime.datetime) -> list[dict[str, typing.Any]]:
    """The log after one attempt of `key`: Sent, Pending again (later attempt) or Failed."""
    updated = []
    for delivery in deliveries:
        entry = dict(delivery)
        if entry.get("key") == key and entry.get("outcome") == PENDING:
            entry["time"] = timestamps.to_status(now)
            if error is None:
                entry["outcome"] = SENT
                entry.pop("message", None)
            else:
                entry["message"] = error[:1024]
                if int(entry.get("attempt") or 1) >= MAX_ATTEMPTS:
                    entry["outcome"] = FAILED
                else:
                    entry["attempt"] = int(entry.get("attempt") or 1) + 1
        updated.append(entry)
    return trim(updated)


def trim(deliveries: list[dict[str, typing.Any]]) -> list[dict[str, typing.Any]]:
    """Newest first: every pending delivery up to PENDING_LIMIT, then the last LIMIT done.

    In an incident large enough to overflow the outbox, the oldest pending deliveries (those
    retrying longest) are given up as Failed with a reason, so that new ones still go out
    and the status write is never refused."""
    kept, done, pending = [], 0, 0
    for delivery in deliveries:
        if delivery.get("outcome") == PENDING:
            pending += 1
            if pending > PENDING_LIMIT:
                delivery = {**delivery, "outcome": FAILED, "message": OVERFLOW}
            else:
                kept.append(delivery)
                continue
        if done < LIMIT:
            kept.append(delivery)
            done += 1
    return kept


def last_sent(deliveries: typing.Sequence[typing.Mapping[str, typing.Any]]) -> str | None:
    times = [d["time"] for d in deliveries if d.get("outcome") == SENT]
    return max(times) if times else None
