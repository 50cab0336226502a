"""Measure the monitor's API write rate for a large simulated cluster (not a timed test).

    python -m energysched_lab.monitor_writes --nodes 1000 --minutes 30

Two scenarios on simulated time (no sleeping, no API server; a recording
NodeAnnotator counts the patches):

* ``model``: the real :class:`ModelMonitor` serving N KWOK nodes while pods start
  and finish at random (Poisson arrivals, 1 to 10 minute runs, mixed workload
  types and CPU requests), one tick per poll interval.
* ``daemonset``: N independent :class:`NodeTracker` (one per DaemonSet pod, each
  polling at its own phase) fed plug-like readings: the model power plus 2 %
  measurement noise.

It prints writes per second (mean and the worst 1 s and 60 s windows) next to the
bounds the design promises: heartbeat-only ``N / heartbeat``, per-node ceiling
``N / min_interval``, and in the model mode the process-wide budget.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import heapq
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

import structlog

from energysched.contract import KWOK_NODE_ANNOTATION, WORKLOAD_TYPE_LABEL, WORKLOAD_TYPES
from energysched.kb.profiles import KnowledgeBase, ProfileSpec, WorkloadFigures
from energysched_monitor.config import ConfigStore, MonitorConfig
from energysched_monitor.failures import Backoff
from energysched_monitor.interfaces import NodeInfo, PodInfo
from energysched_monitor.metrics import Metrics
from energysched_monitor.power_model import model_power
from energysched_monitor.power_model_monitor import ModelMonitor
from energysched_monitor.readings import PhysicalRange, Reading
from energysched_monitor.tracker import NodeTracker, Reporter

CLASSES: Mapping[str, tuple[float, tuple[float, float, float], float]] = {
    # class: (idle W, (training, inference, sequential) W, allocatable cores)
    "tvpc": (38.0, (145.0, 120.0, 70.0), 4.0),
    "wyse": (6.5, (13.2, 11.0, 9.5), 4.0),
    "rpi": (2.1, (4.0, 3.6, 3.1), 4.0),
}


def profiles() -> KnowledgeBase:
    specs = []
    for name, (idle, powers, _) in CLASSES.items():
        figures = {
            wt: WorkloadFigures(100.0, p) for wt, p in zip(WORKLOAD_TYPES, powers, strict=True)
        }
        specs.append(
            ProfileSpec(
                name=name,
                node_selector=MappingProxyType({"energy.thesis.io/class": name}),
                idle_power_watts=idle,
                workloads=MappingProxyType(figures),
            )
        )
    return KnowledgeBase.of(specs)


@dataclass
class SimCluster:
    """Nodes and pods on simulated time; implements the ClusterView Protocol."""

    n: int
    rng: random.Random
    arrivals_per_node_per_min: float = 0.5
    node_list: list[NodeInfo] = field(default_factory=list)
    running: dict[str, list[tuple[float, PodInfo]]] = field(default_factory=dict)
    kb: KnowledgeBase = field(default_factory=profiles)

    def __post_init__(self) -> None:
        names = list(CLASSES)
        for i in range(self.n):
            cls = names[i % len(names)]
            self.node_list.append(
                NodeInfo(
                    f"kwok-{i:04d}",
                    labels=MappingProxyType({"energy.thesis.io/class": cls, "type": "kwok"}),
                    annotations=MappingProxyType({KWOK_NODE_ANNOTATION: "fake"}),
                    allocatable=MappingProxyType({"cpu": round(1000 * CLASSES[cls][2])}),
                )
            )
        self.running = {node.name: [] for node in self.node_list}

    def advance(self, now: float, dt: float) -> None:
        """Finish due pods and start new ones during (now - dt, now]."""
        rate = self.arrivals_per_node_per_min / 60.0 * dt
        for node in self.node_list:
            pods = [(end, p) for end, p in self.running[node.name] if end > now]
            if self.rng.random() < rate:
                wt = self.rng.choice(WORKLOAD_TYPES)
                cpu = self.rng.choice((0.5, 1.0, 2.0, 4.0))
                pod = PodInfo(
                    f"p{self.rng.getrandbits(32)}",
                    "sim",
                    labels=MappingProxyType({WORKLOAD_TYPE_LABEL: wt}),
                    node_name=node.name,
                    phase="Running",
                    requests=MappingProxyType({"pods": 1, "cpu": round(1000 * cpu)}),
                )
                pods.append((now + self.rng.uniform(60, 600), pod))
            self.running[node.name] = pods

    def has_synced(self) -> bool:
        return True

    def nodes(self) -> Iterable[NodeInfo]:
        return self.node_list

    def pods_on_node(self, node: str) -> Iterable[PodInfo]:
        return [p for _, p in self.running[node]]

    def knowledge_base(self) -> KnowledgeBase:
        return self.kb


class SimClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class CountingAnnotator:
    def __init__(self, clock: SimClock) -> None:
        self.clock = clock
        self.times: list[float] = []

    async def patch_node_annotations(
        self, node: str, annotations: Mapping[str, str | None]
    ) -> None:
        self.times.append(self.clock.now)


@dataclass(frozen=True)
class Result:
    scenario: str
    nodes: int
    seconds: float
    times: Sequence[float]  # sorted write times
    warmup: float  # every node's first write (start-up) falls before this

    @property
    def writes(self) -> int:
        return len(self.times)

    @property
    def rate(self) -> float:
        return self.writes / self.seconds

    @property
    def steady_rate(self) -> float:
        lo = bisect.bisect_left(self.times, self.warmup)
        return (len(self.times) - lo) / (self.seconds - self.warmup)

    def peak(self, window: float, steady: bool = True) -> int:
        """The most writes in any ``window`` seconds (after the warm-up if ``steady``)."""
        best, start = 0, self.warmup if steady else 0.0
        while start + window <= self.seconds:
            lo = bisect.bisect_left(self.times, start)
            best = max(best, bisect.bisect_left(self.times, start + window) - lo)
            start += window / 4
        return best


def _quiet_logs() -> None:
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(40),  # errors only
        processors=[structlog.processors.JSONRenderer()],
    )


async def run_model(
    n: int, seconds: float, config: MonitorConfig, seed: int, arrivals: float = 0.5
) -> Result:
    clock = SimClock()
    cluster = SimCluster(n, random.Random(seed), arrivals)
    annotator = CountingAnnotator(clock)
    store = ConfigStore(None, config)
    log = structlog.get_logger("writebench")

    async def sleep(seconds: float) -> None:  # simulated: time passes, nothing waits
        clock.now += seconds
        await asyncio.sleep(0)  # let the patch tasks run "now"

    monitor = ModelMonitor(
        cluster,
        annotator,
        store,
        Reporter(Metrics(), log, quiet_ready=True),
        log,
        clock=clock,
        wall=clock,
        sleep=sleep,
    )
    step = config.poll_interval_seconds
    t = 0.0
    while t < seconds:
        clock.now = t
        cluster.advance(t, step)
        await monitor.tick(t + step)
        t += step
    return Result(
        "model", n, seconds, sorted(annotator.times), 2 * config.publish.heartbeat_seconds
    )


def run_daemonset(
    n: int, seconds: float, config: MonitorConfig, seed: int, arrivals: float = 0.5
) -> Result:
    rng = random.Random(seed)
    cluster = SimCluster(n, random.Random(seed + 1), arrivals)
    step = config.poll_interval_seconds
    trackers = {
        node.name: NodeTracker(
            node.name,
            policy=config.publish,
            backoff=Backoff(step, config.max_backoff_seconds),
            physical=PhysicalRange(),
            gap_seconds=config.gap_seconds,
            now=0.0,
        )
        for node in cluster.node_list
    }
    # every monitor starts within one poll interval (the worst case: a cluster-wide
    # restart), then polls every interval +-10 % as NodeMonitor.run does
    queue = [(rng.uniform(0, step), name) for name in trackers]
    heapq.heapify(queue)
    infos = {node.name: node for node in cluster.node_list}
    times: list[float] = []
    advanced = 0.0
    while queue and queue[0][0] < seconds:
        now, name = heapq.heappop(queue)
        while advanced + step <= now:
            advanced += step
            cluster.advance(advanced, step)
        tracker, info = trackers[name], infos[name]
        resolution = cluster.kb.resolve(info.labels)
        assert resolution is not None
        true = model_power(
            resolution.profile, cluster.pods_on_node(name), info.allocatable.get("cpu")
        )
        measured = max(0.0, rng.gauss(true.watts, 0.02 * true.watts))
        obs = tracker.observe(Reading(measured, "shelly"), now, now)
        if obs.publish is not None:
            tracker.published(measured, now)
            times.append(now)
        heapq.heappush(queue, (now + obs.next_delay * rng.uniform(0.9, 1.1), name))
    times.sort()
    return Result("daemonset", n, seconds, times, 2 * config.publish.heartbeat_seconds)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m energysched_lab.monitor_writes")
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--minutes", type=float, default=30.0, help="simulated time")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--arrivals", type=float, default=0.5, help="pod starts per node per minute"
    )
    parser.add_argument("--scenario", choices=("model", "daemonset", "both"), default="both")
    args = parser.parse_args(argv)
    _quiet_logs()
    config = MonitorConfig()
    seconds = args.minutes * 60
    results = []
    if args.scenario in ("model", "both"):
        results.append(
            asyncio.run(run_model(args.nodes, seconds, config, args.seed, args.arrivals))
        )
    if args.scenario in ("daemonset", "both"):
        results.append(run_daemonset(args.nodes, seconds, config, args.seed, args.arrivals))
    p = config.publish
    print(
        f"policy: poll {config.poll_interval_seconds:g} s, change >= max({p.absolute_watts:g} W, "
        f"{p.relative_change:.0%}), min interval {p.min_interval_seconds:g} s, heartbeat "
        f"{p.heartbeat_seconds:g} s +-{p.heartbeat_jitter:.0%}, model-mode budget "
        f"{config.max_writes_per_second:g}/s burst {config.write_burst}"
    )
    print(
        f"bounds for {args.nodes} nodes: heartbeat-only {args.nodes / p.heartbeat_seconds:.1f}/s, "
        f"per-node ceiling {args.nodes / p.min_interval_seconds:.1f}/s"
    )
    print(
        f"{'scenario':<10} {'nodes':>6} {'sim s':>7} {'writes':>8} {'mean/s':>7} "
        f"{'steady/s':>9} {'max 1s':>7} {'max 10s/s':>10} {'max 60s/s':>10} {'startup 1s':>11}"
    )
    for r in results:
        print(
            f"{r.scenario:<10} {r.nodes:>6} {r.seconds:>7.0f} {r.writes:>8} {r.rate:>7.1f} "
            f"{r.steady_rate:>9.1f} {r.peak(1.0):>7} {r.peak(10.0) / 10:>10.1f} "
            f"{r.peak(60.0) / 60:>10.1f} {r.peak(1.0, steady=False):>11}"
        )
    print(
        "steady/max: after the first two heartbeats (start-up excluded); "
        "startup 1s: the worst second including every node's first write"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
