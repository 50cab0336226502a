"""The simulator on the local cluster: the truth decides how long pods run and what nodes draw.

Either scheduler binds the run's pods to KWOK nodes; nothing runs in them. The
simulator watches the pods and, when one is bound, starts its job in the
:class:`~energysched_lab.experiment.engine.ClusterSim` at the simulated moment of
the bind. When the engine says a job is done (its work at the truth's speed, with
the sharing model when the node is busy), the pod's ``simulated-duration``
annotation is set to ``0s`` and KWOK completes it. Every change of a node's power
is published as the monitor publishes it (``current-watts`` and its timestamp,
wall-clock UTC), so ``hybrid`` reacts to the truth.

Simulated time runs at 1 / ``time_factor`` of wall time, and **stands still while
a submitted pod waits for its first scheduling attempt**: the schedulers' latency
on a busy machine (tens of milliseconds to seconds) would otherwise become
simulated minutes and decide the comparison. A pod that was tried and found
unschedulable (PodScheduled=False) lets the clock run while it waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from energysched import contract
from energysched.kube.client import JSON, ApiError, KubeClient, api_path
from energysched.kube.reflector import EventType, Reflector
from energysched_lab.experiment.engine import ClusterSim, Finished, NoTruth
from energysched_lab.experiment.jobs import JOB_LABEL, RUN_LABEL, STAGE_LABEL, Job
from energysched_lab.experiment.scenario import Truth
from energysched_lab.experiment.tracelist import affinity

if TYPE_CHECKING:
    from energysched_lab.experiment.powersim import PowerManagerSim

#: The workflow's image (mlworkflow); on KWOK nodes it is never pulled.
DEFAULT_IMAGE = "registry.local/energysched-mlworkflow:0.1.0"
POWER_SOURCE = "simulated-truth"
KUBE_SCHEDULER = "default-scheduler"


class SimClock:
    """Simulated seconds since the run's start; paused while ``holds`` > 0."""

    def __init__(self, time_factor: float) -> None:
        self.factor = time_factor
        self._base = 0.0
        self._wall = time.monotonic()
        self.holds = 0

    def now(self) -> float:
        if self.holds:
            return self._base
        return self._base + (time.monotonic() - self._wall) / self.factor

    def hold(self, at: float | None = None) -> None:
        """Stop the clock; at ``at`` (a moment already passed) when given."""
        if not self.holds:
            now = self.now()
            self._base = now if at is None else min(at, now)
        self.holds += 1

    def release(self) -> None:
        self.holds -= 1
        if not self.holds:
            self._wall = time.monotonic()

    def wall_until(self, t: float) -> float:
        """Wall seconds until simulated time ``t`` (inf while held)."""
        if self.holds:
            return float("inf")
        return max(0.0, (t - self.now()) * self.factor)


@dataclass
class JobRecord:
    job: Job
    status: str = "waiting"  # waiting, submitted, running, succeeded, unschedulable, failed
    reason: str = ""
    pod: str | None = None
    node: str | None = None
    start: float | None = None
    end: float | None = None
    holding: bool = False
    submitted_wall: float = 0.0
    #: When the job was released (its arrival, or its predecessor's end).
    released: float | None = None


@dataclass
class RunOutcome:
    records: list[JobRecord]
    power: dict[str, list[tuple[float, float]]]  # node -> step function
    idle: dict[str, float]
    end: float  # simulated end of the run (the makespan when all finished)
    interrupted: bool = False
    notes: list[str] = field(default_factory=list)
    #: With power management: sleeps, wakes, failures, cycles per node and day, wake waits.
    power_summary: dict[str, Any] | None = None


