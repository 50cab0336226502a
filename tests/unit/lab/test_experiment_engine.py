"""The engine: durations from the truth, the sharing model, power as a step function."""

from __future__ import annotations

import pytest

from energysched_lab.experiment.accounting import PowerTrace
from energysched_lab.experiment.engine import ClusterSim, NoTruth, simulate
from tests.unit.lab.experiment_helpers import job, truth

T = truth(
    a=(10.0, {"sequential": (2.0, 20.0, "cpu", 0.25), "training": (4.0, 50.0, "cpu", 1.0)}),
    b=(1.0, {"sequential": (1.0, 3.0, "cpu", 0.25)}),
)
NODES = {"a": "a", "b": "b"}


def test_one_job_alone_runs_work_over_performance_at_its_power() -> None:
    done = simulate(T, NODES, [job("j", "training", 40.0, noise=0.8)], {"j": "a"})
    assert done[0].end == pytest.approx(40.0 / (4.0 * 0.8))


def test_chain_starts_each_stage_when_the_previous_ends() -> None:
    jobs = [job("p", "sequential", 6.0), job("t", "training", 8.0, after="p")]
    done = {f.job.id: f for f in simulate(T, NODES, jobs, {"p": "b", "t": "a"})}
    assert done["p"].end == pytest.approx(6.0)
    assert done["t"].start == pytest.approx(6.0)
    assert done["t"].end == pytest.approx(8.0)


def test_sharing_below_capacity_is_free_above_it_slows_everyone_but_not_dynamic_energy() -> None:
    four = [job(f"s{i}", "sequential", 2.0) for i in range(4)]
    done = simulate(T, NODES, four, dict.fromkeys((j.id for j in four), "a"))
    assert all(f.end == pytest.approx(1.0) for f in done)  # 4 x 0.25 of the cpu: full speed
    two = [job("x", "training", 4.0), job("y", "training", 4.0)]
    sim = ClusterSim(T, NODES)
    sim.start(two[0], "a", 0.0)
    sim.start(two[1], "a", 0.0)
    assert sim.nodes["a"].watts() == pytest.approx(10 + 0.5 * 40 + 0.5 * 40)
    done2 = sim.complete_until(100.0)
    assert [f.end for f in done2] == pytest.approx([2.0, 2.0])  # twice the 1 s alone
    trace = PowerTrace("a", 10.0, tuple(sim.nodes["a"].power), 2.0)
    # dynamic energy = 2 jobs x 1 s x 40 W whether they share or not
    assert trace.energy() - 10.0 * 2.0 == pytest.approx(80.0)


def test_power_steps_up_on_start_and_back_to_idle_on_end() -> None:
    sim = ClusterSim(T, NODES)
    sim.start(job("j", "sequential", 2.0), "b", 1.0)
    sim.complete_until(10.0)
    assert sim.nodes["b"].power == [(0.0, 1.0), (1.0, 3.0), (3.0, 1.0)]


def test_a_node_without_truth_for_the_type_cannot_run_it() -> None:
    sim = ClusterSim(T, NODES)
    with pytest.raises(NoTruth, match="no training figures for node class b"):
        sim.start(job("j", "training", 1.0), "b", 0.0)
