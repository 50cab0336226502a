"""The simulation's power states: truth.yaml figures, engine power modes, the optimum's
ideal-sleep bound, diurnal arrivals, the waiting figures."""

from __future__ import annotations

import math
import random
import shutil
from pathlib import Path

import pytest
import yaml

from energysched_lab.experiment.engine import ClusterSim, NodeAsleep, simulate
from energysched_lab.experiment.jobs import diurnal_arrivals, instantiate
from energysched_lab.experiment.optimum import outcome, solve
from energysched_lab.experiment.results import percentile
from energysched_lab.experiment.scenario import (
    SCENARIOS_DIR,
    NodeTruth,
    PowerTruth,
    ScenarioError,
    Truth,
    WorkTruth,
    load_scenario,
)

from .experiment_helpers import job, node_class

SLEEPY = PowerTruth(sleep_watts=2.0, suspend_seconds=5.0, wake_seconds=10.0, wake_joules=300.0)


def _truth() -> Truth:
    fig = {"training": WorkTruth(10.0, 60.0, "cpu", 1.0)}
    return Truth(
        {
            "a": NodeTruth("a", 40.0, fig, SLEEPY),
            "b": NodeTruth("b", 10.0, {"training": WorkTruth(5.0, 20.0, "cpu", 1.0)}),
        }
    )


def test_power_modes_draw_their_power() -> None:
    sim = ClusterSim(_truth(), {"a": "a", "b": "b"})
    sim.set_mode("a", "falling", 100.0)
    sim.set_mode("a", "asleep", 105.0)
    sim.set_mode("a", "waking", 200.0)
    sim.set_mode("a", "on", 210.0)
    assert sim.nodes["a"].power == [(0.0, 40.0), (105.0, 2.0), (200.0, 30.0), (210.0, 40.0)]
    # a job cannot start on a sleeping node; a node with jobs cannot go to sleep
    sim.set_mode("a", "asleep", 300.0)
    with pytest.raises(NodeAsleep, match="while it is asleep"):
        sim.start(job("j", "training", 100.0), "a", 301.0)
    sim.set_mode("a", "on", 302.0)
    sim.start(job("j", "training", 100.0), "a", 302.0)
    with pytest.raises(NodeAsleep, match="runs 1 job"):
        sim.set_mode("a", "asleep", 303.0)
    with pytest.raises(NodeAsleep, match="no powerStates"):
        sim.set_mode("b", "asleep", 303.0)


def test_wake_power_spreads_the_wake_energy() -> None:
    assert SLEEPY.wake_watts == pytest.approx(30.0)


def _bad_truth(tmp_path: Path, **change: object) -> str:
    src = SCENARIOS_DIR / "thesis"
    dst = tmp_path / "sc"
    shutil.copytree(src, dst)
    for name in ("scenario.yaml",):
        doc = yaml.safe_load((dst / name).read_text())
        doc["nodes"] = str((src / doc["nodes"]).resolve())
        doc["profiles"] = str((src / doc["profiles"]).resolve())
        (dst / name).write_text(yaml.safe_dump(doc))
    truth = yaml.safe_load((dst / "truth.yaml").read_text())
    truth["nodes"]["tvpc"]["powerStates"].update(change)
    (dst / "truth.yaml").write_text(yaml.safe_dump(truth))
    with pytest.raises(ScenarioError) as err:
        load_scenario(dst)
    return str(err.value)


@pytest.mark.parametrize(
    ("field", "value", "shown"),
    [
        ("sleepWatts", -1.0, "-1.0"),
        ("sleepWatts", math.nan, "nan"),
        ("wakeSeconds", 0, "0"),
        ("wakeJoules", math.inf, "inf"),
        ("wakeFailureProbability", 1.5, "1.5"),
        ("sleepWatts", 100.0, "100"),  # not below idle
    ],
)
def test_bad_power_truth_names_the_field_and_value(
    tmp_path: Path, field: str, value: object, shown: str
) -> None:
    text = _bad_truth(tmp_path, **{field: value})
    assert f"nodes.tvpc.powerStates.{field}" in text
    assert shown in text


