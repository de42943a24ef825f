"""Benchmark: what the per-tenant error boundary and the one number constructor cost (issue 21).
No cluster.

- a pass over N tenants (a dict read each, as the loops that run every second do) bare, in
  `try` / `except Exception: boundary.failed(...)`, and in `with boundary.tenant(...)`: why
  the operator's loops use the `try` form,
- `prometheus.parse` of an answer of N series (every sample's time and value built by
  core/numbers, inside the parse's boundary) against the same parse with plain float(),
- numbers.finite against float() for one JSON number.

`python -m bench.boundary [--tenants 10000] [--series 10000]`; prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import timeit
import typing

from controller.adapters import boundary
from controller.adapters import prometheus
from controller.core import numbers
from controller.core import queries


def best(function: typing.Callable[[], object], number: int, repeat: int = 7) -> float:
    """Seconds per call, the best of `repeat` runs (the least disturbed by the machine)."""
    return min(timeit.repeat(function, number=number, repeat=repeat)) / number


def loops(tenants: int) -> list[tuple[str, float]]:
    keys = [("ScalingPolicy", "ns", f"p{index}") for index in range(tenants)]
    due = dict.fromkeys(keys, 1.0)

    def bare() -> None:
        for key in keys:
            if due.get(key, 0.0) > 5:
                continue

    def tried() -> None:
        for key in keys:
            try:
                if due.get(key, 0.0) > 5:
                    continue
            except Exception as failure:
                boundary.failed(failure, "scaling", key)

    def with_() -> None:
        for key in keys:
            with boundary.tenant("scaling", key):
                if due.get(key, 0.0) > 5:
                    continue

    return [(f"pass over {tenants:,} tenants: bare", best(bare, 10)),
            (f"pass over {tenants:,} tenants: try / boundary.failed", best(tried, 10)),
            (f"pass over {tenants:,} tenants: with boundary.tenant", best(with_, 10))]


def _plain_parse(body: bytes) -> queries.QueryResult:
    """The parse as it was before core/numbers (float() of both halves), for comparison."""
    series = []
    for item in json.loads(body)["data"]["result"]:
        timestamp, value = float(item["value"][0]), float(item["value"][1])
        series.append(queries.Series({str(k): str(v) for k, v in item["metric"].items()}, value, timestamp))
    return queries.QueryResult(series=tuple(series))


def parses(series: int) -> list[tuple[str, float]]:
    body = json.dumps({"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": {"namespace": f"ns{index}", "workload": "web"}, "value": [1764990000.123, f"{index * 1.5}"]}
        for index in range(series)]}}).encode()
    return [(f"parse of {series:,} series: float()", best(lambda: _plain_parse(body), 5)),
            (f"parse of {series:,} series: prometheus.parse (core/numbers, boundary)",
             best(lambda: prometheus.parse(200, body), 5))]


def conversions() -> list[tuple[str, float]]:
    return [("one value: float('12.5')", best(lambda: float("12.5"), 200000)),
            ("one value: numbers.finite('12.5')", best(lambda: numbers.finite("12.5"), 200000))]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=10000)
    parser.add_argument("--series", type=int, default=10000)
    args = parser.parse_args(argv)
    print("| measurement | time |\n|---|---|")
    for name, seconds in loops(args.tenants) + parses(args.series) + conversions():
        shown = f"{seconds * 1e3:.2f} ms" if seconds >= 1e-4 else f"{seconds * 1e9:.0f} ns"
        print(f"| {name} | {shown} |")


if __name__ == "__main__":
    main()
