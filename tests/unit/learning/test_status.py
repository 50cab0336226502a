"""status.learned: written by the operator, read by the scheduler, resumed after a restart."""

from __future__ import annotations

from typing import Any

import pytest

from energysched.kb.profiles import KnowledgeBase
from energysched.learning.estimate import Estimator
from energysched.learning.status import learned_block, learned_from_status, restore
from tests.unit.learning.test_estimate import obs, profile


def learned_estimator() -> tuple[Estimator, KnowledgeBase]:
    kb = KnowledgeBase.of([profile()])
    est = Estimator()
    for i in range(6):
        est.add(obs(20.0 + i % 2, 10.0, at=1_800_000_000.0 + i), kb)
    return est, kb


def test_nothing_learned_writes_no_block() -> None:
    assert learned_block(profile(), Estimator()) is None


def test_the_block_round_trips_and_restores_the_same_posterior() -> None:
    est, kb = learned_estimator()
    block = learned_block(kb.profiles["wyse"], est)
    assert block is not None
    assert block["observations"] == 6 and block["lastUpdate"] == "2027-01-15T08:00:05Z"
    entry = block["workloads"]["training"]
    assert entry["specPerformance"] == 10.0 and entry["performanceObservations"] == 6
    read = learned_from_status(kb.profiles["wyse"], {"learned": block})
    want = est.learned(kb)[("wyse", "training")]
    got = read[("wyse", "training")]
    assert got.performance == pytest.approx(want.performance, rel=1e-5)
    assert got.power_factor == pytest.approx(want.power_factor, rel=1e-5)
    resumed = Estimator()
    assert restore(resumed, kb, {"wyse": {"learned": block}}) == 2
    again = resumed.learned(kb)[("wyse", "training")]
    assert again.performance == pytest.approx(want.performance, rel=1e-4)
    assert again.performance_factor == pytest.approx(want.performance_factor, rel=1e-4)
    assert again.performance_count == 6


def test_a_block_learned_against_another_spec_is_ignored() -> None:
    est, kb = learned_estimator()
    block = learned_block(kb.profiles["wyse"], est)
    edited = profile(perf=12.0)
    assert learned_from_status(edited, {"learned": block}) == {}
    resumed = Estimator()
    assert restore(resumed, KnowledgeBase.of([edited]), {"wyse": {"learned": block}}) == 0


@pytest.mark.parametrize(
    "status",
    [
        None,
        "x",
        {"learned": 5},
        {"learned": {"workloads": []}},
        {"learned": {"workloads": {"mining": {}}}},
        {"learned": {"workloads": {"training": "x"}}},
        {
            "learned": {
                "workloads": {
                    "training": {
                        "specPerformance": 10.0,
                        "specPowerWatts": 20.0,
                        "performance": -1,
                        "performanceUncertainty": 1.1,
                        "powerWatts": 10,
                        "powerUncertainty": 1.1,
                    }
                }
            }
        },
        {
            "learned": {
                "workloads": {
                    "training": {
                        "specPerformance": 10.0,
                        "specPowerWatts": 20.0,
                        "performance": 5,
                        "performanceUncertainty": 0.5,
                        "powerWatts": 10,
                        "powerUncertainty": True,
                    }
                }
            }
        },
    ],
)
def test_garbage_in_the_status_is_ignored(status: Any) -> None:
    assert learned_from_status(profile(), status) == {}
