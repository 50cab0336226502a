"""The ground truth in motion: jobs progressing on nodes, and the power each node draws.

Pure and event-driven (no clock, no I/O): the live simulator feeds it the moments
pods are bound, the offline optimum feeds it a placement; both get the same
durations and the same power.

The sharing model (documented in kb/scenarios/README.md): a job of workload type T
on node class N occupies ``demand`` (0..1] of one node resource ``resource``
(truth.yaml, e.g. training on a GPU node: ``gpu``, 1.0; sequential: ``cpu``, 0.25,
one core of four). While the demands on a resource sum to D <= 1 every job runs at
full speed; above, each runs at speed 1/D (processor sharing). A job at speed s
progresses at ``s x performance x noise`` work units per second and adds
``s x (powerWatts - idle)`` to the node's power. Hence a job's dynamic energy,
``work / (performance x noise) x (powerWatts - idle)``, does not depend on
sharing; sharing only stretches time, and with it the idle energy of the cluster.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from energysched_lab.experiment.jobs import Job
from energysched_lab.experiment.scenario import NodeTruth, Truth, WorkTruth

EPS = 1e-9


class NoTruth(LookupError):
    """The truth has no figures for this workload type on this node class: it cannot run."""


class NodeAsleep(NoTruth):
    """A job was bound to a node that is not on (a race the power manager must prevent)."""


#: What a node's power supply sees: on (idle or working), falling asleep (idle power, no
#: work), asleep (sleep power), waking (the wake's energy spread over its duration).
PowerMode = Literal["on", "falling", "asleep", "waking"]


@dataclass
class Running:
    job: Job
    node: str
    figures: WorkTruth
    start: float
    remaining: float  # work units
    speed: float = 1.0  # sharing factor

    @property
    def rate(self) -> float:
        return self.speed * self.figures.performance * self.job.speed_noise


@dataclass
class NodeState:
    name: str
    truth: NodeTruth
    running: dict[str, Running] = field(default_factory=dict)
    #: Step function of wall power: (time s, watts from then on).
    power: list[tuple[float, float]] = field(default_factory=list)
    mode: PowerMode = "on"

    def watts(self) -> float:
        figures = self.truth.power
        if self.mode == "asleep" and figures is not None:
            return figures.sleep_watts
        if self.mode == "waking" and figures is not None:
            return figures.wake_watts
        return self.truth.idle_watts + sum(
            r.speed * (r.figures.power_watts - self.truth.idle_watts) for r in self.running.values()
        )


@dataclass(frozen=True)
class Finished:
    job: Job
    node: str
    start: float
    end: float


class ClusterSim:
    def __init__(self, truth: Truth, node_classes: dict[str, str], t0: float = 0.0) -> None:
        """``node_classes``: node name -> node class (a key of ``truth.nodes``)."""
        self.t = t0
        self.nodes: dict[str, NodeState] = {}
        for node, cls in sorted(node_classes.items()):
            if cls not in truth.nodes:
                raise NoTruth(f"truth.yaml has no node class {cls!r} (node {node})")
            st = NodeState(node, truth.nodes[cls])
            st.power.append((t0, st.watts()))
            self.nodes[node] = st
        self.finished: list[Finished] = []

    def figures(self, job: Job, node: str) -> WorkTruth:
        fig = self.nodes[node].truth.workloads.get(job.workload_type)
        if fig is None:
            raise NoTruth(
                f"truth.yaml has no {job.workload_type} figures for node class "
                f"{self.nodes[node].truth.node_class} (node {node}): the job cannot run there"
            )
        return fig

    def advance(self, t: float) -> None:
        """Progress every running job to time ``t`` (no completion is processed here)."""
        dt = t - self.t
        if dt < -EPS:
            raise ValueError(f"time goes backwards: {t} < {self.t}")
        if dt > 0:
            for st in self.nodes.values():
                for r in st.running.values():
                    r.remaining = max(0.0, r.remaining - r.rate * dt)
            self.t = t

    def _reshare(self, st: NodeState) -> None:
        totals: dict[str, float] = {}
        for r in st.running.values():
            totals[r.figures.resource] = totals.get(r.figures.resource, 0.0) + r.figures.demand
        for r in st.running.values():
            r.speed = 1.0 / max(1.0, totals[r.figures.resource])
        w = st.watts()
        if st.power and abs(st.power[-1][0] - self.t) < EPS:
            st.power[-1] = (self.t, w)
            if len(st.power) > 1 and abs(st.power[-2][1] - w) < EPS:
                st.power.pop()
        elif not st.power or abs(st.power[-1][1] - w) > EPS:
            st.power.append((self.t, w))

    def set_mode(self, node: str, mode: PowerMode, t: float) -> None:
        """From ``t`` on, ``node`` is in power ``mode`` (its power step function follows)."""
        st = self.nodes[node]
        if mode != "on" and st.running:
            raise NodeAsleep(f"node {node} runs {len(st.running)} job(s): it cannot go {mode}")
        if mode != "on" and st.truth.power is None:
            raise NodeAsleep(f"truth.yaml has no powerStates for node class {st.truth.node_class}")
        self.advance(t)
        st.mode = mode
        self._reshare(st)

    def start(self, job: Job, node: str, t: float) -> None:
        self.advance(t)
        fig = self.figures(job, node)
        st = self.nodes[node]
        if st.mode != "on":
            raise NodeAsleep(f"bound to node {node} while it is {st.mode}: the job cannot run")
        st.running[job.id] = Running(job, node, fig, t, job.work)
        self._reshare(st)

    def next_completion(self) -> tuple[float, str] | None:
        best: tuple[float, str] | None = None
        for st in self.nodes.values():
            for r in st.running.values():
                t = self.t + r.remaining / r.rate
                if best is None or t < best[0] - EPS:
                    best = (t, r.job.id)
        return best

    def complete_until(self, t: float) -> list[Finished]:
        """Process every completion up to ``t`` in order; advance to ``t``."""
        done: list[Finished] = []
        while True:
            nxt = self.next_completion()
            if nxt is None or nxt[0] > t + EPS:
                break
            self.advance(max(self.t, nxt[0]))
            for st in self.nodes.values():
                ended = [
                    jid
                    for jid, r in st.running.items()
                    if r.remaining <= EPS * max(1.0, r.job.work)
                ]
                for jid in ended:
                    r = st.running.pop(jid)
                    f = Finished(r.job, st.name, r.start, self.t)
                    self.finished.append(f)
                    done.append(f)
                if ended:
                    self._reshare(st)
        self.advance(max(self.t, t))
        return done

    def busy(self) -> bool:
        return any(st.running for st in self.nodes.values())


def simulate(
    truth: Truth, node_classes: dict[str, str], jobs: Iterable[Job], placement: dict[str, str]
) -> list[Finished]:
    """Offline: every job starts on its placed node the moment it is released."""
    sim = ClusterSim(truth, node_classes)
    pending = {j.id: j for j in jobs}
    released = sorted(
        ((j.arrival_s, j.id) for j in pending.values() if j.after is None), reverse=True
    )
    waiting_on: dict[str, list[str]] = {}
    for j in pending.values():
        if j.after is not None:
            waiting_on.setdefault(j.after, []).append(j.id)
    while released or sim.busy():
        nxt = sim.next_completion()
        if released and (nxt is None or released[-1][0] <= nxt[0]):
            t, jid = released.pop()
            sim.start(pending[jid], placement[jid], max(t, sim.t))
            continue
        assert nxt is not None
        for f in sim.complete_until(nxt[0]):
            for succ in waiting_on.get(f.job.id, []):
                released.append((f.end, succ))
            released.sort(reverse=True)
    return sim.finished
