"""One picture of a comparison: load, replicas of each controller and the oracle, utilisation."""

from __future__ import annotations

import pathlib

from controller.sim import closedloop


def write(comparison: closedloop.Comparison, path: pathlib.Path) -> None:
    import matplotlib  # optional: only `--plot` and `make bench-quality` need it

    matplotlib.use("Agg")
    from matplotlib import pyplot

    minutes = [t / 60 for t in range(comparison.trace.duration)]
    figure, (load_axis, replica_axis, use_axis) = pyplot.subplots(3, 1, sharex=True, figsize=(10, 8))
    load_axis.plot(minutes, comparison.runs[0].load, color="black", linewidth=0.8)
    load_axis.set_ylabel("load (req/s)")
    load_axis.set_title(f"{comparison.trace.name}: {comparison.trace.description}", fontsize=10)
    replica_axis.step(minutes, comparison.oracle, where="post", color="grey", linestyle=":", label="oracle (lower bound)")
    for run in comparison.runs:
        replica_axis.step(minutes, run.replicas, where="post", label=f"{run.name} (pods)")
        use_axis.plot(minutes, [100 * u for u in run.utilisation], linewidth=0.8, label=run.name)
    replica_axis.set_ylabel("replicas")
    replica_axis.legend(loc="upper right", fontsize=8)
    use_axis.axhline(100 * comparison.model.slo_utilisation, color="red", linewidth=0.6, linestyle="--",
                     label="SLO line")
    use_axis.set_ylabel("CPU of ready pods (%)")
    use_axis.set_xlabel("minutes")
    use_axis.legend(loc="upper right", fontsize=8)
    figure.text(0.01, 0.005, comparison.model.describe(), fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    pyplot.close(figure)
