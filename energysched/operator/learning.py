"""The operator's learner: node readings and finished pods in, learned figures and pod energy out.

Why the operator collects the observations, not the scheduler: it is the one writer of
EnergyProfile status (one instance, no race between scheduler replicas, and a standby
scheduler learns nothing it could not read back), it learns from every finished pod
whoever placed it (kube-scheduler's too), and the scheduler's decision path stays free
of that work. The scheduler only reads ``status.learned`` (``knowledge: learned``).

No I/O here: :class:`Collector` keeps bounded per-node memories (the published readings
of the last ``keep_seconds``, the pods that ran there) and turns each finished pod into
an observation (``energysched.learning.observe``) for the estimator, and into its energy
(``energysched.learning.attribute``) for the pod annotation, the Event and the counter;
``runtime.py`` does the writing. Every rejection is counted by reason.
"""

from __future__ import annotations

import math
from collections import OrderedDict, deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from energysched.contract import (
    POWER_SOURCE_ANNOTATION,
    # A node's power state: anything but "awake" during a run means a sleep interrupted it.
    POWER_STATE_ANNOTATION,
    POWER_STATE_SINCE_ANNOTATION,
    WORKLOAD_TYPES,
    WorkloadType,
)
from energysched.core.errors import InputError
from energysched.core.parse import parse_node, parse_power_reading
from energysched.kb.profiles import KnowledgeBase
from energysched.learning.attribute import PodEnergy, PodRun, attribute
from energysched.learning.estimate import Estimator, LearnConfig
from energysched.learning.observe import (
    FinishedRun,
    Neighbour,
    Observation,
    ObserveConfig,
    Rejected,
    finished_run,
    observe,
    posix_seconds,
    sharing_model,
)
from energysched.learning.status import learned_block

#: Pod annotation the operator writes on a finished pod: its energy in joules
#: (dynamic + idle share), e.g. ``"1234.5"``; and how it was split.
POD_ENERGY_ANNOTATION: Final = "energy.thesis.io/energy-joules"
POD_ENERGY_DETAIL_ANNOTATION: Final = "energy.thesis.io/energy-detail"


