"""The offline optimum is optimal on small cases (checked by brute force)."""

from __future__ import annotations

import itertools
import random

import pytest

from energysched_lab.experiment.engine import simulate
from energysched_lab.experiment.jobs import Job
from energysched_lab.experiment.optimum import Objective, _milp, candidates, outcome, solve
from energysched_lab.experiment.scenario import Truth
from tests.unit.lab.experiment_helpers import job, node_class, truth

CLASSES = [node_class("a"), node_class("b"), node_class("c")]
NODES = {"a": "a", "b": "b", "c": "c"}


def random_truth(rng: random.Random) -> Truth:
    def fig(res: str, demand: float) -> tuple[float, float, str, float]:
        return (rng.uniform(0.5, 5.0), rng.uniform(0, 60), res, demand)

    nodes = {}
    for n in NODES:
        idle = rng.uniform(1, 40)
        figs = {
            "sequential": fig("cpu", 0.25),
            "training": fig("cpu", 1.0),
            "inference": fig("cpu", 1.0),
        }
        nodes[n] = (idle, {k: (p, idle + w, r, d) for k, (p, w, r, d) in figs.items()})
    return truth(**nodes)


def chain(rng: random.Random, name: str = "w", arrival: float = 0.0) -> list[Job]:
    return [
        job(f"{name}-p", "sequential", rng.uniform(1, 20), arrival=arrival),
        job(f"{name}-t", "training", rng.uniform(1, 20), after=f"{name}-p", arrival=arrival),
        job(f"{name}-i", "inference", rng.uniform(1, 20), after=f"{name}-t", arrival=arrival),
    ]


def brute_force_chain(t: Truth, jobs: list[Job]) -> tuple[float, float]:
    """Independent of the engine: a chain's energy is idle x sum(d) + sum(dynamic)."""
    idle = sum(n.idle_watts for n in t.nodes.values())
    best_e = best_t = float("inf")
    for combo in itertools.product(NODES, repeat=len(jobs)):
        d = dyn = 0.0
        for j, n in zip(jobs, combo, strict=True):
            f = t.nodes[n].workloads[j.workload_type]
            dj = j.work / (f.performance * j.speed_noise)
            d += dj
            dyn += dj * (f.power_watts - t.nodes[n].idle_watts)
        best_e = min(best_e, idle * d + dyn)
        best_t = min(best_t, d)
    return best_e, best_t


@pytest.mark.parametrize("seed", range(8))
def test_thesis_shaped_chain_optimum_equals_brute_force(seed: int) -> None:
    rng = random.Random(seed)
    t = random_truth(rng)
    jobs = chain(rng)
    e_opt = solve(t, NODES, CLASSES, jobs, "energy")
    t_opt = solve(t, NODES, CLASSES, jobs, "makespan")
    assert e_opt is not None and t_opt is not None
    assert e_opt.kind == t_opt.kind == "exact"
    best_e, best_t = brute_force_chain(t, jobs)
    assert e_opt.energy_j == pytest.approx(best_e)
    assert t_opt.makespan_s == pytest.approx(best_t)
    # The MILP is exact on a single chain, too.
    cand = candidates(t, NODES, CLASSES, jobs)
    assert _milp(t, NODES, jobs, cand, "energy", 10).energy_j == pytest.approx(best_e, rel=1e-6)
    assert _milp(t, NODES, jobs, cand, "makespan", 10).makespan_s == pytest.approx(best_t, rel=1e-6)


@pytest.mark.parametrize("seed", range(5))
def test_concurrent_workflows_bound_is_below_every_placement(seed: int) -> None:
    rng = random.Random(100 + seed)
    t = random_truth(rng)
    jobs = chain(rng, "w0") + chain(rng, "w1", arrival=rng.uniform(0, 5))
    exact = solve(t, NODES, CLASSES, jobs, "energy")
    assert exact is not None and exact.kind == "exact"  # 3^6 = 729 placements
    every = [
        outcome(t, NODES, simulate(t, NODES, jobs, dict(zip([j.id for j in jobs], c, strict=True))))
        for c in itertools.product(NODES, repeat=len(jobs))
    ]
    assert exact.energy_j == pytest.approx(min(o.energy_j for o in every))
    cand = candidates(t, NODES, CLASSES, jobs)
    objectives: tuple[Objective, ...] = ("energy", "makespan")
    for objective in objectives:
        bound = _milp(t, NODES, jobs, cand, objective, 10)
        assert bound.kind == "lower bound"
        assert bound.feasible is not None
        if objective == "energy":
            assert bound.energy_j <= min(o.energy_j for o in every) + 1e-6
            assert bound.feasible.energy_j >= exact.energy_j - 1e-6
        else:
            assert bound.makespan_s <= min(o.makespan_s for o in every) + 1e-6


def test_a_job_that_fits_no_node_has_no_optimum() -> None:
    t = truth(a=(1.0, {"sequential": (1.0, 2.0, "cpu", 0.25)}))
    assert solve(t, {"a": "a"}, [node_class("a")], [job("x", "training", 1.0)], "energy") is None
