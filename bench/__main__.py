"""Benchmark: the operator at 100, 1,000, 5,000 and 10,000 ScalingPolicies against the local
control plane and a real Prometheus (start-up, steady rounds, a warm standby, a restart and
failover: bench/scaling.py), health checks at scale (bench/health.py), and peak memory while
tenants answer with the largest bodies the caps allow (bench/memory.py)."""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile

from bench import health as health_bench
from bench import memory as memory_bench
from bench import scaling as scaling_bench
from bench import soak as soak_bench


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench")
    parser.add_argument("--suites", default="scaling,health,isolation,memory,soak",
                        help="scaling, health, isolation, memory, soak, services (start-up with a MonitoredService per "
                             "policy: not by default)")
    parser.add_argument("--soak-seconds", type=int, default=300, help="the soak suite's duration (make soak: longer)")
    parser.add_argument("--memory-tenants", type=int, default=8, help="tenant namespaces of the memory suite")
    parser.add_argument("--memory-workloads", type=int, default=4, help="workloads per tenant of the memory suite")
    parser.add_argument("--sizes", default="100,1000,5000,10000", help="ScalingPolicy counts")
    parser.add_argument("--failover-at", type=int, default=1000, help="the size at which failover is measured")
    parser.add_argument("--kills", type=int, default=5, help="leader kills for the failover median")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--checks", type=int, default=2000, help="health checks (10 per MonitoredService)")
    parser.add_argument("--check-interval", type=int, default=10)
    parser.add_argument("--measure-seconds", type=int, default=60)
    parser.add_argument("--fuzz-examples", type=int, default=1000,
                        help="examples of the isolation fuzzer (suite isolation; make test runs 100)")
    args = parser.parse_args(argv)
    suites = set(args.suites.split(","))
    out = pathlib.Path(".bench")
    out.mkdir(exist_ok=True)
    if "memory" in suites:
        print(f"== memory: {args.memory_tenants} tenants answering at the caps", flush=True)
        with tempfile.TemporaryDirectory(prefix="capliquify-bench-memory-") as directory:
            row = memory_bench.run(args.memory_tenants, args.memory_workloads, args.measure_seconds,
                                   pathlib.Path(directory))
        print(f"  {row}", flush=True)
        text = memory_bench.table([row])
        print("\n" + text)
        (out / "memory.md").write_text(text + "\n")
    if "scaling" in suites:
        rows = []
        for size in (int(s) for s in args.sizes.split(",")):
            print(f"== {size} ScalingPolicies", flush=True)
            with tempfile.TemporaryDirectory(prefix=f"capliquify-bench-{size}-") as directory:
                rows.append(scaling_bench.run_size(size, args.rounds, pathlib.Path(directory),
                                                   kills=args.kills if size == args.failover_at else 0))
            print(f"  {rows[-1]}", flush=True)
        text = scaling_bench.table(rows)
        print("\n" + text)
        (out / "scaling.md").write_text(text + "\n")
    if "services" in suites:
        size = int(args.sizes.split(",")[-1])
        print(f"== start-up: {size} ScalingPolicies + {size} MonitoredServices", flush=True)
        with tempfile.TemporaryDirectory(prefix=f"capliquify-bench-services-{size}-") as directory:
            row = scaling_bench.start_up_with_services(size, pathlib.Path(directory))
        print(f"  {row}", flush=True)
        (out / "services.json").write_text(json.dumps(row) + "\n")
    if "health" in suites:
        print(f"== {args.checks} health checks every {args.check_interval}s", flush=True)
        with tempfile.TemporaryDirectory(prefix="capliquify-bench-health-") as directory:
            row = health_bench.run(args.checks, args.check_interval, args.measure_seconds, pathlib.Path(directory))
        print(f"  {row}", flush=True)
        text = health_bench.table([row])
        print("\n" + text)
        (out / "health.md").write_text(text + "\n")
    if "soak" in suites:
        # A short soak (bench/soak.py): overlapping faults on a seeded schedule, invariants from outside.
        print(f"== soak: {args.soak_seconds}s of faults", flush=True)
        with tempfile.TemporaryDirectory(prefix="capliquify-bench-soak-") as directory:
            row = soak_bench.run(args.soak_seconds, 26, namespaces=3, per_namespace=2, workdir=pathlib.Path(directory))
        text = soak_bench.table([row])
        print("\n" + text)
        (out / "soak.md").write_text(text + "\n")
        (out / "soak.json").write_text(json.dumps(row, indent=1) + "\n")
        if not row["passed"]:
            print(json.dumps(row["violations"], indent=1))
            return 1
    if "isolation" in suites:
        # The differential isolation fuzzer of the unit tests with a larger, randomised budget
        # (tests/unit/test_isolation_fuzz.py): a failure prints the tenant that broke isolation.
        print(f"== isolation fuzzer: {args.fuzz_examples} random tenants", flush=True)
        result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                                 "tests/unit/test_isolation_fuzz.py"],
                                env={**os.environ, "CAPLIQUIFY_FUZZ_EXAMPLES": str(args.fuzz_examples)})
        if result.returncode != 0:
            return result.returncode
    return 0


if __name__ == "__main__":
    sys.exit(main())
