"""The learning experiment: ``knowledge: spec`` against ``learned``, judged by the truth.

In process, not on the local cluster: the core's own ``schedule_one`` places each job
the moment it is released (as the live runs do, scheduling takes no simulated time),
the truth's engine (``engine.ClusterSim``, the same sharing model and power as the live
simulator) runs it. A long scenario's learning curve needs thousands of decisions per
configuration; the KWOK cluster would take hours for what this does in seconds, and the
decisions are the same function's.

What the learner sees is what a real cluster shows (``energysched.learning``): each
finished pod's container start and finish **truncated to whole seconds** (as the API
gives them), its work annotation, the node's power as the monitor publishes it (every
change, plus a 30 s heartbeat), and the other pods on the node. Never the truth: the
truth only runs the jobs and judges the result. Time factor 1 (there is no wall clock).

Judged by:
- the **dynamic-energy ratio** of each job: its true energy above idle on the node
  chosen over the least any candidate node would take. A job's dynamic energy does not
  depend on sharing (kb/scenarios/README.md), so the sum of the per-job least is the
  exact optimum of the dynamic part; the learning curve is this ratio against the
  number of finished workflows;
- the **cluster ratio**: the run's energy (every node, idle included, over the makespan)
  over the optimum's (``optimum.solve``: exact or a labelled MILP lower bound);
- **attribution**: each pod's energy by ``learning.attribute`` from the published power
  against the truth's (its true dynamic energy + the idle power shared equally by time
  among the pods running), error per pod.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from energysched.contract import ScoringMode
from energysched.core.framework import schedule_one
from energysched.core.params import ScheduleParams
from energysched.core.parse import parse_node, parse_pod
from energysched.core.state import ClusterState
from energysched.core.values import NodeInfo, PodInfo, PowerReading
from energysched.kb.profiles import KnowledgeBase
from energysched.learning.attribute import PodRun, attribute
from energysched.learning.estimate import Estimator, LearnConfig
from energysched.learning.knowledge import learned_knowledge_base
from energysched.learning.observe import (
    FinishedRun,
    Neighbour,
    Observation,
    ObserveConfig,
    observe,
    sharing_model,
)
from energysched_lab.experiment.engine import ClusterSim, Finished
from energysched_lab.experiment.jobs import Job, instantiate
from energysched_lab.experiment.optimum import candidates, dynamic_joules, outcome, solve
from energysched_lab.experiment.scenario import Scenario, load_scenario
from energysched_lab.experiment.simulator import job_manifest

Knowledge = Literal["spec", "learned"]
#: The epoch of the in-process clock (the core wants aware datetimes).
T0 = 1_800_000_000.0
HEARTBEAT_S = 30.0


@dataclass
class JobResult:
    job: str
    workflow: int | None
    workload_type: str
    node: str
    best_node: str
    dynamic_j: float  # true, on the chosen node
    best_dynamic_j: float  # true, on the best candidate
    finished_order: int  # how many workflows had finished when it was placed
    attributed_j: float | None
    true_j: float


@dataclass
class RunResult:
    scenario: str
    seed: int
    knowledge: Knowledge
    mode: str
    weight: float
    exploration: float
    energy_j: float
    makespan_s: float
    optimum_j: float | None
    optimum_kind: str
    jobs: list[JobResult] = field(default_factory=list)
    rejections: dict[str, int] = field(default_factory=dict)
    observations: int = 0
    decision_ms: list[float] = field(default_factory=list)

    @property
    def cluster_ratio(self) -> float | None:
        return self.energy_j / self.optimum_j if self.optimum_j else None

    def dynamic_ratio(self, after_workflows: int = 0) -> float:
        js = [j for j in self.jobs if j.finished_order >= after_workflows]
        best = sum(j.best_dynamic_j for j in js)
        return sum(j.dynamic_j for j in js) / best if best > 0 else math.nan


def node_infos(scenario: Scenario) -> list[NodeInfo]:
    out = []
    for cls in scenario.node_classes:
        got = parse_node(cls.manifest(cls.name))
        if not isinstance(got, NodeInfo):
            raise ValueError(f"node class {cls.name}: {got}")
        out.append(got)
    return out


def pod_info(job: Job, node: str, weight: float, started: float) -> PodInfo:
    template = job_manifest(
        job, run_id="learning", scheduler_name="energy-scheduler", weight=weight, image="x"
    )["spec"]["template"]
    pod = {
        "metadata": {**template["metadata"], "name": job.id, "namespace": "lab", "uid": job.id},
        "spec": {**template["spec"], "nodeName": node},
        "status": {
            "phase": "Running" if node else "Pending",
            "startTime": datetime.fromtimestamp(started, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        },
    }
    got = parse_pod(pod)
    if not isinstance(got, PodInfo):
        raise ValueError(f"job {job.id}: {got}")
    return got


def _published(points: Sequence[tuple[float, float]], until: float) -> list[tuple[float, float]]:
    """The monitor's view of a power step function: each change, plus a heartbeat."""
    out: list[tuple[float, float]] = []
    for i, (t, w) in enumerate(points):
        nxt = points[i + 1][0] if i + 1 < len(points) else until
        k = 0
        while t + k * HEARTBEAT_S < nxt or k == 0:
            out.append((T0 + t + k * HEARTBEAT_S, round(w, 2)))
            k += 1
    return out


