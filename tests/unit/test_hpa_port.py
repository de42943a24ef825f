"""The HPA v2 port used as the simulator's baseline: each upstream rule it reproduces.

Names in the docstrings are those of k8s.io/kubernetes pkg/controller/podautoscaler.
"""

from __future__ import annotations

from controller.sim import hpa
from controller.sim import plant

NOW = 10_000


def observe(cpu: list[float | None], ready_at: list[int] | None = None, created: list[int] | None = None
            ) -> plant.Observation:
    ready_at = ready_at or [0] * len(cpu)
    created = created or [r - 30 for r in ready_at]
    pods = tuple(plant.Pod(c, r) for c, r in zip(created, ready_at, strict=True))
    return plant.Observation(NOW, len(cpu), sum(1 for r in ready_at if r <= NOW), pods, {}, tuple(cpu))


def replicas(observation: plant.Observation) -> int:
    return hpa.resource_replicas(observation, 15, 70.0, 0.1, 300)


def test_within_tolerance_keeps_the_count() -> None:
    """GetResourceReplicas: |1 - usageRatio| <= tolerance (0.1) returns currentReplicas."""
    assert replicas(observe([76, 76, 76])) == 3  # ratio 1.086
    assert replicas(observe([64, 64, 64])) == 3  # ratio 0.914


def test_proposal_is_ceil_of_ratio_times_ready_pods() -> None:
    """GetResourceReplicas: ceil(usageRatio × readyPodCount)."""
    assert replicas(observe([100, 100, 100])) == 5  # ceil(3 × 1.43)
    assert replicas(observe([20, 20, 20, 20])) == 2  # ceil(4 × 0.29)


def test_unready_pods_count_as_idle_on_a_scale_up_and_a_flip_keeps_the_count() -> None:
    """scaleUpWithUnready: unready pods at 0 usage; a direction flip returns currentReplicas."""
    # 2 ready at 100 %, 2 starting: (200 + 0 + 0) / 4 / 70 = 0.71 < 1 while 1.43 > 1: keep 4.
    assert replicas(observe([100, 100, None, None], ready_at=[0, 0, NOW + 20, NOW + 20])) == 4
    # 3 ready at 100 %, 1 starting: 300 / 4 / 70 = 1.07, within tolerance: keep 4.
    assert replicas(observe([100, 100, 100, None], ready_at=[0, 0, 0, NOW + 20])) == 4
    # 4 ready at 100 %, 1 starting: 400 / 5 / 70 = 1.14: ceil(1.14 × 5) = 6.
    assert replicas(observe([100] * 4 + [None], ready_at=[0] * 4 + [NOW + 20])) == 6


def test_a_pod_ready_for_less_than_one_window_in_its_cpu_initialization_is_unready() -> None:
    """groupPods: within cpuInitializationPeriod, a sample whose window began before the
    readiness transition is ignored."""
    fresh = observe([100, 100, 100], ready_at=[0, 0, NOW - 5], created=[0, 0, NOW - 35])
    samples, unready = hpa.group_pods(fresh, 15, 300)
    assert (len(samples), unready) == (2, 1)
    settled = observe([100, 100, 100], ready_at=[0, 0, NOW - 20], created=[0, 0, NOW - 50])
    assert hpa.group_pods(settled, 15, 300)[1] == 0


def test_down_window_takes_its_highest_recommendation() -> None:
    """stabilizeRecommendationWithBehaviors: min(current, max of the down window)."""
    recommendations = [(NOW - 200, 8), (NOW - 100, 6)]
    assert hpa.stabilize(recommendations, NOW, 10, 3, hpa.DEFAULT_UP, hpa.DEFAULT_DOWN) == 8
    assert recommendations[-1] == (NOW, 3)  # the raw proposal is recorded


def test_first_reconcile_seeds_the_down_window() -> None:
    """maybeInitScaleDownStabilizationWindow: no scale-down in the first 300 s."""
    autoscaler = hpa.Hpa(2, 20)
    assert autoscaler.normalize(NOW, 10, 3) == 10
    assert autoscaler.normalize(NOW + 301, 10, 3) == 3


def test_default_scale_up_rate_is_the_larger_of_4_pods_and_100_percent_per_15s() -> None:
    """calculateScaleUpLimitWithScalingRules with the default policies, selectPolicy Max."""
    assert hpa.scale_up_limit(NOW, 1, [], [], hpa.DEFAULT_UP) == 5
    assert hpa.scale_up_limit(NOW, 10, [], [], hpa.DEFAULT_UP) == 20
    # A +6 change 10 s ago: the period started at 4, so at most 8 (4 + 4 pods, or 4 × 2).
    assert hpa.scale_up_limit(NOW, 10, [(NOW - 10, 6)], [], hpa.DEFAULT_UP) == 8


def test_scale_down_rate_counts_changes_within_the_period() -> None:
    """calculateScaleDownLimitWithBehaviors: periodStart = current - added + deleted."""
    rules = hpa.Rules(300, (("Pods", 2, 60),))
    assert hpa.scale_down_limit(NOW, 10, [], [(NOW - 30, -2)], rules) == 10
    assert hpa.scale_down_limit(NOW, 10, [], [(NOW - 90, -2)], rules) == 8


def test_rate_and_bounds() -> None:
    """convertDesiredReplicasWithBehaviorRate: rate limits, then min/max."""
    assert hpa.convert_with_rate(NOW, 4, 30, 2, 20, [], [], hpa.DEFAULT_UP, hpa.DEFAULT_DOWN) == 8
    assert hpa.convert_with_rate(NOW, 12, 30, 2, 20, [], [], hpa.DEFAULT_UP, hpa.DEFAULT_DOWN) == 20
    assert hpa.convert_with_rate(NOW, 4, 1, 2, 20, [], [], hpa.DEFAULT_UP, hpa.DEFAULT_DOWN) == 2


def test_no_samples_keep_the_count() -> None:
    """GetResourceReplicas errors without metrics; the HPA then leaves the count alone."""
    assert replicas(observe([None, None], ready_at=[NOW + 5, NOW + 5])) == 2
