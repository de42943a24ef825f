"""Scaling quality against HPA (`make bench-quality`): every built-in trace, two capacities.

Prints a scorecard table for each profile in examples/profiles/ beside the HPA v2 port on
the same plant, and the issue's pass/fail lines; `--plot-dir` also writes the flash-crowd
picture. Simulated time: it measures decisions, not speed.
"""

from __future__ import annotations

import argparse
import pathlib
import sys

import yaml

from controller.api import scalingpolicy
from controller.sim import closedloop
from controller.sim import plant
from controller.sim import plot
from controller.sim import traces

ROOT = pathlib.Path(__file__).resolve().parents[1]
PROFILES = ("default", "efficient")
CAPACITIES = (50.0, 100.0)


def load_profile(name: str) -> scalingpolicy.ScalingPolicySpec:
    document = yaml.safe_load((ROOT / "examples" / "profiles" / f"{name}.yaml").read_text())
    return scalingpolicy.ScalingPolicySpec.model_validate(document["spec"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.quality")
    parser.add_argument("--plot-dir", type=pathlib.Path, help="write flash-crowd.png here")
    args = parser.parse_args(argv)
    verdicts = []
    for profile in PROFILES:
        spec = load_profile(profile)
        print(f"\n### Profile `{profile}` vs HPA (CPU target 70 %)\n")
        print("| capacity | trace | SLO-violation s: ours / HPA | replica-hours: ours / HPA | ÷ oracle: ours / HPA "
              "| scale events: ours / HPA | flaps: ours / HPA |")
        print("|---|---|---|---|---|---|---|")
        for capacity in CAPACITIES:
            model = plant.Model(capacity=capacity)
            both = 0
            for name in traces.BUILT_IN:
                comparison = closedloop.compare(
                    [closedloop.PolicyController(spec, profile), closedloop.HpaController(spec.minReplicas, spec.maxReplicas)],
                    traces.built_in(name), model, spec.minReplicas, spec.maxReplicas)
                ours, hpa = comparison.scores
                print(f"| {capacity:g} req/s | {name} | {ours.slo_violation_seconds} / {hpa.slo_violation_seconds} | "
                      f"{ours.replica_hours:.1f} / {hpa.replica_hours:.1f} | {ours.oracle_ratio:.2f} / {hpa.oracle_ratio:.2f} | "
                      f"{ours.scale_events} / {hpa.scale_events} | {ours.flaps} / {hpa.flaps} |")
                slo_ok = ours.slo_violation_seconds <= hpa.slo_violation_seconds
                if profile == "default" and not (slo_ok and ours.flaps == 0):
                    verdicts.append(f"FAIL default {name} at {capacity:g}: SLO {ours.slo_violation_seconds} vs "
                                    f"{hpa.slo_violation_seconds}, flaps {ours.flaps}")
                both += slo_ok and ours.replica_hours < hpa.replica_hours
                if args.plot_dir and name == "flash-crowd" and capacity == CAPACITIES[0]:
                    args.plot_dir.mkdir(parents=True, exist_ok=True)
                    plot.write(comparison, args.plot_dir / f"flash-crowd-{profile}.png")
            if profile == "efficient":
                verdict = "ok" if both >= 5 else "FAIL"
                verdicts.append(f"{verdict} efficient at {capacity:g} req/s: SLO <= HPA and fewer replica-hours "
                                f"on {both} of {len(traces.BUILT_IN)} traces (needs 5)")
    print()
    failed = [v for v in verdicts if v.startswith("FAIL")]
    print("\n".join(verdicts) or "ok default: SLO-violation <= HPA and zero flaps on every trace at both capacities")
    if not any(v.startswith("FAIL default") for v in verdicts):
        print("ok default: SLO-violation <= HPA and zero flaps on every trace at both capacities")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