class Learner:
    """What the operator does with finished pods (observe, estimate), in process."""

    def __init__(self, kb: KnowledgeBase, nodes: Sequence[NodeInfo], exploration: float) -> None:
        self.spec = kb
        self.estimator = Estimator(LearnConfig())
        self.cfg = ObserveConfig()
        self.exploration = exploration
        self.demand = {
            n.name: sharing_model(
                n.allocatable.get("cpu", 1000) / 1000.0, n.allocatable.get("nvidia.com/gpu", 0)
            )
            for n in nodes
        }
        self.labels = {n.name: n.labels for n in nodes}
        self.rejections: dict[str, int] = {}
        self.observations: list[Observation] = []

    def knowledge_base(self) -> KnowledgeBase:
        return learned_knowledge_base(
            self.spec, self.estimator.learned(self.spec), self.exploration
        )

    def finished(
        self,
        f: Finished,
        others: Sequence[Finished | tuple[Job, str, float]],
        readings: Sequence[tuple[float, float]],
    ) -> None:
        run = FinishedRun(
            key=f"lab/{f.job.id}",
            node=f.node,
            workload_type=f.job.workload_type,
            work_raw=f"{f.job.work:.6g}",
            phase="Succeeded",
            started=float(math.floor(T0 + f.start)),
            finished=float(math.floor(T0 + f.end)),
            reasons=("Completed",),
            exit_codes=(0,),
        )
        neighbours = []
        for o in others:
            if isinstance(o, Finished):
                neighbours.append(
                    Neighbour(o.job.workload_type, math.floor(T0 + o.start), math.floor(T0 + o.end))
                )
            else:
                neighbours.append(Neighbour(o[0].workload_type, math.floor(T0 + o[2]), math.inf))
        res = self.spec.resolve(self.labels[f.node])
        got = observe(
            run,
            res.profile.name if res else None,
            readings,
            neighbours,
            self.cfg,
            demand=self.demand[f.node],
        )
        if isinstance(got, Observation):
            for reason in got.partial:
                self.rejections[reason] = self.rejections.get(reason, 0) + 1
            self.observations.append(got)
            self.estimator.add(got, self.spec)
        else:
            self.rejections[got.reason] = self.rejections.get(got.reason, 0) + 1


