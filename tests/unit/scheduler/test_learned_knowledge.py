"""``knowledge: learned``: the modes read the operator's learned figures, hot-switched."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from energysched.scheduler.config import ConfigError, parse_config
from energysched.scheduler.mirror import ClusterMirror


def profile(generation: int = 1, perf: float = 85.0) -> dict[str, Any]:
    return {
        "apiVersion": "energy.thesis.io/v1alpha1",
        "kind": "EnergyProfile",
        "metadata": {"name": "wyse", "generation": generation, "resourceVersion": "1"},
        "spec": {
            "nodeSelector": {"kubernetes.io/hostname": "wyse"},
            "idlePowerWatts": 6.5,
            "workloads": {"training": {"performance": perf, "powerWatts": 16.5}},
        },
    }


def with_learned(obj: dict[str, Any], spec_perf: float = 85.0) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    out["status"] = {
        "learned": {
            "observations": 7,
            "lastUpdate": "2026-12-07T04:00:00Z",
            "workloads": {
                "training": {
                    "specPerformance": spec_perf,
                    "specPowerWatts": 16.5,
                    "performance": 103.0,
                    "performanceUncertainty": 1.05,
                    "performanceObservations": 7,
                    "powerWatts": 20.5,
                    "powerUncertainty": 1.04,
                    "powerObservations": 5,
                }
            },
        }
    }
    return out


def training(m: ClusterMirror) -> tuple[float, float]:
    fig = m.state.snapshot(datetime.now(UTC)).kb.profiles["wyse"].workloads["training"]
    return fig.performance, fig.power_watts


def test_spec_ignores_learned_status_and_learned_reads_it_without_restart() -> None:
    m = ClusterMirror()
    base = profile()
    assert m.profile_event("ADDED", base, None)
    assert not m.profile_event("MODIFIED", with_learned(base), base)  # status only, spec mode
    assert training(m) == (85.0, 16.5)
    assert m.set_knowledge("learned", 0.0)
    assert training(m) == (103.0, 20.5)
    assert not m.set_knowledge("learned", 0.0)
    assert m.set_knowledge("learned", 1.0)  # UCB: optimistic by one standard deviation
    perf, power = training(m)
    assert perf == pytest.approx(103.0 * 1.05) and power == pytest.approx(20.5 / 1.04)
    assert m.set_knowledge("spec", 0.0)
    assert training(m) == (85.0, 16.5)


def test_a_status_update_in_learned_mode_swaps_the_figures() -> None:
    m = ClusterMirror()
    m.set_knowledge("learned", 0.0)
    base = profile()
    m.profile_event("ADDED", base, None)
    assert training(m) == (85.0, 16.5)  # nothing learned yet: the spec
    assert m.profile_event("MODIFIED", with_learned(base), base)
    assert training(m) == (103.0, 20.5)


def test_figures_learned_against_an_old_spec_are_not_used() -> None:
    m = ClusterMirror()
    m.set_knowledge("learned", 0.0)
    edited = with_learned(profile(generation=2, perf=90.0), spec_perf=85.0)
    m.profile_event("ADDED", edited, None)
    assert training(m) == (90.0, 16.5)


def test_config_knowledge_and_exploration() -> None:
    cfg = parse_config({"knowledge": "learned", "exploration": 0.5})
    assert (cfg.knowledge, cfg.exploration) == ("learned", 0.5)
    assert parse_config(None).knowledge == "learned"  # the experiment's choice
    assert parse_config(None).exploration == 0.0
    with pytest.raises(ConfigError, match="knowledge"):
        parse_config({"knowledge": "guess"})
    with pytest.raises(ConfigError, match="exploration"):
        parse_config({"exploration": -1})


def test_explain_lists_spec_learned_uncertainty_and_observations() -> None:
    from energysched.scheduler.explain import knowledge_lines

    m = ClusterMirror()
    m.profile_event("ADDED", with_learned(profile()), None)
    lines = knowledge_lines(m.book, "training", "learned")
    assert lines[0] == "figures for training (the modes read: learned):"
    assert "spec 85/s at 16.5 W" in lines[1]
    assert "learned 103/s (x/ 1.05, 7 runs) at 20.5 W (x/ 1.04, 5 runs)" in lines[1]
    assert knowledge_lines(m.book, None, "spec") == []
    fresh = ClusterMirror()
    fresh.profile_event("ADDED", profile(), None)
    assert "learned: nothing yet" in knowledge_lines(fresh.book, "training", "spec")[1]


def test_a_status_change_without_new_figures_swaps_nothing() -> None:
    m = ClusterMirror()
    m.set_knowledge("learned", 0.0)
    base = with_learned(profile())
    m.profile_event("ADDED", base, None)
    matched = copy.deepcopy(base)
    matched["status"]["matchedNodeCount"] = 3
    assert not m.profile_event("MODIFIED", matched, base)
