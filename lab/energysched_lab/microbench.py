"""Micro-benchmark of :func:`~energysched.core.framework.schedule_one` (prints figures).

``python -m energysched_lab.microbench [--decisions N]`` builds 1,000- and 5,000-node
clusters of thesis-like node classes (tvpc: i5 + GTX 1060, wyse: Celeron J4105,
rpi: Pi 2B, plus a few tainted control-plane and cordoned nodes), with existing
pods, live readings (some stale), recent binds, and times N decisions per
scoring mode on the fast path. It also times what the controller pays per
decision besides: one pod add + ``snapshot()``. Not a test: nothing asserts on time.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from energysched.contract import (
    PERFORMANCE_WEIGHT_ANNOTATION,
    SCORING_MODES,
    WORKLOAD_TYPE_LABEL,
    WORKLOAD_TYPES,
)
from energysched.core.framework import schedule_one
from energysched.core.params import ScheduleParams
from energysched.core.snapshot import ClusterSnapshot
from energysched.core.state import ClusterState
from energysched.core.values import (
    NodeInfo,
    NodeSelectorRequirement,
    NodeSelectorTerm,
    PodInfo,
    PowerReading,
    RecentBind,
    Taint,
    Toleration,
)
from energysched.kb.profiles import KnowledgeBase, ProfileSpec, WorkloadFigures

CLASS_LABEL = "node.kubernetes.io/instance-type"
ZONE_LABEL = "topology.kubernetes.io/zone"
GIB = 1 << 30

#: name: (idle W, cpu m, memory, gpus, {type: (performance, watts)})
CLASSES: dict[str, tuple[float, int, int, int, dict[str, tuple[float, float]]]] = {
    "tvpc": (
        25.0,
        4000,
        16 * GIB,
        1,
        {"training": (22036, 71), "inference": (9000, 60), "sequential": (800, 45)},
    ),
    "wyse": (
        6.5,
        4000,
        8 * GIB,
        0,
        {"training": (3000, 13.2), "inference": (900, 11), "sequential": (400, 9.5)},
    ),
    "rpi": (
        2.0,
        4000,
        1 * GIB,
        0,
        {"training": (1200, 3.5), "inference": (300, 3.2), "sequential": (120, 2.8)},
    ),
}


def knowledge_base() -> KnowledgeBase:
    return KnowledgeBase.of(
        ProfileSpec(
            name=name,
            node_selector={CLASS_LABEL: name},
            idle_power_watts=idle,
            workloads={wt: WorkloadFigures(p, w) for wt, (p, w) in figs.items()},  # type: ignore[misc]
        )
        for name, (idle, _, _, _, figs) in CLASSES.items()
    )


def cluster(n: int, now: datetime, rng: random.Random) -> ClusterState:
    state = ClusterState(knowledge_base())
    names = list(CLASSES)
    for i in range(n):
        cls = names[i % 3] if i % 50 else "unprofiled"
        idle, cpu, mem, gpus, _ = CLASSES.get(cls, (5.0, 8000, 32 * GIB, 0, {}))
        taints: tuple[Taint, ...] = ()
        if i % 97 == 0:
            taints = (Taint("node-role.kubernetes.io/control-plane", "", "NoSchedule"),)
        elif i % 31 == 0:
            taints = (Taint("energy.thesis.io/maintenance", "soon", "PreferNoSchedule"),)
        name = f"{cls}-{i:05d}"
        alloc = {"cpu": cpu, "memory": mem, "pods": 110, "ephemeral-storage": 50 * GIB}
        if gpus:
            alloc["nvidia.com/gpu"] = gpus
        state.upsert_node(
            NodeInfo(
                name=name,
                labels={
                    "kubernetes.io/hostname": name,
                    CLASS_LABEL: cls,
                    ZONE_LABEL: f"zone-{i % 4}",
                    "kubernetes.io/arch": "arm" if cls == "rpi" else "amd64",
                },
                allocatable=alloc,
                taints=taints,
                unschedulable=i % 211 == 0,
            )
        )
        for j in range(rng.randrange(0, 8)):
            state.add_pod(
                PodInfo(
                    name=f"existing-{i}-{j}",
                    uid=f"e-{i}-{j}",
                    node_name=name,
                    phase="Running",
                    requests={
                        "cpu": rng.choice((100, 250, 500)),
                        "memory": rng.choice((64, 256)) << 20,
                        "pods": 1,
                    },
                )
            )
        age = rng.choice((5, 10, 20, 30, 200))  # some stale
        watts = idle + rng.choice((0.5, 1.0, 2.0, 30.0))
        state.set_reading(name, PowerReading(watts, now - timedelta(seconds=age), "shelly"))
    for k in range(200):
        i = rng.randrange(n)
        cls = names[i % 3] if i % 50 else "unprofiled"
        state.record_bind(
            RecentBind(
                f"{cls}-{i:05d}", f"b-{k}", now - timedelta(seconds=3), rng.choice(WORKLOAD_TYPES)
            )
        )
    return state


def pods(count: int, rng: random.Random) -> list[PodInfo]:
    out = []
    for k in range(count):
        wt = rng.choice(WORKLOAD_TYPES)
        selector = {ZONE_LABEL: f"zone-{k % 4}"} if k % 5 == 0 else {}
        affinity = None
        if k % 7 == 0:
            affinity = (
                NodeSelectorTerm(
                    (NodeSelectorRequirement("kubernetes.io/arch", "In", ("amd64",)),)
                ),
            )
        requests = {"cpu": rng.choice((250, 500, 1000)), "memory": 512 << 20, "pods": 1}
        if wt == "training" and k % 3 == 0:
            requests["nvidia.com/gpu"] = 1
        out.append(
            PodInfo(
                name=f"pod-{k}",
                uid=f"p-{k}",
                labels={WORKLOAD_TYPE_LABEL: wt},
                annotations={PERFORMANCE_WEIGHT_ANNOTATION: f"{rng.random():.2f}"},
                scheduler_name="energy-scheduler",
                requests=requests,
                node_selector=selector,
                required_affinity=affinity,
                tolerations=(Toleration(key="energy.thesis.io/maintenance", operator="Exists"),)
                if k % 2
                else (),
            )
        )
    return out


def _percentiles(samples: list[float]) -> str:
    q = statistics.quantiles(samples, n=100, method="inclusive")
    return f"p50 {q[49] * 1e3:6.3f} ms  p99 {q[98] * 1e3:6.3f} ms  max {max(samples) * 1e3:6.3f} ms"


#: The clock of the decision timings: wall (perf_counter) or this thread's CPU time, which a
#: busy machine does not inflate (a wait for a core is not counted), so two runs compare.
CLOCKS: dict[str, Callable[[], float]] = {"wall": time.perf_counter, "cpu": time.thread_time}


def _time_decisions(
    workload: list[PodInfo],
    snap: ClusterSnapshot,
    params: ScheduleParams,
    clock: Callable[[], float],
) -> list[float]:
    out = []
    for p in workload:
        t0 = clock()
        schedule_one(p, snap, params)
        out.append(clock() - t0)
    return out


def _time_assume_and_snapshot(
    state: ClusterState,
    extra: list[PodInfo],
    names: tuple[str, ...],
    now: datetime,
    rng: random.Random,
    clock: Callable[[], float],
) -> list[float]:
    """What the controller pays per decision besides schedule_one."""
    out = []
    for p in extra:
        node = names[rng.randrange(len(names))]
        t0 = clock()
        state.assume(p, node, now)
        state.snapshot(now)
        out.append(clock() - t0)
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--decisions", type=int, default=300, help="decisions per size and mode")
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000])
    ap.add_argument(
        "--knowledge",
        choices=("spec", "learned"),
        default="spec",
        help="learned: the modes read learned figures (UCB exploration 0.5), and the cost "
        "of one learned update (new knowledge base + table re-resolve) is timed too",
    )
    ap.add_argument(
        "--clock",
        choices=tuple(CLOCKS),
        default="wall",
        help="cpu: time each decision in this thread's CPU time, for comparisons on a "
        "machine that is busy with other work",
    )
    args = ap.parse_args(argv)
    clock = CLOCKS[args.clock]
    print(f"clock: {args.clock}")
    now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    for n in args.sizes:
        rng = random.Random(n)
        t0 = time.perf_counter()
        state = cluster(n, now, rng)
        if args.knowledge == "learned":
            state.set_knowledge_base(_learned(knowledge_base(), 0))
        snap: ClusterSnapshot = state.snapshot(now)
        build = time.perf_counter() - t0
        workload = pods(args.decisions, rng)
        print(f"{n} nodes (cluster build incl. table {build * 1e3:.0f} ms)")
        for mode in SCORING_MODES:
            params = ScheduleParams(mode=mode)
            for p in workload[:20]:  # warm label-index caches
                schedule_one(p, snap, params)
            samples = _time_decisions(workload, snap, params, clock)
            print(f"  schedule_one {mode:<11} {_percentiles(samples)}")
        extra = pods(args.decisions, random.Random(1))
        samples = _time_assume_and_snapshot(state, extra, snap.table.names, now, rng, clock)
        print(f"  assume + snapshot()      {_percentiles(samples)}")
        if args.knowledge == "learned":
            updates = []
            for k in range(20):
                t0 = clock()
                state.set_knowledge_base(_learned(knowledge_base(), k + 1))
                state.snapshot(now)
                updates.append(clock() - t0)
            print(f"  learned update (kb+table) {_percentiles(updates)}")


def _learned(kb: KnowledgeBase, salt: int) -> KnowledgeBase:
    """Every profile's figures learned from 30 observations (x1.1 perf, x0.9 power)."""
    from energysched.learning.estimate import Estimator
    from energysched.learning.knowledge import learned_knowledge_base
    from energysched.learning.observe import Observation

    est = Estimator()
    for p in kb.profiles.values():
        for wt, fig in p.workloads.items():
            for i in range(30):
                est.add(
                    Observation(
                        "x/y",
                        "n",
                        p.name,
                        wt,
                        float(salt * 100 + i),
                        100.0,
                        fig.performance * 1.1,
                        fig.power_watts * 0.9,
                        100.0,
                        0.0,
                        0,
                    ),
                    kb,
                )
    return learned_knowledge_base(kb, est.learned(kb), exploration=0.5)


if __name__ == "__main__":
    main()