def run_one(
    scenario: Scenario,
    seed: int,
    knowledge: Knowledge,
    *,
    mode: ScoringMode = "cluster-energy",
    weight: float = 0.0,
    exploration: float = 0.0,
    optimum: bool = True,
) -> RunResult:
    jobs = instantiate(scenario, seed)
    by_id = {j.id: j for j in jobs}
    nodes = node_infos(scenario)
    node_classes = {n.name: n.name for n in nodes}
    truth = scenario.truth
    sim = ClusterSim(truth, node_classes)
    kb = scenario.knowledge_base
    state = ClusterState(kb)
    for n in nodes:
        state.upsert_node(n)
    learner = Learner(kb, nodes, exploration)
    params = ScheduleParams(mode=mode, default_weight=weight)
    cand = candidates(truth, node_classes, scenario.node_classes, jobs)

    released = sorted(((j.arrival_s, j.id) for j in jobs if j.after is None), reverse=True)
    waiting_on: dict[str, list[str]] = {}
    for j in jobs:
        if j.after is not None:
            waiting_on.setdefault(j.after, []).append(j.id)
    running: dict[str, tuple[Job, str, float]] = {}
    history: dict[str, list[Finished]] = {n.name: [] for n in nodes}
    workflows_done = 0
    stages_left: dict[int, int] = {}
    for j in jobs:
        if j.workflow is not None:
            stages_left[j.workflow] = stages_left.get(j.workflow, 0) + 1
    placed_at_order: dict[str, int] = {}
    decision_ms: list[float] = []

    def publish(node: str) -> None:
        w = sim.nodes[node].watts()
        state.set_reading(node, PowerReading(w, datetime.fromtimestamp(T0 + sim.t, UTC), "model"))

    for n in nodes:
        publish(n.name)
    while released or sim.busy():
        nxt = sim.next_completion()
        if released and (nxt is None or released[-1][0] <= nxt[0]):
            t, jid = released.pop()
            t = max(t, sim.t)
            sim.advance(t)
            job = by_id[jid]
            pod = pod_info(job, "", weight, T0 + t)
            t_cpu = time.process_time()
            d = schedule_one(pod, state.snapshot(datetime.fromtimestamp(T0 + t, UTC)), params)
            decision_ms.append((time.process_time() - t_cpu) * 1000)
            node = d.node
            if node is None:
                raise RuntimeError(f"{jid}: no node: {d.message}")
            sim.start(job, node, t)
            running[jid] = (job, node, t)
            state.add_pod(pod_info(job, node, weight, T0 + t))
            placed_at_order[jid] = workflows_done
            publish(node)
            continue
        assert nxt is not None
        for f in sim.complete_until(nxt[0]):
            running.pop(f.job.id, None)
            state.remove_pod(f.job.id)
            publish(f.node)
            end = T0 + f.end
            readings = _published(sim.nodes[f.node].power, sim.t)
            others: list[Finished | tuple[Job, str, float]] = [
                o for o in history[f.node] if o.end > f.start and o.start < f.end
            ]
            others += [r for r in running.values() if r[1] == f.node and r[2] < f.end]
            learner.finished(f, others, [r for r in readings if r[0] <= end + HEARTBEAT_S])
            history[f.node].append(f)
            if knowledge == "learned":
                state.set_knowledge_base(learner.knowledge_base())
            if f.job.workflow is not None:
                stages_left[f.job.workflow] -= 1
                if stages_left[f.job.workflow] == 0:
                    workflows_done += 1
            for succ in waiting_on.get(f.job.id, []):
                released.append((f.end, succ))
            released.sort(reverse=True)

    out = outcome(truth, node_classes, sim.finished)
    opt = (
        solve(truth, node_classes, scenario.node_classes, jobs, "energy", time_limit_s=30)
        if optimum
        else None
    )
    result = RunResult(
        scenario=scenario.name,
        seed=seed,
        knowledge=knowledge,
        mode=mode,
        weight=weight,
        exploration=exploration,
        energy_j=out.energy_j,
        makespan_s=out.makespan_s,
        optimum_j=opt.energy_j if opt else None,
        optimum_kind=opt.label if opt else "none",
        rejections=learner.rejections,
        observations=len(learner.observations),
        decision_ms=decision_ms,
    )
    _judge(result, scenario, sim, learner, cand, placed_at_order)
    return result