def job_manifest(
    job: Job,
    *,
    run_id: str,
    scheduler_name: str,
    weight: float | None,
    image: str,
    work_scale: float = 1.0,
) -> dict[str, Any]:
    """The Job of one stage or trace job.

    Its pod declares its amount of work (``energy.thesis.io/work``), as a user
    would: cluster-energy predicts durations from it (the other modes ignore it).
    ``work_scale`` is the time factor in a simulation, so that the predicted
    seconds are wall seconds, the clock the scheduler sees; the ranking of the
    nodes does not depend on it.
    """
    labels = {
        contract.WORKLOAD_TYPE_LABEL: job.workload_type,
        RUN_LABEL: run_id,
        JOB_LABEL: job.id,
        STAGE_LABEL: job.stage,
    }
    annotations = {contract.WORK_ANNOTATION: f"{job.work * work_scale:.6g}"}
    if weight is not None:
        annotations[contract.PERFORMANCE_WEIGHT_ANNOTATION] = f"{weight:g}"
    requests: dict[str, Any] = {"cpu": job.cpu, "memory": job.memory}
    if job.gpu:
        requests["nvidia.com/gpu"] = str(job.gpu)
    requests.update(job.extra_requests)
    resources: dict[str, Any] = {"requests": requests}
    # Extended resources cannot be overcommitted: their limits equal their requests.
    limits = ({"nvidia.com/gpu": str(job.gpu)} if job.gpu else {}) | dict(job.extra_requests)
    if limits:
        resources["limits"] = limits
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": job.id, "labels": labels},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "metadata": {"labels": labels, "annotations": annotations},
                "spec": {
                    "schedulerName": scheduler_name,
                    "restartPolicy": "Never",
                    "terminationGracePeriodSeconds": 0,
                    **({"affinity": affinity(job.gpu_models)} if job.gpu_models else {}),
                    "containers": [
                        {
                            "name": job.stage[:63],
                            "image": image,
                            "args": [job.stage],
                            "resources": resources,
                        }
                    ],
                },
            },
        },
    }


def _unschedulable(pod: JSON) -> str | None:
    for c in (pod.get("status") or {}).get("conditions") or []:
        if c.get("type") == "PodScheduled" and c.get("status") == "False":
            return f"{c.get('reason', 'Unschedulable')}: {c.get('message', '')}".strip()
    return None


def _wake_asked(why: str) -> bool:
    """The scheduler wrote a wake request itself (cluster-energy chose a sleeping node)."""
    return why.startswith(f"{contract.WAITING_FOR_NODE_WAKE_REASON}:")


def format_timestamp(wall: float) -> str:
    return datetime.fromtimestamp(wall, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class PowerPublisher:
    """Writes a node's simulated wall power as the monitor does (annotations on the Node)."""

    def __init__(self, kube: KubeClient, heartbeat_s: float = 10.0) -> None:
        self.kube = kube
        self.heartbeat_s = heartbeat_s
        self.latest: dict[str, float] = {}
        self._dirty: asyncio.Event = asyncio.Event()
        self._published: dict[str, tuple[float, float]] = {}
        self.errors = 0

    def set(self, node: str, watts: float) -> None:
        self.latest[node] = watts
        self._dirty.set()

    async def _patch(self, node: str, watts: float) -> None:
        wall = time.time()
        try:
            await self.kube.patch(
                api_path("v1", "nodes", name=node),
                {
                    "metadata": {
                        "annotations": {
                            contract.CURRENT_WATTS_ANNOTATION: f"{watts:.2f}",
                            contract.CURRENT_WATTS_TIMESTAMP_ANNOTATION: format_timestamp(wall),
                            contract.POWER_SOURCE_ANNOTATION: POWER_SOURCE,
                        }
                    }
                },
            )
            self._published[node] = (watts, wall)
        except (TimeoutError, ApiError, OSError):
            self.errors += 1  # the next change or heartbeat writes it again

    async def flush(self) -> None:
        now = time.time()
        todo = [
            (n, w)
            for n, w in self.latest.items()
            if n not in self._published
            or abs(self._published[n][0] - w) > 0.005
            or now - self._published[n][1] > self.heartbeat_s
        ]
        await asyncio.gather(*(self._patch(n, w) for n, w in todo))

    async def run(self) -> None:
        while True:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._dirty.wait(), self.heartbeat_s / 2)
            self._dirty.clear()
            await self.flush()


