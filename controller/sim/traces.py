"""Load traces (requests/s over time): built-in shapes of real load, or any CSV.

Built-ins are deterministic (seeded noise) and scale with `peak`, so the same shape can be
run at any capacity per replica. CSV: a header `t,load` (seconds, requests/s), optionally
gzip-compressed (`.csv.gz`: the real traces in bench/traces/); the load between two rows is
interpolated linearly and holds after the last one. `window` cuts a part of a trace.
"""

from __future__ import annotations

import bisect
import csv
import dataclasses
import gzip
import math
import pathlib
import random
import typing


@dataclasses.dataclass(frozen=True)
class Trace:
    name: str
    duration: int  # seconds
    load: typing.Callable[[int], float]
    description: str


def _noise(seed: int, period: int, amplitude: float, duration: int) -> typing.Callable[[int], float]:
    """Multiplicative noise, a fresh uniform draw every `period` seconds, held in between."""
    generator = random.Random(seed)
    draws = [1 + generator.uniform(-amplitude, amplitude) for _ in range(duration // period + 2)]
    return lambda t: draws[t // period]


def step(peak: float = 600.0) -> Trace:
    low = peak / 6
    return Trace("step", 2 * 3600, lambda t: peak if 1800 <= t < 5400 else low,
                 f"{low:g} → {peak:g} req/s at 30 min, back at 90 min")


def diurnal(peak: float = 500.0) -> Trace:
    low = peak / 10
    return Trace("diurnal", 24 * 3600,
                 lambda t: low + (peak - low) * (1 - math.cos(2 * math.pi * t / 86400)) / 2,
                 f"a day: sine {low:g}–{peak:g} req/s, trough at midnight")


def flash_crowd(peak: float = 720.0) -> Trace:
    base = peak / 6

    def load(t: int) -> float:
        if t < 1200:
            return base
        if t < 1260:  # a link goes viral: ×6 within a minute
            return base + (peak - base) * (t - 1200) / 60
        if t < 1800:
            return peak
        return base + (peak - base) * math.exp(-(t - 1800) / 600)  # interest decays over ~10 min
    return Trace("flash-crowd", 2 * 3600, load, f"{base:g} req/s, ×6 within 60 s at 20 min, decays from 30 min")


def sawtooth(peak: float = 500.0) -> Trace:
    low = peak / 5
    return Trace("sawtooth", 3 * 3600, lambda t: low + (peak - low) * ((t % 1800) / 1800),
                 f"batch cycles: {low:g} → {peak:g} req/s over 30 min, then a drop")


def noisy_flat(level: float = 300.0) -> Trace:
    noise = _noise(7, 10, 0.25, 4 * 3600)
    return Trace("noisy-flat", 4 * 3600, lambda t: level * noise(t), f"{level:g} req/s ± 25 % (a new draw every 10 s)")


def slow_ramp(peak: float = 800.0) -> Trace:
    low = peak / 16
    return Trace("slow-ramp", 4 * 3600, lambda t: low + (peak - low) * min(1.0, t / (3 * 3600)),
                 f"{low:g} → {peak:g} req/s over 3 h, then flat")


BUILT_IN: dict[str, typing.Callable[..., Trace]] = {
    "step": step, "diurnal": diurnal, "flash-crowd": flash_crowd,
    "sawtooth": sawtooth, "noisy-flat": noisy_flat, "slow-ramp": slow_ramp,
}


def built_in(name: str, scale: float = 1.0) -> Trace:
    """A built-in trace; `scale` multiplies its load (for other capacities per replica)."""
    trace = BUILT_IN[name]()
    return dataclasses.replace(trace, load=lambda t: scale * trace.load(t),
                               description=trace.description + (f" (×{scale:g})" if scale != 1 else ""))


def from_csv(path: pathlib.Path) -> Trace:
    times: list[float] = []
    loads: list[float] = []
    opened = gzip.open(path, "rt", newline="") if path.name.endswith(".gz") else path.open(newline="")
    with opened as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or not {"t", "load"} <= set(reader.fieldnames):
            raise ValueError("a trace CSV needs the header t,load (seconds, requests/s)")
        for number, row in enumerate(reader, start=2):
            try:
                at, load = float(row["t"]), float(row["load"])
            except (TypeError, ValueError):
                raise ValueError(f"line {number}: t and load must be numbers") from None
            if not (math.isfinite(at) and math.isfinite(load)) or load < 0 or (times and at <= times[-1]):
                raise ValueError(f"line {number}: times must increase and loads be finite and >= 0")
            times.append(at)
            loads.append(load)
    if not times:
        raise ValueError("the trace has no rows")

    def load_at(t: int) -> float:
        index = bisect.bisect_right(times, t)
        if index == 0:
            return loads[0]
        if index == len(times):
            return loads[-1]
        t0, t1 = times[index - 1], times[index]
        return loads[index - 1] + (loads[index] - loads[index - 1]) * (t - t0) / (t1 - t0)
    name = path.name.removesuffix(".gz").removesuffix(".csv")
    return Trace(name, int(math.ceil(times[-1])) + 1, load_at, f"{path.name}: {len(times)} points")


def window(trace: Trace, start: int, duration: int, name: str) -> Trace:
    """`duration` seconds of `trace` from `start`, as a trace of its own starting at 0."""
    if start < 0 or duration <= 0 or start + duration > trace.duration:
        raise ValueError(f"window {start}+{duration}s lies outside {trace.name} ({trace.duration}s)")
    return Trace(name, duration, lambda t: trace.load(start + t),
                 f"{trace.name} from {start}s for {duration}s")