def _judge(
    result: RunResult,
    scenario: Scenario,
    sim: ClusterSim,
    learner: Learner,
    cand: dict[str, list[str]],
    placed_at_order: dict[str, int],
) -> None:
    truth = scenario.truth
    spec = learner.spec
    by_node: dict[str, list[Finished]] = {}
    for f in sim.finished:
        by_node.setdefault(f.node, []).append(f)
    true_j: dict[str, float] = {}
    attributed: dict[str, float | None] = {}
    for node, fs in by_node.items():
        idle = truth.nodes[node].idle_watts
        # The truth: each job's own dynamic energy + the idle power shared by time.
        cuts = sorted({t for f in fs for t in (f.start, f.end)})
        share = {f.job.id: 0.0 for f in fs}
        for a, b in itertools.pairwise(cuts):
            mid = (a + b) / 2
            on = [f for f in fs if f.start <= mid < f.end]
            for f in on:
                share[f.job.id] += idle * (b - a) / len(on)
        for f in fs:
            fig = truth.nodes[node].workloads[f.job.workload_type]
            true_j[f.job.id] = (
                dynamic_joules(f.job, fig.performance, fig.power_watts, truth, node)
                + share[f.job.id]
            )
        # The method: the plug's power, split by the learned model, idle from the empty node.
        learned = learner.knowledge_base()
        res = learned.resolve(learner.labels[node])
        runs = []
        for f in fs:
            figs = res.profile.workloads.get(f.job.workload_type) if res else None
            dyn = (figs.power_watts - res.profile.idle_power_watts) if figs and res else 0.0
            runs.append(PodRun(f.job.id, f.job.workload_type, T0 + f.start, T0 + f.end, dyn))
        idle_seen = _idle_seen(sim, node, fs)
        if idle_seen is None:
            res_spec = spec.resolve(learner.labels[node])
            idle_seen = res_spec.profile.idle_power_watts if res_spec else 0.0
        published = _published(sim.nodes[node].power, sim.t)
        shares = attribute(runs, published, idle_seen, 90.0, learner.demand[node])
        for key, pe in shares.items():
            attributed[key] = pe.joules if pe else None
    for f in sim.finished:
        j = f.job
        best = math.inf
        best_node = f.node
        for n in cand[j.id]:
            fig = truth.nodes[n].workloads[j.workload_type]
            e = dynamic_joules(j, fig.performance, fig.power_watts, truth, n)
            if e < best:
                best, best_node = e, n
        fig = truth.nodes[f.node].workloads[j.workload_type]
        result.jobs.append(
            JobResult(
                job=j.id,
                workflow=j.workflow,
                workload_type=j.workload_type,
                node=f.node,
                best_node=best_node,
                dynamic_j=dynamic_joules(j, fig.performance, fig.power_watts, truth, f.node),
                best_dynamic_j=best,
                finished_order=placed_at_order[j.id],
                attributed_j=attributed.get(j.id),
                true_j=true_j[j.id],
            )
        )


def _idle_seen(sim: ClusterSim, node: str, fs: Sequence[Finished]) -> float | None:
    """The node's published power while it ran nothing (its learned idle), if ever seen."""
    points = sim.nodes[node].power
    total, span = 0.0, 0.0
    for i, (t, w) in enumerate(points):
        nxt = points[i + 1][0] if i + 1 < len(points) else sim.t
        if nxt <= t:
            continue
        mid = (t + nxt) / 2
        if not any(f.start <= mid < f.end for f in fs):
            total += round(w, 2) * (nxt - t)
            span += nxt - t
    return total / span if span > 0 else None


def _pct(values: Sequence[float], q: float) -> float:
    s = sorted(values)
    if not s:
        return math.nan
    k = min(len(s) - 1, max(0, math.ceil(q * len(s)) - 1))
    return s[k]