@dataclass
class _NodeMemory:
    labels: Mapping[str, str]
    demand: Mapping[Any, tuple[str, float]]
    readings: deque[tuple[float, float]] = field(default_factory=lambda: deque(maxlen=20_000))
    #: (since, awake?) transitions of the power state, bounded.
    states: deque[tuple[float, bool]] = field(default_factory=lambda: deque(maxlen=1000))
    #: pod uid -> (workload type, start, end or inf)
    pods: dict[str, tuple[str | None, float, float]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Finished:
    """What one finished pod gave: its observation or why not, and its energy."""

    namespace: str
    name: str
    uid: str
    workload_type: str | None
    outcome: Observation | Rejected
    energy: PodEnergy | None


class Collector:
    def __init__(
        self,
        observe_cfg: ObserveConfig | None = None,
        learn_cfg: LearnConfig | None = None,
        keep_seconds: float = 3 * 86400.0,
    ) -> None:
        self.cfg = observe_cfg or ObserveConfig()
        self.estimator = Estimator(learn_cfg)
        self.keep_seconds = keep_seconds
        self.nodes: dict[str, _NodeMemory] = {}
        #: uids already turned into a result (bounded, oldest forgotten first).
        self._done: OrderedDict[str, None] = OrderedDict()
        self.rejections: dict[str, int] = {}
        self.observations = 0
        self.bad_readings = 0

    def _count(self, reason: str) -> None:
        self.rejections[reason] = self.rejections.get(reason, 0) + 1

    # -- nodes -------------------------------------------------------------------------

    def on_node(self, body: Mapping[str, Any]) -> None:
        node = parse_node(body)
        if isinstance(node, InputError):
            return
        mem = self.nodes.get(node.name)
        demand = sharing_model(
            node.allocatable.get("cpu", 1000) / 1000.0, node.allocatable.get("nvidia.com/gpu", 0)
        )
        if mem is None:
            mem = self.nodes[node.name] = _NodeMemory(node.labels, demand)
        else:
            mem.labels, mem.demand = node.labels, demand
        reading = parse_power_reading(node)
        if isinstance(reading, InputError):
            self.bad_readings += 1
        elif reading is not None and node.annotations.get(POWER_SOURCE_ANNOTATION) != "model":
            # A software model's estimate is not a measurement: learning from it would
            # teach the knowledge base its own figures back.
            ts = reading.timestamp.timestamp()
            if not mem.readings or ts > mem.readings[-1][0]:
                mem.readings.append((ts, reading.watts))
            while mem.readings and mem.readings[0][0] < ts - self.keep_seconds:
                mem.readings.popleft()
        state = node.annotations.get(POWER_STATE_ANNOTATION)
        if state is not None:
            awake = state in ("awake", "draining")  # draining: still running its pods
            # The first state seen is taken as the state since ever (nothing says otherwise);
            # a change dates from the node's latest reading (the annotation has no time here).
            now = mem.readings[-1][0] if mem.readings and mem.states else -math.inf
            since = posix_seconds(node.annotations.get(POWER_STATE_SINCE_ANNOTATION))
            if since is not None and mem.states:
                now = since
            if not mem.states or mem.states[-1][1] != awake:
                mem.states.append((now, awake))

    def delete_node(self, name: str) -> None:
        self.nodes.pop(name, None)

    # -- pods --------------------------------------------------------------------------

    def on_pod(self, body: Mapping[str, Any], kb: KnowledgeBase) -> Finished | None:
        """Track a pod; when it has just finished, what it taught and its energy."""
        meta = body.get("metadata") or {}
        uid = str(meta.get("uid") or "")
        node = (body.get("spec") or {}).get("nodeName")
        if not uid or not isinstance(node, str) or node not in self.nodes or uid in self._done:
            return None
        mem = self.nodes[node]
        labels = meta.get("labels") or {}
        wt = labels.get("energy.thesis.io/workload-type")
        run = finished_run(body)
        if run is None:  # running: remember when it started, for its neighbours
            start = _start(body)
            if start is not None:
                mem.pods[uid] = (wt if isinstance(wt, str) else None, start, math.inf)
            return None
        self._done[uid] = None
        while len(self._done) > 100_000:
            self._done.popitem(last=False)
        if run.started is not None and run.finished is not None:
            mem.pods[uid] = (run.workload_type, run.started, run.finished)
        else:
            mem.pods.pop(uid, None)
        self._prune(mem)
        res = kb.resolve(mem.labels)
        neighbours = [Neighbour(w, s, e) for other, (w, s, e) in mem.pods.items() if other != uid]
        outcome = observe(
            run,
            res.profile.name if res else None,
            list(mem.readings),
            neighbours,
            self.cfg,
            awake=self._awake(mem),
            demand=mem.demand,
        )
        if isinstance(outcome, Observation):
            self.observations += 1
            for reason in outcome.partial:
                self._count(reason)
            self.estimator.add(outcome, kb)
        else:
            self._count(outcome.reason)
        energy = self._energy(run, uid, mem, kb) if res is not None else None
        return Finished(
            str(meta.get("namespace") or ""),
            str(meta.get("name") or ""),
            uid,
            run.workload_type,
            outcome,
            energy,
        )

    def forget_pod(self, body: Mapping[str, Any]) -> None:
        uid = str((body.get("metadata") or {}).get("uid") or "")
        node = (body.get("spec") or {}).get("nodeName")
        mem = self.nodes.get(node) if isinstance(node, str) else None
        if mem is not None:
            e = mem.pods.get(uid, (None, 0.0, 0.0))[2]
            if math.isinf(e):  # deleted while running: it ended now, as far as we know
                mem.pods.pop(uid, None)

    def _prune(self, mem: _NodeMemory) -> None:
        latest = max((e for _, _, e in mem.pods.values() if math.isfinite(e)), default=-math.inf)
        horizon = latest - self.keep_seconds
        for uid in [u for u, (_, _, e) in mem.pods.items() if e < horizon]:
            del mem.pods[uid]
        if len(mem.pods) > 5000:  # a bound whatever the clocks say
            for uid in list(mem.pods)[: len(mem.pods) - 5000]:
                del mem.pods[uid]

    @staticmethod
    def _awake(mem: _NodeMemory) -> list[tuple[float, float]] | None:
        if not mem.states:
            return None
        out: list[tuple[float, float]] = []
        for i, (since, awake) in enumerate(mem.states):
            until = mem.states[i + 1][0] if i + 1 < len(mem.states) else math.inf
            if awake:
                out.append((since, until))
        return out

    def _energy(
        self, run: FinishedRun, uid: str, mem: _NodeMemory, kb: KnowledgeBase
    ) -> PodEnergy | None:
        if run.started is None or run.finished is None or run.finished <= run.started:
            return None
        learned = self.estimator.learned(kb)
        res = kb.resolve(mem.labels)
        if res is None:
            return None
        profile = res.profile
        runs = []
        idle = profile.idle_power_watts
        for other, (w, s, e) in mem.pods.items():
            if e <= run.started or s >= run.finished:
                continue
            wt = _typed(w)
            got = learned.get((profile.name, wt)) if wt is not None else None
            fig = profile.workloads.get(wt) if wt is not None else None
            # An untyped or unprofiled neighbour: modelled at the profile's highest draw.
            watts = (
                got.power_watts
                if got
                else fig.power_watts
                if fig
                else max((f.power_watts for f in profile.workloads.values()), default=idle)
            )
            runs.append(PodRun(other, wt, max(s, run.started), min(e, run.finished), watts - idle))
        shares = attribute(runs, list(mem.readings), idle, self.cfg.max_reading_gap_s, mem.demand)
        return shares.get(uid)

    # -- status ------------------------------------------------------------------------

    def learned_blocks(self, kb: KnowledgeBase) -> dict[str, dict[str, Any] | None]:
        """``status.learned`` of every profile in use (None: nothing learned, or reset)."""
        self.estimator.sync(kb)
        return {name: learned_block(p, self.estimator) for name, p in kb.profiles.items()}


def _typed(w: str | None) -> WorkloadType | None:
    for wt in WORKLOAD_TYPES:
        if w == wt:
            return wt
    return None


def _start(body: Mapping[str, Any]) -> float | None:
    status = body.get("status") or {}
    starts = []
    for cs in status.get("containerStatuses") or ():
        running = ((cs or {}).get("state") or {}).get("running")
        if isinstance(running, Mapping):
            s = posix_seconds(running.get("startedAt"))
            if s is not None:
                starts.append(s)
    if starts:
        return min(starts)
    # No container state yet (or a simulated kubelet that writes none): the pod's start.
    return posix_seconds(status.get("startTime"))
