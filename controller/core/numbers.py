"""Numbers from outside, through one constructor: finite and in range, or a NumberError. Pure.

Every number an adapter takes from a tenant's answer or object (a Prometheus sample, a
Railway measurement, a revision annotation, a status value read back) is built here and
nowhere else. Python's own conversions each fail in their own way — `float(10**400)` and
`math.isfinite(10**400)` raise OverflowError, `float("nan")` succeeds, `int("①")` raises
ValueError while `"①".isdigit()` is True, `datetime.fromtimestamp(1e20)` raises
OverflowError or ValueError or OSError by platform — and each of those once escaped a
per-source guard and stopped a round for every tenant. Here every failure is one typed
error (NumberError, a ValueError), so a caller needs one `except` and cannot miss a kind.
"""

from __future__ import annotations

import datetime
import math
import re
import sys
import typing

MAX = sys.float_info.max
# Seconds since the epoch that datetime can hold (up to 9999-12-31T23:59:59Z).
MAX_EPOCH = 253402300799.0
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
_DECIMAL = re.compile(r"[+-]?[0-9]{1,30}")  # ASCII digits only: "①②" and "١٢" are not numbers here
_TEXT_LIMIT = 64  # a longer text is no number an exporter sends (and float() of 10^6 digits is slow)


class NumberError(ValueError):
    """Not a number, or not finite, or out of range. The text never quotes the value."""


def _float(value: object, what: str) -> float:
    """`value` (JSON's int, float or a numeric text) as a float, which may be ±Inf or NaN.
    Exact types first: this runs twice per series of a 200,000-series answer."""
    kind = type(value)
    if kind is float:
        return typing.cast(float, value)
    if kind is str:
        text = typing.cast(str, value)
        if len(text) > _TEXT_LIMIT:
            raise NumberError(f"{what} is not a number")
        try:
            return float(text)  # "NaN", "+Inf", "-Inf", "1e400" parse; the callers judge them
        except ValueError:
            raise NumberError(f"{what} is not a number") from None
    if kind is int:
        number = typing.cast(int, value)
        # An int past float's range (JSON has no limit on digits) is "too large", not a crash.
        if -MAX <= number <= MAX:
            return float(number)
        return math.inf if number > 0 else -math.inf  # (copysign would convert it, and overflow)
    raise NumberError(f"{what} is not a number")  # bool, None, lists, maps, subclasses


def finite(value: object, lo: float = -MAX, hi: float = MAX, what: str = "value") -> float:
    """`value` as a float in [lo, hi]; NaN, ±Inf, huge ints, bools and non-numbers raise NumberError."""
    number = _float(value, what)
    if lo <= number <= hi and -MAX <= number <= MAX:  # NaN fails every comparison, ±Inf the second
        return number
    if math.isnan(number):
        raise NumberError(f"{what} is NaN")
    if math.isinf(number):
        raise NumberError(f"{what} is not finite")
    raise NumberError(f"{what} is out of range [{lo:g}, {hi:g}]")


def finite_or_none(value: object, lo: float = -MAX, hi: float = MAX) -> float | None:
    """As `finite`, with None for anything it refuses (where a bad value reads as absent)."""
    try:
        return finite(value, lo, hi)
    except NumberError:
        return None


def reading(value: object, what: str = "value") -> float:
    """A measured value as Prometheus means it: a finite number, or ±Inf (a quantile past the
    top bucket during an outage is +Inf: a real "above everything", kept for comparisons).
    NaN is "no data" and raises NumberError, as anything that is not a number does."""
    number = _float(value, what)
    if math.isnan(number):
        raise NumberError(f"{what} is NaN (no data)")
    return number


def sample(value: object, what: str = "value") -> float:
    """A sample value exactly as Prometheus writes one: a number, ±Inf, or NaN (its "no data",
    which the caller must turn into an error at once, see adapters/source_prometheus.py);
    anything else raises NumberError. One conversion per value (a parse of 200,000 series)."""
    return _float(value, what)


def is_nan(value: object) -> bool:
    """Whether `value` is NaN as a number or as text ("NaN"): Prometheus' "no data"."""
    try:
        return math.isnan(_float(value, "value"))
    except NumberError:
        return False


def integer(value: object, lo: int, hi: int, what: str = "value") -> int:
    """An int in [lo, hi] from JSON's int or an ASCII decimal text (an annotation); a float,
    a bool, Unicode digits or anything else raises NumberError."""
    if isinstance(value, bool):
        raise NumberError(f"{what} is not an integer")
    if isinstance(value, str):
        text = value.strip()
        if not _DECIMAL.fullmatch(text):
            raise NumberError(f"{what} is not an integer")
        number = int(text)
    elif isinstance(value, int):
        number = value
    else:
        raise NumberError(f"{what} is not an integer")
    if not lo <= number <= hi:
        raise NumberError(f"{what} is out of range [{lo}, {hi}]")
    return number


def epoch(value: object, what: str = "timestamp") -> datetime.datetime:
    """Seconds since the epoch (int, float or text) as an aware UTC datetime; a time datetime
    cannot hold (negative, past year 9999, non-finite) raises NumberError. Arithmetic, not
    `fromtimestamp`, so the outcome does not depend on the platform's C library."""
    return EPOCH + datetime.timedelta(seconds=finite(value, 0.0, MAX_EPOCH, what))


def shown(value: float | None) -> float | None:
    """A value as status may carry it: finite, or None (JSON has no NaN or Infinity, and the
    API server refuses a patch that spells them)."""
    return value if value is not None and math.isfinite(value) else None