def summary(results: Sequence[RunResult], after: int) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    keys = sorted({(r.scenario, r.knowledge, r.mode, r.exploration) for r in results})
    for scen, kn, mode, expl in keys:
        rs = [
            r
            for r in results
            if (r.scenario, r.knowledge, r.mode, r.exploration) == (scen, kn, mode, expl)
        ]
        errors = [
            abs(j.attributed_j - j.true_j) / j.true_j
            for r in rs
            for j in r.jobs
            if j.attributed_j is not None and j.true_j > 0
        ]
        cluster = [r.cluster_ratio for r in rs if r.cluster_ratio is not None]
        rows.append(
            {
                "scenario": scen,
                "knowledge": kn,
                "mode": mode,
                "exploration": expl,
                "seeds": [r.seed for r in rs],
                "cluster_ratio_mean": statistics.fmean(cluster) if cluster else None,
                "cluster_ratio_per_seed": cluster,
                "optimum": rs[0].optimum_kind,
                "dynamic_ratio_all": statistics.fmean(r.dynamic_ratio(0) for r in rs),
                f"dynamic_ratio_after_{after}": statistics.fmean(
                    r.dynamic_ratio(after) for r in rs
                ),
                "attribution_p50": _pct(errors, 0.5),
                "attribution_p99": _pct(errors, 0.99),
                "attributed_pods": len(errors),
                "observations": sum(r.observations for r in rs),
                "rejections": {
                    k: sum(r.rejections.get(k, 0) for r in rs)
                    for k in sorted({k for r in rs for k in r.rejections})
                },
                "decision_ms_p50": _pct([x for r in rs for x in r.decision_ms], 0.5),
            }
        )
    return rows


def plot(results: Sequence[RunResult], out: Path) -> list[Path]:
    """Learning curves: cumulative dynamic-energy ratio against finished workflows."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    for scen in sorted({r.scenario for r in results}):
        fig, ax = plt.subplots(figsize=(7, 4))
        for kn, colour in (("spec", "tab:red"), ("learned", "tab:blue")):
            rs = [r for r in results if r.scenario == scen and r.knowledge == kn]
            for i, r in enumerate(rs):
                order = sorted(r.jobs, key=lambda j: j.finished_order)
                xs: list[int] = []
                ys: list[float] = []
                for k in sorted({j.finished_order for j in order}):
                    js = [j for j in order if j.finished_order == k]
                    best = sum(j.best_dynamic_j for j in js)
                    if best > 0:
                        xs.append(k)
                        ys.append(sum(j.dynamic_j for j in js) / best)
                ax.plot(xs, ys, color=colour, alpha=0.6, label=kn if i == 0 else None)
        ax.axhline(1.0, color="black", lw=0.8)
        ax.set_xlabel("workflows finished when the job was placed")
        ax.set_ylabel("dynamic energy / least possible")
        ax.set_title(f"{scen}: spec vs learned (simulated)")
        ax.legend()
        p = out / f"learning_curve_{scen}.png"
        fig.tight_layout()
        fig.savefig(p, dpi=100)
        plt.close(fig)
        paths.append(p)
    return paths


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m energysched_lab.experiment.learning")
    ap.add_argument("--scenario", action="append", required=True, type=Path)
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--mode", default="cluster-energy")
    ap.add_argument("--weight", type=float, default=0.0)
    ap.add_argument("--exploration", type=float, default=0.0)
    ap.add_argument("--after", type=int, default=20, help="workflows learned from")
    ap.add_argument("--out", type=Path, default=Path("results/learning"))
    ap.add_argument("--no-optimum", action="store_true")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    results = []
    for path in args.scenario:
        scenario = load_scenario(path)
        for seed in (int(s) for s in args.seeds.split(",")):
            for kn in ("spec", "learned"):
                r = run_one(
                    scenario,
                    seed,
                    kn,
                    mode=args.mode,
                    weight=args.weight,
                    exploration=args.exploration if kn == "learned" else 0.0,
                    optimum=not args.no_optimum,
                )
                results.append(r)
                print(
                    f"{scenario.name} seed {seed} {kn}: cluster ratio "
                    f"{r.cluster_ratio if r.cluster_ratio else float('nan'):.4f} "
                    f"({r.optimum_kind}), dynamic ratio {r.dynamic_ratio(0):.4f}, after "
                    f"{args.after}: {r.dynamic_ratio(args.after):.4f}",
                    flush=True,
                )
    rows = summary(results, args.after)
    (args.out / "summary.json").write_text(json.dumps(rows, indent=2, default=str))
    (args.out / "runs.json").write_text(
        json.dumps([{**asdict(r), "decision_ms": []} for r in results], default=str)
    )
    for p in plot(results, args.out):
        print(f"plot: {p}")
    json.dump(rows, sys.stdout, indent=2, default=str)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
