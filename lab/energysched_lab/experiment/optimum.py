"""The offline optimum: the best placement knowing the truth and the whole workload.

Two objectives: least cluster energy (idle included, over the run) and least
makespan. A placement is a node per job; every job starts the moment it is
released (arrival, or its predecessor's end) — the same rule the live runs follow,
where scheduling takes no simulated time.

- Small problems (at most ``ENUMERATION_LIMIT`` placements, e.g. the thesis workflow:
  3 stages on 3 nodes = 27) are solved **exactly** by simulating every placement.
- Larger ones get a **lower bound** from a MILP relaxation solved by HiGHS
  (``scipy.optimize.milp``): binary x[j,n] (job j on node n), makespan T with
  T >= arrival + sum of the chain's durations (every workflow) and
  T >= first arrival + sum over a node resource of demand x duration (a resource
  cannot do more than one unit of demand-time per second under the sharing model);
  cluster energy = total idle power x T + sum of the jobs' dynamic energy, which
  is exact because a job's dynamic energy does not depend on sharing. The MILP
  ignores the order of jobs on a node, so its value is a bound, never above the
  true optimum. The MILP's placement, simulated, gives a feasible upper bound.

With power management (``sleep=True``) nodes whose truth has ``powerStates`` may sleep:
the bound lets every such node sleep whenever it runs nothing, at no cost and with no
delay (ideal sleep: no wake energy, no wake time, no hysteresis). A node then draws its
sleep power over the whole horizon plus (idle - sleep) while busy; its busy time is at
least the demand-time of its jobs on each resource (and each job's duration). Ideal
sleep is never reachable, so even an enumerated placement gives a **lower bound** then.

``horizon_s``: a scenario measured over a fixed horizon (a day) counts the cluster's
energy until the later of the makespan and the horizon, as the live runs do.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from energysched.core.quantity import parse_quantity
from energysched_lab.cluster.nodes import NodeClass
from energysched_lab.experiment.engine import Finished, simulate
from energysched_lab.experiment.jobs import Job
from energysched_lab.experiment.scenario import Truth

ENUMERATION_LIMIT = 20_000
Objective = Literal["energy", "makespan"]


@dataclass(frozen=True)
class Outcome:
    energy_j: float
    makespan_s: float


@dataclass(frozen=True)
class Optimum:
    objective: Objective
    kind: Literal["exact", "lower bound"]
    method: str
    energy_j: float
    makespan_s: float
    placement: dict[str, str] | None
    #: Lower bounds only: the bound's placement simulated (a schedule that exists).
    feasible: Outcome | None = None

    @property
    def label(self) -> str:
        return f"{self.kind} ({self.method})"


def outcome(
    truth: Truth,
    node_classes: dict[str, str],
    finished: Sequence[Finished],
    *,
    sleep: bool = False,
    horizon_s: float = 0.0,
) -> Outcome:
    """Cluster energy over [0, max(makespan, horizon)] and the makespan of a finished
    schedule; with ``sleep``, nodes that can sleep do so, ideally, whenever idle."""
    makespan = max((f.end for f in finished), default=0.0)
    span = max(makespan, horizon_s)
    energy = 0.0
    for node, cls in node_classes.items():
        nt = truth.nodes[cls]
        if sleep and nt.power is not None:
            busy = _union([(f.start, f.end) for f in finished if f.node == node])
            energy += nt.power.sleep_watts * span + (nt.idle_watts - nt.power.sleep_watts) * busy
        else:
            energy += nt.idle_watts * span
    for f in finished:
        fig = truth.nodes[node_classes[f.node]].workloads[f.job.workload_type]
        energy += dynamic_joules(
            f.job, fig.performance, fig.power_watts, truth, node_classes[f.node]
        )
    return Outcome(energy, makespan)


def _union(intervals: list[tuple[float, float]]) -> float:
    """The length of the union of intervals."""
    total, end = 0.0, -math.inf
    for a, b in sorted(intervals):
        if b <= end:
            continue
        total += b - max(a, end)
        end = b
    return total


def dynamic_joules(job: Job, performance: float, power: float, truth: Truth, cls: str) -> float:
    return job.work / (performance * job.speed_noise) * (power - truth.nodes[cls].idle_watts)


def _fits(job: Job, cls: NodeClass) -> bool:
    def alloc(name: str) -> float:
        raw = cls.allocatable.get(name)
        return float(parse_quantity(raw)) if raw is not None else 0.0

    return (
        parse_quantity(job.cpu) <= alloc("cpu")
        and parse_quantity(job.memory) <= alloc("memory")
        and job.gpu <= alloc("nvidia.com/gpu")
    )


def candidates(
    truth: Truth, node_classes: dict[str, str], classes: Sequence[NodeClass], jobs: Sequence[Job]
) -> dict[str, list[str]]:
    """Per job the nodes it can run on: the truth has figures and its requests fit."""
    by_name = {c.name: c for c in classes}
    out: dict[str, list[str]] = {}
    for j in jobs:
        out[j.id] = [
            n
            for n, c in sorted(node_classes.items())
            if j.workload_type in truth.nodes[c].workloads and _fits(j, by_name[c])
        ]
    return out


def _key(o: Outcome, objective: Objective) -> tuple[float, float]:
    return (o.energy_j, o.makespan_s) if objective == "energy" else (o.makespan_s, o.energy_j)


def solve(
    truth: Truth,
    node_classes: dict[str, str],
    classes: Sequence[NodeClass],
    jobs: Sequence[Job],
    objective: Objective,
    *,
    time_limit_s: float = 20.0,
    sleep: bool = False,
    horizon_s: float = 0.0,
) -> Optimum | None:
    """The optimum (exact) or a labelled lower bound; None when some job fits nowhere."""
    cand = candidates(truth, node_classes, classes, jobs)
    if any(not c for c in cand.values()):
        return None
    sleep = sleep and objective == "energy"
    count = math.prod(len(c) for c in cand.values())
    if count <= ENUMERATION_LIMIT:
        return _enumerate(truth, node_classes, jobs, cand, objective, count, sleep, horizon_s)
    return _milp(truth, node_classes, jobs, cand, objective, time_limit_s, sleep, horizon_s)


def _enumerate(
    truth: Truth,
    node_classes: dict[str, str],
    jobs: Sequence[Job],
    cand: dict[str, list[str]],
    objective: Objective,
    count: int,
    sleep: bool = False,
    horizon_s: float = 0.0,
) -> Optimum:
    ids = [j.id for j in jobs]
    best: tuple[tuple[float, float], Outcome, dict[str, str]] | None = None
    for combo in itertools.product(*(cand[i] for i in ids)):
        placement = dict(zip(ids, combo, strict=True))
        o = outcome(
            truth,
            node_classes,
            simulate(truth, node_classes, jobs, placement),
            sleep=sleep,
            horizon_s=horizon_s,
        )
        k = _key(o, objective)
        if best is None or k < best[0]:
            best = (k, o, placement)
    assert best is not None
    if sleep:
        return Optimum(
            objective,
            "lower bound",
            f"all {count} placements simulated, nodes asleep whenever idle at no cost",
            best[1].energy_j,
            best[1].makespan_s,
            best[2],
        )
    return Optimum(
        objective,
        "exact",
        f"all {count} placements simulated",
        best[1].energy_j,
        best[1].makespan_s,
        best[2],
    )


def _milp(
    truth: Truth,
    node_classes: dict[str, str],
    jobs: Sequence[Job],
    cand: dict[str, list[str]],
    objective: Objective,
    time_limit_s: float,
    sleep: bool = False,
    horizon_s: float = 0.0,
) -> Optimum:
    from scipy.optimize import Bounds, LinearConstraint, milp

    pairs = [(j, n) for j in jobs for n in cand[j.id]]
    nx = len(pairs)
    t_col = nx  # the makespan variable (the horizon, when it is longer)
    # With ideal sleep: one busy-time variable per node that can sleep.
    sleepers = (
        sorted(n for n, c in node_classes.items() if truth.nodes[c].power is not None)
        if sleep
        else []
    )
    b_col = {n: nx + 1 + i for i, n in enumerate(sleepers)}
    nv = nx + 1 + len(sleepers)
    dur = np.empty(nx)
    dyn = np.empty(nx)
    for k, (j, n) in enumerate(pairs):
        fig = truth.nodes[node_classes[n]].workloads[j.workload_type]
        dur[k] = j.work / (fig.performance * j.speed_noise)
        dyn[k] = dur[k] * (fig.power_watts - truth.nodes[node_classes[n]].idle_watts)
    idle_of = {n: truth.nodes[c].idle_watts for n, c in node_classes.items()}
    sleep_of = {
        n: p.sleep_watts
        for n, c in node_classes.items()
        if n in b_col and (p := truth.nodes[c].power) is not None
    }
    # Watts drawn over the whole horizon: idle, or sleep power for a node that can sleep.
    base = sum(sleep_of.get(n, idle_of[n]) for n in node_classes)
    c = np.zeros(nv)
    if objective == "energy":
        c[:nx] = dyn
        c[t_col] = base
        for n, col in b_col.items():
            c[col] = idle_of[n] - sleep_of[n]
    else:
        c[t_col] = 1.0
    rows: list[np.ndarray] = []
    lo: list[float] = []
    hi: list[float] = []
    by_job: dict[str, list[int]] = {}
    for k, (j, _) in enumerate(pairs):
        by_job.setdefault(j.id, []).append(k)
    for ks in by_job.values():  # each job on exactly one node
        r = np.zeros(nv)
        r[ks] = 1.0
        rows.append(r)
        lo.append(1.0)
        hi.append(1.0)
    # Chains: T - sum(durations of the chain) >= arrival of its first job.
    succ = {j.after: j for j in jobs if j.after is not None}
    for head in (j for j in jobs if j.after is None):
        r = np.zeros(nv)
        r[t_col] = 1.0
        cur: Job | None = head
        while cur is not None:
            for k in by_job[cur.id]:
                r[k] = -dur[k]
            cur = succ.get(cur.id)
        rows.append(r)
        lo.append(head.arrival_s)
        hi.append(math.inf)
    # Capacity: T - sum(demand x duration on a node resource) >= first arrival; and a
    # sleeping node's busy time B_n >= the same demand-time, and >= each job's duration.
    first = min(j.arrival_s for j in jobs)
    groups: dict[tuple[str, str], list[int]] = {}
    demand = np.empty(nx)
    for k, (j, n) in enumerate(pairs):
        fig = truth.nodes[node_classes[n]].workloads[j.workload_type]
        groups.setdefault((n, fig.resource), []).append(k)
        demand[k] = fig.demand
    for (n, _), ks in groups.items():
        r = np.zeros(nv)
        r[t_col] = 1.0
        r[ks] = -demand[ks] * dur[ks]
        rows.append(r)
        lo.append(first)
        hi.append(math.inf)
        if n in b_col:
            r = np.zeros(nv)
            r[b_col[n]] = 1.0
            r[ks] = -demand[ks] * dur[ks]
            rows.append(r)
            lo.append(0.0)
            hi.append(math.inf)
            for k in ks:
                r = np.zeros(nv)
                r[b_col[n]] = 1.0
                r[k] = -dur[k]
                rows.append(r)
                lo.append(0.0)
                hi.append(math.inf)
    integrality = np.zeros(nv)
    integrality[:nx] = 1
    t_low = horizon_s if objective == "energy" else 0.0
    lower = np.zeros(nv)
    lower[t_col] = t_low
    res = milp(
        c,
        constraints=LinearConstraint(np.array(rows), np.array(lo), np.array(hi)),
        integrality=integrality,
        bounds=Bounds(lower, np.r_[np.ones(nx), np.full(nv - nx, np.inf)]),
        options={"time_limit": time_limit_s, "mip_rel_gap": 1e-6},
    )
    if res.x is None:
        raise RuntimeError(f"HiGHS found no solution: {res.message}")
    x = res.x
    placement = {j.id: n for k, (j, n) in enumerate(pairs) if x[k] > 0.5}
    # The bound is the solver's dual bound when it stopped early, else the optimum of
    # the relaxation; the energy and makespan of that solution.
    t_val = float(x[t_col])
    e_val = (
        float(c @ x)
        if objective == "energy"
        else float(sum(idle_of.values()) * max(t_val, horizon_s) + dyn @ x[:nx])
    )
    bound = float(getattr(res, "mip_dual_bound", np.nan))
    proven = res.status == 0
    if objective == "energy" and not proven and math.isfinite(bound):
        e_val = min(e_val, bound)
    if objective == "makespan" and not proven and math.isfinite(bound):
        t_val = min(t_val, bound)
    feasible = outcome(
        truth,
        node_classes,
        simulate(truth, node_classes, jobs, placement),
        sleep=bool(b_col),
        horizon_s=horizon_s,
    )
    if objective == "energy" and horizon_s > 0:
        t_val = feasible.makespan_s  # T is the horizon then, not a makespan
    status = "optimal" if proven else f"stopped: {res.message}"
    how = "MILP relaxation ignoring the order on a node"
    if b_col:
        how += ", nodes asleep whenever idle at no cost"
    return Optimum(
        objective,
        "lower bound",
        f"{how}, HiGHS {status}",
        e_val,
        t_val,
        placement,
        feasible,
    )