class LiveRun:
    """One run of a workload on the live cluster, placed by ``scheduler_name``."""

    def __init__(
        self,
        kube: KubeClient,
        *,
        truth: Truth,
        node_classes: dict[str, str],
        jobs: list[Job],
        namespace: str,
        run_id: str,
        scheduler_name: str,
        weight: float | None,
        time_factor: float,
        image: str = DEFAULT_IMAGE,
        publisher: PowerPublisher | None = None,
        attempt_timeout_s: float = 60.0,
        stall_timeout_s: float = 120.0,
        progress: Callable[[int, int, float], None] | None = None,
        power: PowerManagerSim | None = None,
        horizon_s: float = 0.0,
    ) -> None:
        self.kube = kube
        #: The power manager (None: every node stays on, as without power management).
        self.power = power
        #: The run lasts at least this long (a day's scenario: the night counts too).
        self.horizon_s = horizon_s
        self.truth = truth
        self.node_classes = node_classes
        self.records = {j.id: JobRecord(j) for j in jobs}
        self.ns = namespace
        self.run_id = run_id
        self.scheduler_name = scheduler_name
        self.weight = weight
        self.clock = SimClock(time_factor)
        self.image = image
        self.publisher = publisher or PowerPublisher(kube)
        self.attempt_timeout_s = attempt_timeout_s
        self.stall_timeout_s = stall_timeout_s
        self.progress = progress
        self.sim = power.sim if power is not None else ClusterSim(truth, node_classes)
        if power is not None:
            power.attach(self)
        self._events: list[tuple[float, str, str, str]] = []  # (t, kind, job id, detail)
        self._wake = asyncio.Event()
        self._successors: dict[str, list[str]] = {}
        for j in jobs:
            if j.after is not None:
                self._successors.setdefault(j.after, []).append(j.id)
        self._release: dict[str, float] = {j.id: j.arrival_s for j in jobs if j.after is None}

    # -- pod events (quick, in the event loop) ----------------------------------------------

    def _on_pod(self, event: EventType, obj: JSON, old: JSON | None) -> None:
        labels = (obj.get("metadata") or {}).get("labels") or {}
        rec = self.records.get(labels.get(JOB_LABEL, ""))
        if rec is None or event == "DELETED":
            return
        rec.pod = obj["metadata"]["name"]
        node = (obj.get("spec") or {}).get("nodeName")
        if node and rec.status in ("submitted", "unschedulable"):
            self._events.append((self.clock.now(), "bound", rec.job.id, node))
            self._wake.set()
        elif not node and rec.status == "submitted" and rec.holding:
            why = _unschedulable(obj)
            if why:
                self._events.append((self.clock.now(), "unschedulable", rec.job.id, why))
                self._wake.set()
        elif not node and rec.status == "submitted" and self.power is not None:
            # Tried again and still unschedulable: the power manager may wake a node for it.
            why = _unschedulable(obj)
            if why:
                self.power.on_unschedulable(rec.job, self.clock.now(), _wake_asked(why))
                self._wake.set()

    # -- the loop -------------------------------------------------------------------------

    def _publish(self, node: str) -> None:
        self.publisher.set(node, self.sim.nodes[node].watts())

    def publish(self, node: str) -> None:
        """Publish ``node``'s current power (the power manager changed its mode)."""
        self._publish(node)

    def pending_events(self) -> list[tuple[float, str, str, str]]:
        """Pod events received and not yet processed by the loop."""
        return list(self._events)

    def in_flight(self) -> bool:
        """Whether a submitted pod still awaits its first scheduling attempt."""
        return any(r.holding for r in self.records.values())

    def _done(self, finished: list[Finished]) -> list[str]:
        pods = []
        for f in finished:
            rec = self.records[f.job.id]
            rec.status, rec.end = "succeeded", f.end
            if rec.pod:
                pods.append(rec.pod)
            if self.power is not None:
                self.power.on_finished(f.job, f.node, f.end)
            self._publish(f.node)
            for succ in self._successors.get(f.job.id, []):
                self._release[succ] = f.end
        return pods

    async def _complete_pods(self, pods: list[str]) -> None:
        async def one(pod: str) -> None:
            with contextlib.suppress(ApiError):
                await self.kube.patch(
                    api_path("v1", "pods", self.ns, pod),
                    {"metadata": {"annotations": {contract.SIMULATED_DURATION_ANNOTATION: "0s"}}},
                )

        await asyncio.gather(*(one(p) for p in pods))

    async def _submit(self, rec: JobRecord, at: float) -> None:
        rec.status, rec.holding, rec.submitted_wall = "submitted", True, time.monotonic()
        rec.released = at
        self.clock.hold(at)
        # The readings are current before the pod exists (an ideal monitor: with the
        # clock held, publishing takes no simulated time); else hybrid would race the
        # publisher and see a node busy that finished a moment ago.
        await self.publisher.flush()
        manifest = job_manifest(
            rec.job,
            run_id=self.run_id,
            scheduler_name=self.scheduler_name,
            weight=self.weight,
            image=self.image,
            work_scale=self.clock.factor,
        )
        try:
            await self.kube.create(api_path("batch/v1", "jobs", self.ns), manifest)
        except ApiError as exc:
            rec.status, rec.reason = "failed", f"Job not created: {exc}"
            rec.holding = False
            self.clock.release()

    def _unhold(self, rec: JobRecord) -> None:
        if rec.holding:
            rec.holding = False
            self.clock.release()

    def _finished(self) -> bool:
        return all(r.status in ("succeeded", "failed") for r in self.records.values())

    def _over(self) -> bool:
        """Every job done and the horizon reached."""
        return self._finished() and self.clock.now() >= self.horizon_s

    def _report(self) -> None:
        if self.progress:
            done = sum(r.status in ("succeeded", "failed") for r in self.records.values())
            self.progress(done, len(self.records), self.clock.now())

    async def run(self, max_wall_s: float) -> RunOutcome:
        for node in self.sim.nodes:
            self._publish(node)
        await self.publisher.flush()
        reflector = Reflector(
            self.kube,
            api_path("v1", "pods", self.ns),
            self._on_pod,
            name=f"experiment-{self.run_id}",
            params={"labelSelector": f"{RUN_LABEL}={self.run_id}"},
        )
        tasks = [asyncio.create_task(reflector.run()), asyncio.create_task(self.publisher.run())]
        await asyncio.wait_for(reflector.synced.wait(), 30)
        deadline = time.monotonic() + max_wall_s
        last_progress = time.monotonic()
        interrupted = False
        notes: list[str] = []
        self.clock = SimClock(self.clock.factor)  # t = 0 now
        try:
            while not self._over():
                now = self.clock.now()
                # 1. pod events, in order: completions up to each event first
                events, self._events = self._events, []
                for at, kind, jid, detail in sorted(events):
                    rec = self.records[jid]
                    await self._complete_pods(
                        self._done(self.sim.complete_until(max(at, self.sim.t)))
                    )
                    if kind == "bound" and rec.status in ("submitted", "unschedulable"):
                        rec.node = detail
                        try:
                            self.sim.start(rec.job, detail, self.sim.t)
                            rec.status, rec.start = "running", self.sim.t
                            self._publish(detail)
                            if self.power is not None:
                                self.power.on_started(rec.job, detail, self.sim.t)
                        except NoTruth as exc:
                            rec.status, rec.reason, rec.start = "failed", str(exc), self.sim.t
                            rec.end = self.sim.t
                            if self.power is not None:
                                self.power.on_failed(rec.job)
                        self._unhold(rec)
                        last_progress = time.monotonic()
                    elif kind == "unschedulable" and rec.status == "submitted":
                        rec.reason = detail
                        if self.power is not None:
                            # Its wake starts at this very moment (the clock is still held).
                            self.power.on_unschedulable(rec.job, self.sim.t, _wake_asked(detail))
                            await self.power.fire(self.sim.t)
                        self._unhold(rec)
                # 2. completions and releases due, in time order, each at its exact time:
                # a release holds the clock at its own moment, so the loop's lag never
                # shows up in simulated time.
                while True:
                    now = self.clock.now()
                    nxt = self.sim.next_completion()
                    waiting = [
                        (t, jid)
                        for jid, t in self._release.items()
                        if self.records[jid].status == "waiting"
                    ]
                    rel = min(waiting) if waiting else None
                    pw = self.power.next_event() if self.power is not None else None
                    first = min(
                        [
                            x
                            for x in (nxt[0] if nxt else None, rel[0] if rel else None)
                            if x is not None
                        ],
                        default=None,
                    )
                    if pw is not None and pw <= now and (first is None or pw <= first):
                        assert self.power is not None
                        self.sim.advance(max(pw, self.sim.t))  # no completion before pw
                        await self.power.fire(max(pw, self.sim.t))
                        if self.power.next_event() == pw:
                            break  # nothing more it can do at this moment (e.g. a pod in flight)
                    elif nxt is not None and nxt[0] <= now and (rel is None or nxt[0] <= rel[0]):
                        pods = self._done(self.sim.complete_until(nxt[0]))
                        last_progress = time.monotonic()
                        await self._complete_pods(pods)
                    elif rel is not None and rel[0] <= now:
                        at = max(rel[0], self.sim.t)
                        self.sim.advance(at)
                        del self._release[rel[1]]
                        await self._submit(self.records[rel[1]], at)
                    else:
                        break
                # 4. pods never tried: let the clock go, note why
                for rec in self.records.values():
                    if (
                        rec.holding
                        and time.monotonic() - rec.submitted_wall > self.attempt_timeout_s
                    ):
                        rec.reason = (
                            f"no scheduling attempt within {self.attempt_timeout_s:g} s wall "
                            f"(is {self.scheduler_name} running?)"
                        )
                        self._unhold(rec)
                if self.power is not None:
                    self.power.check_holds()
                self._report()
                if self._over():
                    break
                # 5. give up on what cannot be placed
                stalled = (
                    time.monotonic() - last_progress > self.stall_timeout_s
                    and not self._finished()  # all done, waiting for the horizon
                )
                if (
                    not self.sim.busy() and not self._release and stalled
                ) or time.monotonic() > deadline:
                    for rec in self.records.values():
                        if rec.status in ("submitted", "waiting"):
                            rec.status = "unschedulable"
                            rec.reason = rec.reason or (
                                "never placed: " + ("run timed out" if not stalled else "stalled")
                            )
                    notes.append("run ended with jobs not placed")
                    break
                # 6. sleep until the next completion or release, or an event
                targets = list(self._release.values())
                nxt = self.sim.next_completion()
                if nxt:
                    targets.append(nxt[0])
                if self.power is not None and (pw := self.power.next_event()) is not None:
                    targets.append(pw)
                if self._finished():
                    targets.append(self.horizon_s)
                wait = min([self.clock.wall_until(t) for t in targets] + [0.5])
                self._wake.clear()
                if not self._events:
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), max(wait, 0.001))
        except (asyncio.CancelledError, KeyboardInterrupt):
            interrupted = True
            notes.append("interrupted")
            raise
        finally:
            if interrupted:
                # Partial rows cover the run up to the interruption.
                self.sim.advance(max(self.clock.now(), self.sim.t))
            ends = [r.end for r in self.records.values() if r.end is not None]
            # The run ends with its last job (or its horizon); the loop may have looked a
            # moment later.
            end = max(ends) if ends and self._finished() else self.sim.t
            if self._finished() and self.horizon_s > end:
                self.sim.advance(self.horizon_s)
                end = self.horizon_s
            for rec in self.records.values():
                if rec.status == "running":
                    rec.status, rec.reason = (
                        "interrupted" if interrupted else "failed",
                        ("run ended while it ran"),
                    )
                    rec.end = end
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            self.outcome = RunOutcome(
                records=list(self.records.values()),
                power={n: list(st.power) for n, st in self.sim.nodes.items()},
                idle={n: st.truth.idle_watts for n, st in self.sim.nodes.items()},
                end=end,
                interrupted=interrupted,
                notes=notes + (self.power.notes if self.power is not None else []),
                power_summary=self.power.summary(end) if self.power is not None else None,
            )
        # Leave every pod Succeeded before the next run (resources free for the schedulers).
        await self._wait_pods_done()
        return self.outcome

    async def _wait_pods_done(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pods = (
                await self.kube.get(
                    api_path("v1", "pods", self.ns), labelSelector=f"{RUN_LABEL}={self.run_id}"
                )
            )["items"]
            if all(
                (p.get("status") or {}).get("phase") in ("Succeeded", "Failed")
                or not (p.get("spec") or {}).get("nodeName")
                for p in pods
            ):
                return
            await asyncio.sleep(0.2)