def test_unknown_power_truth_field(tmp_path: Path) -> None:
    assert "unknown field 'wakeMethod'" in _bad_truth(tmp_path, wakeMethod="wol")


def test_shipped_truths_have_power_states() -> None:
    for name in ("thesis", "concurrent", "trace-sample", "quiet-hours"):
        sc = load_scenario(SCENARIOS_DIR / name)
        for cls, node in sc.truth.nodes.items():
            assert node.power is not None, (name, cls)
            assert 0 <= node.power.sleep_watts < node.idle_watts


def test_quiet_hours_spans_a_day_with_quiet_nights() -> None:
    sc = load_scenario(SCENARIOS_DIR / "quiet-hours")
    assert sc.horizon_s == 86400
    jobs = instantiate(sc, 1)
    assert jobs == instantiate(sc, 1)  # seeded
    firsts = [j.arrival_s for j in jobs if j.after is None]
    assert all(0 <= t < 86400 for t in firsts)
    night = sum(1 for t in firsts if 3600 <= t < 7 * 3600)
    day = sum(1 for t in firsts if 9 * 3600 <= t < 15 * 3600)
    assert night < day


def test_diurnal_arrivals_follow_the_weights() -> None:
    weights = tuple([0.0] * 12 + [2.0] * 12)
    times = diurnal_arrivals(2400.0, weights, 10_000, random.Random(1))
    assert all(t >= 12 * 3600 for t in times)
    assert 2000 < len(times) < 2800
    assert diurnal_arrivals(2400.0, weights, 5, random.Random(1)) == times[:5]
    assert diurnal_arrivals(10.0, (), 5, random.Random(1)) == []


def test_ideal_sleep_bounds_the_energy_from_below() -> None:
    truth = _truth()
    classes = {"a": "a", "b": "b"}
    jobs = [job("j1", "training", 100.0), job("j2", "training", 100.0, arrival=1000.0)]
    placement = {"j1": "a", "j2": "b"}
    done = simulate(truth, classes, jobs, placement)
    on = outcome(truth, classes, done, horizon_s=2000.0)
    asleep = outcome(truth, classes, done, sleep=True, horizon_s=2000.0)
    # a: busy 10 s -> 2 W x 2000 s + 38 W x 10 s; b cannot sleep: 10 W x 2000 s; + dynamic
    dyn = 10 * 20 + 20 * 10
    assert on.energy_j == pytest.approx(50 * 2000 + dyn)
    assert asleep.energy_j == pytest.approx(2 * 2000 + 38 * 10 + 10 * 2000 + dyn)
    nodes = [node_class("a"), node_class("b")]
    exact = solve(truth, classes, nodes, jobs, "energy", horizon_s=2000.0)
    bound = solve(truth, classes, nodes, jobs, "energy", sleep=True, horizon_s=2000.0)
    assert exact is not None and bound is not None
    assert exact.kind == "exact" and bound.kind == "lower bound"
    assert bound.energy_j < exact.energy_j
    assert "asleep whenever idle" in bound.method


def test_percentile() -> None:
    assert percentile([], 50) is None
    assert percentile([3.0], 99) == 3.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == pytest.approx(2.5)
    assert percentile(list(map(float, range(101))), 99) == pytest.approx(99.0)


def test_plan_runs_every_scheduler_with_and_without_power() -> None:
    from energysched_lab.experiment.runner import ENERGY, KUBE, plan

    specs = plan([KUBE, ENERGY], ["normalized"], [0.5], [1, 2], [False, True])
    assert [(s.seed, s.scheduler, s.power) for s in specs] == [
        (1, KUBE, False),
        (1, ENERGY, False),
        (1, KUBE, True),
        (1, ENERGY, True),
        (2, KUBE, False),
        (2, ENERGY, False),
        (2, KUBE, True),
        (2, ENERGY, True),
    ]
    ids = {s.run_id("b") for s in specs}
    assert len(ids) == len(specs) and "b-ks-pm-s1" in ids and "b-es-normalized-w05-pm-s2" in ids
    # the default: without power management, as before
    assert all(not s.power for s in plan([KUBE], [], [], [1]))
