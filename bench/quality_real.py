"""Scaling quality on real traffic (`make bench-quality`): the NASA week, HPA beside each profile.

The week (bench/traces/, origin and licence in its README) is cut into 28 six-hour windows and
each is run closed-loop, from the same start, by the HPA v2 port and by every profile, on four
plants: 50 and 80 req/s per replica, pods ready 30 s and 90 s after the scale. Days 1–4 were
used to design the profiles, days 5–7 only to check them: both are printed apart.

A window is *won* when the profile is at least as good as HPA on all three at once:
SLO-violation seconds, replica-hours and flaps.
"""

from __future__ import annotations

import dataclasses
import pathlib
import random
import typing

from controller.api import scalingpolicy
from controller.sim import closedloop
from controller.sim import plant
from controller.sim import traces

ROOT = pathlib.Path(__file__).resolve().parents[1]
TRACE = ROOT / "bench" / "traces" / "nasa-july-1-7.csv.gz"
WINDOW_SECONDS = 6 * 3600
DESIGN_DAYS = 4  # July 1–4; 5–7 were held back to check
PLANTS = ((50.0, 30), (80.0, 30), (50.0, 90), (80.0, 90))


def windows() -> list[traces.Trace]:
    week = traces.from_csv(TRACE)
    count = -(-week.duration // WINDOW_SECONDS)
    return [traces.window(week, i * WINDOW_SECONDS, min(WINDOW_SECONDS, week.duration - i * WINDOW_SECONDS),
                          f"day {i // 4 + 1} {i % 4 * 6:02d}h") for i in range(count)]


@dataclasses.dataclass(frozen=True)
class Result:
    window: str
    scores: typing.Mapping[str, closedloop.Score]  # "hpa" and each profile


def run(profiles: typing.Mapping[str, scalingpolicy.ScalingPolicySpec], model: plant.Model) -> list[Result]:
    results = []
    for window in windows():
        controllers: list[closedloop.Controller] = [closedloop.HpaController(2, 20, window=model.metric_window_seconds)]
        controllers += [closedloop.PolicyController(spec, name) for name, spec in profiles.items()]
        comparison = closedloop.compare(controllers, window, model, 2, 20)
        results.append(Result(window.name, {s.name: s for s in comparison.scores}))
    return results


def wins(ours: closedloop.Score, hpa: closedloop.Score) -> bool:
    return (ours.slo_violation_seconds <= hpa.slo_violation_seconds and ours.replica_hours <= hpa.replica_hours
            and ours.flaps <= hpa.flaps)


def _totals(results: typing.Sequence[Result], name: str) -> tuple[int, float, float, int, int]:
    """(SLO-violation s, replica-hours, replica-hours ÷ oracle's, flaps, windows won) over `results`."""
    scores = [r.scores[name] for r in results]
    hours = sum(s.replica_hours for s in scores)
    oracle = sum(s.replica_hours / s.oracle_ratio for s in scores if s.oracle_ratio)
    won = sum(wins(r.scores[name], r.scores["hpa"]) for r in results) if name != "hpa" else 0
    return sum(s.slo_violation_seconds for s in scores), hours, hours / oracle, sum(s.flaps for s in scores), won


def report(profiles: typing.Mapping[str, scalingpolicy.ScalingPolicySpec], recommended: str) -> list[str]:
    """Prints the tables; returns the verdict lines."""
    verdicts = []
    print("\n### Real traffic: the NASA week, 28 six-hour windows (design: days 1–4; check: days 5–7)\n")
    print("| plant | windows | controller | SLO-violation s | replica-hours | ÷ oracle | flaps | windows ≤ HPA on all three |")
    print("|---|---|---|---|---|---|---|---|")
    per_window: dict[str, list[Result]] = {}
    for capacity, startup in PLANTS:
        model = plant.Model(capacity=capacity, startup_seconds=startup)
        label = f"{capacity:g} req/s, ready {startup} s"
        results = run(profiles, model)
        per_window[label] = results
        for part, chosen in (("design", [r for r in results if design_window(r)]),
                             ("check", [r for r in results if not design_window(r)])):
            for name in ("hpa", *profiles):
                slo, hours, ratio, flaps, won = _totals(chosen, name)
                won_text = "–" if name == "hpa" else f"{won} / {len(chosen)}"
                print(f"| {label} | {part} | {name} | {slo} | {hours:.1f} | {ratio:.2f} | {flaps} | {won_text} |")
        hpa = _totals(results, "hpa")
        for name in profiles:
            slo, hours, _, flaps, won = _totals(results, name)
            if name == recommended:
                ok = slo <= hpa[0] and hours <= hpa[1] and flaps <= hpa[3]
                verdicts.append(f"{'ok' if ok else 'FAIL'} {name} on real traffic at {label}: SLO {slo} vs {hpa[0]} s, "
                                f"replica-hours {hours:.1f} vs {hpa[1]:.1f}, flaps {flaps} vs {hpa[3]}; "
                                f"all three in {won} of {len(results)} windows")
            if name == "default":
                bad = [r.window for r in results if r.scores[name].slo_violation_seconds
                       > r.scores["hpa"].slo_violation_seconds or r.scores[name].flaps > r.scores["hpa"].flaps]
                verdicts.append(f"{'FAIL' if bad else 'ok'} default on real traffic at {label}: SLO <= HPA and "
                                f"flaps <= HPA in {len(results) - len(bad)} of {len(results)} windows"
                                + (f" (not: {', '.join(bad)})" if bad else ""))
    print_windows(per_window, ("hpa", *profiles))
    return verdicts


def design_window(result: Result) -> bool:
    return int(result.window.split()[1]) <= DESIGN_DAYS


def print_windows(per_window: typing.Mapping[str, typing.Sequence[Result]], names: typing.Sequence[str]) -> None:
    """Every window: SLO-violation s / replica-hours ÷ oracle / flaps per controller."""
    for label, results in per_window.items():
        print(f"\n#### {label}: SLO-violation s / replica-hours ÷ oracle / flaps\n")
        print("| window | " + " | ".join(names) + " |")
        print("|---|" + "---|" * len(names))
        for result in results:
            cells = []
            for name in names:
                s = result.scores[name]
                mark = " ✓" if name != "hpa" and wins(s, result.scores["hpa"]) else ""
                cells.append(f"{s.slo_violation_seconds} / {s.oracle_ratio:.2f} / {s.flaps}{mark}")
            print(f"| {result.window} | " + " | ".join(cells) + " |")


# -- the seasonal forecast: the whole week, closed-loop, days 1–4 warming its history --------
DAY = 86400
JUDGED_FROM = DESIGN_DAYS * DAY  # days 5–7 are judged; days 1–4 only build the history


def with_seasonal(spec: scalingpolicy.ScalingPolicySpec, startup: int) -> scalingpolicy.ScalingPolicySpec:
    """`spec` with spec.predictive.seasonal on at its defaults (daily period, 4 periods, 300 s
    steps, 20 % tolerance over an hour), the lead set by a rule chosen before any run: the
    plant's start-up plus two evaluations (a new pod ready, and the reading that sees it)."""
    document = spec.model_dump(by_alias=True, exclude_none=True)
    document["predictive"]["seasonal"] = {"enabled": True, "leadSeconds": startup + 2 * spec.evaluationIntervalSeconds}
    return scalingpolicy.ScalingPolicySpec.model_validate(document)


@dataclasses.dataclass(frozen=True)
class WeekScore:
    name: str
    slo_violation_seconds: int
    replica_hours: float
    oracle_ratio: float
    flaps: int
    trusted: float | None  # share of the judged days' evaluations acted on the forecast; None: no forecast


def week_run(profiles: typing.Mapping[str, scalingpolicy.ScalingPolicySpec], model: plant.Model,
             week: traces.Trace | None = None, judged_from: int = JUDGED_FROM) -> list[WeekScore]:
    """HPA and every profile with and without the seasonal forecast over the whole week, scored
    on days 5–7 only (what each did there, from the state days 1–4 left)."""
    week = week or traces.from_csv(TRACE)
    controllers: list[closedloop.Controller] = [closedloop.HpaController(2, 20, window=model.metric_window_seconds)]
    for name, spec in profiles.items():
        controllers.append(closedloop.PolicyController(spec, name))
        controllers.append(JudgedForecasts(with_seasonal(spec, model.startup_seconds), f"{name} + seasonal",
                                           judged_from))
    comparison = closedloop.compare(controllers, week, model, 2, 20)
    oracle_hours = sum(comparison.oracle[judged_from:]) / 3600
    scores = []
    for result, controller in zip(comparison.runs, controllers, strict=True):
        hours = sum(result.replicas[judged_from:]) / 3600
        judged = [event for event in result.events if event[0] >= judged_from]
        trusted = None
        if isinstance(controller, JudgedForecasts) and controller.judged:
            trusted = controller.trusted / controller.judged
        scores.append(WeekScore(result.name, sum(result.violated[judged_from:]), hours, hours / oracle_hours,
                                closedloop.flaps(judged), trusted))
    return scores


def morning_ramp(days: int = 5, seed: int = 11) -> traces.Trace:
    """Synthetic (ours, not real traffic): 80 req/s, and every day near 09:00 (±1 min) a ramp to
    430–560 req/s within 2 minutes — faster than pods start and scale-ups compound — held until
    17:00, then down over 10 minutes; ±5 % noise per minute. The recurring ramp the seasonal
    forecast is for, which the NASA week does not have."""
    generator = random.Random(seed)
    peaks = [generator.uniform(430, 560) for _ in range(days)]
    starts = [9 * 3600 + generator.randint(-60, 60) for _ in range(days)]
    noise = [1 + generator.gauss(0, 0.05) for _ in range(days * DAY // 60 + 1)]

    def load(t: int) -> float:
        day, second = divmod(t, DAY)
        peak, start, end = peaks[day], starts[day], 17 * 3600
        if second < start or second >= end + 600:
            level = 80.0
        elif second < start + 120:
            level = 80 + (peak - 80) * (second - start) / 120
        elif second < end:
            level = peak
        else:
            level = peak - (peak - 80) * (second - end) / 600
        return level * noise[t // 60]
    return traces.Trace("morning-ramp", days * DAY, load, "80 req/s, a 2-minute ramp to ~500 req/s every day near 09:00")


class JudgedForecasts(closedloop.PolicyController):
    """A PolicyController that counts, on the judged days, the evaluations whose seasonal
    forecast was trusted."""

    def __init__(self, spec: scalingpolicy.ScalingPolicySpec, name: str, judged_from: int = JUDGED_FROM) -> None:
        super().__init__(spec, name)
        self.judged = self.trusted = 0
        self.judged_from = judged_from

    def decide(self, observation: plant.Observation) -> int:
        desired = super().decide(observation)
        if observation.at >= self.judged_from and self.state.forecast is not None:
            self.judged += 1
            self.trusted += self.state.forecast.trusted
        return desired


def seasonal_report(profiles: typing.Mapping[str, scalingpolicy.ScalingPolicySpec]) -> list[str]:
    """The multi-day table; returns one line per profile and plant saying what the forecast changed."""
    lines = []
    print("\n### Seasonal forecast: the NASA week closed-loop (days 1–4 warm the history, days 5–7 judged)\n")
    print("| plant | controller | SLO-violation s | replica-hours | ÷ oracle | flaps | forecast trusted |")
    print("|---|---|---|---|---|---|---|")
    for capacity, startup in PLANTS:
        model = plant.Model(capacity=capacity, startup_seconds=startup)
        label = f"{capacity:g} req/s, ready {startup} s"
        scores = {s.name: s for s in week_run(profiles, model)}
        for s in scores.values():
            trusted = "–" if s.trusted is None else f"{s.trusted:.0%}"
            print(f"| {label} | {s.name} | {s.slo_violation_seconds} | {s.replica_hours:.1f} | {s.oracle_ratio:.2f} "
                  f"| {s.flaps} | {trusted} |")
        lines += _changes(profiles, scores, f"at {label}, days 5–7")
    print("\n#### A recurring morning ramp (synthetic: `morning_ramp`), 5 days, day 5 judged\n")
    print("| plant | controller | SLO-violation s | replica-hours | ÷ oracle | flaps | forecast trusted |")
    print("|---|---|---|---|---|---|---|")
    for capacity, startup in PLANTS[::2]:  # 50 req/s per replica, pods ready after 30 s and after 90 s
        model = plant.Model(capacity=capacity, startup_seconds=startup)
        label = f"{capacity:g} req/s, ready {startup} s"
        scores = {s.name: s for s in week_run(profiles, model, morning_ramp(), 4 * DAY)}
        for s in scores.values():
            trusted = "–" if s.trusted is None else f"{s.trusted:.0%}"
            print(f"| {label} | {s.name} | {s.slo_violation_seconds} | {s.replica_hours:.1f} | {s.oracle_ratio:.2f} "
                  f"| {s.flaps} | {trusted} |")
        lines += _changes(profiles, scores, f"at {label}, morning ramp day 5")
    return lines


def _changes(profiles: typing.Iterable[str], scores: typing.Mapping[str, WeekScore], where: str) -> list[str]:
    lines = []
    for name in profiles:
        plain, seasonal = scores[name], scores[f"{name} + seasonal"]
        lines.append(f"info seasonal on {name} {where}: SLO-violation {plain.slo_violation_seconds} -> "
                     f"{seasonal.slo_violation_seconds} s, replica-hours {plain.replica_hours:.1f} -> "
                     f"{seasonal.replica_hours:.1f} ({seasonal.replica_hours / plain.replica_hours - 1:+.1%}), "
                     f"flaps {plain.flaps} -> {seasonal.flaps}")
    return lines
