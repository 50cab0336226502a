"""The posterior: the prior is the spec, observations move it, old ones fade, garbage does not."""

from __future__ import annotations

import math
from dataclasses import replace
from types import MappingProxyType

import pytest

from energysched.kb.profiles import KnowledgeBase, ProfileSpec, WorkloadFigures
from energysched.learning.estimate import Estimator, LearnConfig
from energysched.learning.knowledge import learned_knowledge_base
from energysched.learning.observe import Observation


def profile(perf: float = 10.0, power: float = 20.0, source: str = "estimated") -> ProfileSpec:
    return ProfileSpec(
        name="wyse",
        node_selector=MappingProxyType({"kubernetes.io/hostname": "wyse"}),
        idle_power_watts=5.0,
        workloads=MappingProxyType(
            {"training": WorkloadFigures(perf, power, "steps/s", source)}  # type: ignore[arg-type]
        ),
    )


def obs(perf: float | None, power: float | None, at: float = 0.0) -> Observation:
    return Observation("ns/p", "wyse", "wyse", "training", at, 100.0, perf, power, 100.0, 0.0, 0)


def test_without_observations_the_learned_figures_are_the_spec_with_its_prior_width() -> None:
    kb = KnowledgeBase.of([profile()])
    est = Estimator()
    got = est.learned(kb)[("wyse", "training")]
    assert got.performance == pytest.approx(10.0) and got.power_watts == pytest.approx(20.0)
    assert got.performance_factor == pytest.approx(2.0)
    measured = KnowledgeBase.of([profile(source="measured")])
    assert est.learned(measured)[("wyse", "training")].performance_factor == pytest.approx(1.25)


def test_observations_pull_the_figure_to_the_truth_and_shrink_the_uncertainty() -> None:
    kb = KnowledgeBase.of([profile()])
    est = Estimator()
    for i in range(10):
        est.add(obs(20.0, 10.0, at=float(i)), kb)
    got = est.learned(kb)[("wyse", "training")]
    assert got.performance == pytest.approx(20.0, rel=0.01)
    assert got.power_watts == pytest.approx(10.0, rel=0.01)
    assert got.performance_factor < 1.04 and got.performance_count == 10


def test_half_life_lets_a_drifted_node_be_relearned() -> None:
    kb = KnowledgeBase.of([profile()])
    cfg = LearnConfig(half_life_s=100.0, outlier_sigmas=math.inf)
    est = Estimator(cfg)
    for i in range(20):
        est.add(obs(10.0, None, at=float(i)), kb)
    for i in range(20):
        est.add(obs(15.0, None, at=1000.0 + i), kb)
    assert est.learned(kb)[("wyse", "training")].performance == pytest.approx(15.0, rel=0.02)
    forever = Estimator(replace(cfg, half_life_s=math.inf))
    for i in range(20):
        forever.add(obs(10.0, None, at=float(i)), kb)
    for i in range(20):
        forever.add(obs(15.0, None, at=1000.0 + i), kb)
    assert forever.learned(kb)[("wyse", "training")].performance < 13.0


def test_an_outlier_is_refused_and_counted_until_it_keeps_coming() -> None:
    kb = KnowledgeBase.of([profile()])
    est = Estimator(LearnConfig(accept_after=3))
    for i in range(10):
        est.add(obs(10.0, None, at=float(i)), kb)
    est.add(obs(1000.0, None, at=11.0), kb)
    assert est.counts["outlier"] == 1
    assert est.learned(kb)[("wyse", "training")].performance == pytest.approx(10.0, rel=0.01)
    est.add(obs(1000.0, None, at=12.0), kb)
    est.add(obs(1000.0, None, at=13.0), kb)  # the third in a row: the node has changed
    assert est.counts["outlier"] == 2
    assert est.learned(kb)[("wyse", "training")].performance_count == 11


def test_a_spec_change_resets_the_learned_figure_and_is_counted() -> None:
    kb = KnowledgeBase.of([profile()])
    est = Estimator()
    for i in range(5):
        est.add(obs(20.0, 10.0, at=float(i)), kb)
    edited = KnowledgeBase.of([profile(perf=12.0)])
    est.sync(edited)
    got = est.learned(edited)[("wyse", "training")]
    assert got.performance == pytest.approx(12.0) and got.performance_count == 0
    assert got.power_watts == pytest.approx(10.0, rel=0.02)  # power's spec did not change
    assert est.counts["spec-changed"] == 1
    est.sync(KnowledgeBase.of([]))
    assert est.states == {}


def test_unknown_profile_and_non_positive_figures_teach_nothing() -> None:
    kb = KnowledgeBase.of([profile()])
    est = Estimator()
    est.add(replace(obs(5.0, 5.0), profile="gone"), kb)
    est.add(obs(-1.0, math.nan), kb)
    assert est.counts == {"unknown-profile": 1, "not-positive": 2}
    assert est.learned(kb)[("wyse", "training")].performance_count == 0


def test_the_store_is_bounded_by_profiles_and_types_not_by_observations() -> None:
    kb = KnowledgeBase.of([profile()])
    est = Estimator()
    for i in range(5000):
        est.add(obs(10.0 + (i % 3), 20.0, at=float(i)), kb)
    assert len(est.states) == 2


def test_learned_knowledge_base_replaces_figures_and_ucb_is_optimistic_by_uncertainty() -> None:
    kb = KnowledgeBase.of([profile()])
    est = Estimator()
    learned = est.learned(kb)
    mean = learned_knowledge_base(kb, learned)
    fig = mean.profiles["wyse"].workloads["training"]
    assert (fig.performance, fig.power_watts) == pytest.approx((10.0, 20.0))
    ucb = learned_knowledge_base(kb, learned, exploration=1.0)
    opt = ucb.profiles["wyse"].workloads["training"]
    assert opt.performance == pytest.approx(20.0)  # x factor 2
    assert opt.power_watts == pytest.approx(10.0)
    assert fig.unit == "steps/s"  # everything but the figures stays
    with pytest.raises(ValueError, match="exploration"):
        learned_knowledge_base(kb, learned, exploration=-1)


def test_learned_power_never_below_idle() -> None:
    kb = KnowledgeBase.of([profile(power=6.0)])
    learned = Estimator().learned(kb)
    ucb = learned_knowledge_base(kb, learned, exploration=3.0)
    assert ucb.profiles["wyse"].workloads["training"].power_watts == 5.0
