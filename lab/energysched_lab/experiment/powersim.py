"""The power manager in the simulation: the pure policy acting on the KWOK cluster.

The decisions are :mod:`energysched.power.policy`'s, the very code the in-cluster power
manager runs, fed with what that manager knows (the EnergyProfiles' ``powerStates``, not
the truth). The consequences are the truth's (truth.yaml ``powerStates``): sleep power,
the time to fall asleep, each wake's duration (with its long tail), its energy, and
whether it fails.

On the cluster, a node is put to sleep as the real manager does it: the
``energy.thesis.io/asleep:NoSchedule`` taint first, ``power-state: draining``, a check
that no pod was bound meanwhile (else the sleep is abandoned), then
``power-state: asleep``. KWOK plays the machine: its ``node-asleep`` stage
(lab/energysched_lab/cluster/kwok.yaml) turns a node whose power-state says it is asleep
``Ready=Unknown``, as the node lifecycle controller marks a node whose kubelet stopped
posting, and the controller adds its unreachable taints. On wake, ``power-state: awake``
lets KWOK's ``node-initialize`` stage report Ready again; the asleep taint is removed once
the node is Ready.

Why a KWOK stage and not a stopped heartbeat: the local cluster runs the controller
manager with a 900 s node-monitor grace period (KWOK renews 600 s leases, so that 5,000
nodes do not flood the API server); a node that stopped heartbeating would turn NotReady
only 15 minutes of wall time later, which at a time factor of 0.001 is 10 simulated
days. Shortening the grace period for every test would need short leases for every node.
The stage turns the node NotReady the moment its power state says so, the same moment
the simulated power drops.

Waking, for any scheduler's pods (kube-scheduler's too, as cluster-autoscaler does for
its pods): a pod found unschedulable that fits no awake node wakes the node the policy
chooses (or waits for a wake already under way that has room for it). Simulated time
runs during the wake; when the node is Ready the clock holds until the pods waiting for
it are bound (the schedulers' retry backoff, seconds of wall time, would otherwise be
counted as simulated minutes). A wake that fails (the truth's probability) leaves the
node asleep; at the policy's wake timeout the node is ``wake-failed``, its pods are
planned again (another node, or the same after the backoff).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from energysched import contract
from energysched.core.quantity import parse_quantity
from energysched.kb.profiles import KnowledgeBase, PowerStates
from energysched.kube.client import ApiError, KubeClient, api_path
from energysched.power.policy import (
    NodeView,
    PolicyConfig,
    Resources,
    choose_wake,
    fits_awake,
    hold_seconds,
    sleep_verdicts,
    wake_backoff_seconds,
    wake_timeout_seconds,
)
from energysched_lab.cluster.nodes import NodeClass
from energysched_lab.experiment.engine import ClusterSim
from energysched_lab.experiment.jobs import JOB_LABEL, Job

if TYPE_CHECKING:
    from energysched_lab.experiment.simulator import LiveRun

#: The asleep taint as the API holds it.
ASLEEP_TAINT: dict[str, str] = {
    "key": contract.ASLEEP_TAINT_KEY,
    "effect": contract.ASLEEP_TAINT_EFFECT,
}
#: Taints the node lifecycle controller puts on a node that is not Ready.
LIFECYCLE_TAINTS = ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable")
#: The simulation's policy: a node must have been empty 2 minutes beyond break-even.
SIM_POLICY = PolicyConfig(hysteresis_seconds=120.0, min_awake_nodes=1, min_free_fraction=0.2)


def requests_of(job: Job) -> Resources:
    extended = {"nvidia.com/gpu": float(job.gpu)} if job.gpu else {}
    return Resources(
        float(parse_quantity(job.cpu)) * 1000, float(parse_quantity(job.memory)), extended
    )


def allocatable_of(cls: NodeClass) -> Resources:
    def q(name: str) -> float:
        raw = cls.allocatable.get(name)
        return float(parse_quantity(raw)) if raw is not None else 0.0

    return Resources(q("cpu") * 1000, q("memory"), {"nvidia.com/gpu": q("nvidia.com/gpu")})


def rfc3339(wall: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(wall))


@dataclass
class NodePower:
    name: str
    allocatable: Resources
    idle_watts: float | None  # the profile's (what the manager knows)
    figures: PowerStates | None  # the profile's
    state: contract.PowerState = "awake"
    empty_since: float | None = 0.0
    running: dict[str, Resources] = field(default_factory=dict)
    fall_end: float | None = None
    wake_start: float | None = None  # a wake that starts when the fall ends
    wake_done: float | None = None  # when the node is Ready (a wake that succeeds)
    wake_fail_at: float | None = None  # when the manager gives up (a wake that fails)
    wake_requested_at: float | None = None
    failures: int = 0
    last_failure: float | None = None
    waiting: dict[str, Resources] = field(default_factory=dict)  # jobs this wake is for
    sleeps: int = 0
    wakes: int = 0
    wake_failures: int = 0

    def view(self) -> NodeView:
        requested = Resources()
        for r in self.running.values():
            requested = requested.plus(r)
        return NodeView(
            name=self.name,
            managed=True,
            keep_awake=False,
            state=self.state,
            ready=self.state in ("awake", "draining"),
            allocatable=self.allocatable,
            requested=requested,
            workload_pods=len(self.running),
            empty_since=None if self.running else self.empty_since,
            idle_watts=self.idle_watts,
            power=self.figures,
            wake_failures=self.failures,
            last_wake_failure=self.last_failure,
        )


@dataclass
class WaitRecord:
    """A job that waited for a wake: when it asked, which node, when it was bound."""

    job: str
    node: str
    asked: float
    bound: float | None = None


class PowerManagerSim:
    def __init__(
        self,
        kube: KubeClient,
        sim: ClusterSim,
        node_classes: Mapping[str, str],
        classes: list[NodeClass],
        kb: KnowledgeBase,
        *,
        seed: str,
        config: PolicyConfig = SIM_POLICY,
        ready_timeout_s: float = 30.0,
    ) -> None:
        self.kube = kube
        self.sim = sim
        self.config = config
        self.ready_timeout_s = ready_timeout_s
        by_name = {c.name: c for c in classes}
        self.nodes: dict[str, NodePower] = {}
        for node, cls_name in sorted(node_classes.items()):
            cls = by_name[cls_name]
            res = kb.resolve({**cls.labels, "kubernetes.io/hostname": node})
            profile = res.profile if res else None
            truth_has = sim.nodes[node].truth.power is not None
            self.nodes[node] = NodePower(
                node,
                allocatable_of(cls),
                profile.idle_power_watts if profile else None,
                # A node the truth cannot sleep is, to the manager, one without figures.
                profile.power_states if profile and truth_has else None,
            )
        self._rng = {n: random.Random(f"{seed}:wake:{n}") for n in self.nodes}
        self.pending: dict[str, Resources] = {}  # unschedulable jobs not yet given a wake
        #: Pending jobs for which the scheduler asked a node's wake itself (cluster-energy).
        self._asked: set[str] = set()
        self.waits: list[WaitRecord] = []
        self.notes: list[str] = []
        self._next_sleep_pass = 0.0
        self._next_plan = math.inf
        self._hold: dict[str, tuple[set[str], float]] = {}  # node -> (jobs, wall deadline)
        self.live: LiveRun | None = None

    # -- what the live run tells us ---------------------------------------------------------

    def attach(self, live: LiveRun) -> None:
        self.live = live

    def on_started(self, job: Job, node: str, t: float) -> None:
        st = self.nodes[node]
        st.running[job.id] = requests_of(job)
        st.empty_since = None
        self.pending.pop(job.id, None)
        self._asked.discard(job.id)
        for other in self.nodes.values():
            other.waiting.pop(job.id, None)
        for w in self.waits:
            if w.job == job.id and w.bound is None:
                w.bound = t
        self._release_hold(job.id)
        self._next_sleep_pass = min(self._next_sleep_pass, t)

    def on_finished(self, job: Job, node: str, t: float) -> None:
        st = self.nodes[node]
        st.running.pop(job.id, None)
        if not st.running:
            st.empty_since = t
        self._next_sleep_pass = min(self._next_sleep_pass, t)

    def on_failed(self, job: Job) -> None:
        self.pending.pop(job.id, None)
        self._asked.discard(job.id)
        for st in self.nodes.values():
            st.waiting.pop(job.id, None)
        self._release_hold(job.id)

    def on_unschedulable(self, job: Job, t: float, wake_asked: bool = False) -> None:
        """``wake_asked``: the scheduler chose a sleeping node and wrote the wake request
        on it itself (PodScheduled=False, WaitingForNodeWake), as the real manager reads it."""
        if any(job.id in st.waiting for st in self.nodes.values()):
            return
        if job.id not in self.pending:
            self.pending[job.id] = requests_of(job)
        if wake_asked:
            self._asked.add(job.id)
        self._next_plan = min(self._next_plan, t)

    # -- events in simulated time -------------------------------------------------------------

    def next_event(self) -> float | None:
        times: list[float] = []
        for st in self.nodes.values():
            times.extend(
                t
                for t in (st.fall_end, st.wake_start, st.wake_done, st.wake_fail_at)
                if t is not None
            )
        if self.pending and math.isfinite(self._next_plan):
            times.append(self._next_plan)
        if math.isfinite(self._next_sleep_pass):
            times.append(self._next_sleep_pass)
        return min(times) if times else None

    def _backoff_ends(self, t: float) -> float:
        """The next moment a failed wake may be retried (after ``t``), or inf."""
        soonest = math.inf
        for st in self.nodes.values():
            if st.state == "wake-failed" and st.last_failure is not None:
                at = st.last_failure + wake_backoff_seconds(st.failures, self.config)
                if at > t + 1e-9:
                    soonest = min(soonest, at)
        return soonest

    async def fire(self, t: float) -> None:
        """Everything due at or before ``t``, in time order (the clock is at ``t``)."""
        assert self.live is not None
        for _ in range(1000):
            due = self._due(t)
            if due is None:
                break
            at, kind, node = due
            at = max(at, self.sim.t)
            if kind == "fall_end":
                await self._fall_end(node, at)
            elif kind == "wake_start":
                self._wake_start(node, at)
            elif kind == "wake_done":
                await self._wake_done(node, at)
            elif kind == "wake_fail":
                await self._wake_failed(node, at)
            elif kind == "plan":
                await self._plan_wakes(at)
            elif kind == "sleep_pass":
                await self._sleep_pass(at)

    def _due(self, t: float) -> tuple[float, str, str] | None:
        best: tuple[float, str, str] | None = None

        def consider(at: float | None, kind: str, node: str) -> None:
            nonlocal best
            if at is not None and at <= t + 1e-9 and (best is None or at < best[0]):
                best = (at, kind, node)

        for st in self.nodes.values():
            consider(st.fall_end, "fall_end", st.name)
            consider(st.wake_start, "wake_start", st.name)
            consider(st.wake_done, "wake_done", st.name)
            consider(st.wake_fail_at, "wake_fail", st.name)
        if self.pending:
            consider(self._next_plan, "plan", "")
        # Not while a new pod awaits its first scheduling attempt (the clock is held then):
        # the scheduler may be about to bind it to the node the pass would put to sleep.
        if self.live is not None and not self.live.in_flight():
            consider(self._next_sleep_pass, "sleep_pass", "")
        return best

    # -- sleeping -----------------------------------------------------------------------------

    async def _sleep_pass(self, t: float) -> None:
        self._next_sleep_pass = math.inf
        if self.pending:
            await self._plan_wakes(t)
        verdicts = sleep_verdicts([st.view() for st in self.nodes.values()], t, self.config)
        for v in verdicts:
            if v.sleep:
                await self._sleep(self.nodes[v.node], t)
        # the next moment an empty node passes its hold time
        for st in self.nodes.values():
            if (
                st.state == "awake"
                and not st.running
                and st.empty_since is not None
                and st.figures is not None
                and st.idle_watts is not None
            ):
                due = st.empty_since + hold_seconds(st.idle_watts, st.figures, self.config)
                if due > t + 1e-9:
                    self._next_sleep_pass = min(self._next_sleep_pass, due)

    async def _sleep(self, st: NodePower, t: float) -> None:
        assert self.live is not None
        live = self.live
        live.clock.hold(t)
        try:
            st.state = "draining"
            await self._taint(st.name, add=True)
            await self._annotate(st.name, "draining")
            if await self._busy_in_api(st.name) or st.running:
                # a pod was bound between the decision and the taint: stay awake
                await self._annotate(st.name, "awake")
                await self._taint(st.name, add=False)
                st.state = "awake"
                self.notes.append(f"{st.name}: sleep abandoned at t={t:.0f} s, a pod was bound")
                return
            st.state = "asleep"
            st.sleeps += 1
            await self._annotate(st.name, "asleep")
            truth = self.sim.nodes[st.name].truth.power
            assert truth is not None
            self.sim.set_mode(st.name, "falling", t)
            st.fall_end = t + truth.suspend_seconds
            live.publish(st.name)
        finally:
            live.clock.release()

    async def _fall_end(self, node: str, t: float) -> None:
        st = self.nodes[node]
        st.fall_end = None
        if self.sim.nodes[node].mode == "falling":
            self.sim.set_mode(node, "asleep", t)
            assert self.live is not None
            self.live.publish(node)

    async def _busy_in_api(self, node: str) -> bool:
        """A pod of the run bound to ``node`` that the simulation has not started yet."""
        assert self.live is not None
        live = self.live
        try:
            pods = (
                await self.kube.get(
                    api_path("v1", "pods", live.ns), fieldSelector=f"spec.nodeName={node}"
                )
            )["items"]
        except (TimeoutError, ApiError, OSError):
            return True  # cannot tell: do not sleep
        for pod in pods:
            labels = pod["metadata"].get("labels") or {}
            rec = live.records.get(labels.get(JOB_LABEL, ""))
            if rec is not None and rec.status not in ("running", "succeeded", "failed"):
                return True
        return any(
            kind == "bound" and detail == node for _, kind, _, detail in live.pending_events()
        )

    # -- waking -------------------------------------------------------------------------------

    async def _plan_wakes(self, t: float) -> None:
        self._next_plan = math.inf
        views = [st.view() for st in self.nodes.values()]
        asked = await self._asked_wakes() if self._asked & self.pending.keys() else {}
        for job_id in sorted(self.pending):
            need = self.pending[job_id]
            host = self._asked_host(asked.get(job_id) if job_id in self._asked else None, need)
            if host is not None:  # the scheduler's own choice, wake cost counted
                if host.state != "waking":
                    await self._start_wake(host, t, job_id)
                    views = [st.view() for st in self.nodes.values()]
            elif fits_awake(need, views):
                continue  # the scheduler's next attempt places it
            else:  # a wake under way with room for it
                host = next(
                    (
                        st
                        for st in self.nodes.values()
                        if st.state == "waking" and self._room(st).fits(need)
                    ),
                    None,
                )
            if host is None:
                choice = choose_wake(need, views, t, self.config)
                if choice is None:
                    continue
                host = self.nodes[choice.node]
                await self._start_wake(host, t, job_id)
                views = [st.view() for st in self.nodes.values()]
            host.waiting[job_id] = need
            self.waits.append(WaitRecord(job_id, host.name, t))
            del self.pending[job_id]
            self._asked.discard(job_id)
        if self.pending:  # none fits a node that may wake now: retry when a backoff ends
            self._next_plan = self._backoff_ends(t)

    async def _asked_wakes(self) -> dict[str, str]:
        """job id -> the sleeping node the scheduler asked woken for it (the node's
        ``wake-requested-by`` annotation, ``namespace/pod``; the pod is named after its job)."""
        assert self.live is not None
        out: dict[str, str] = {}
        for st in self.nodes.values():
            if st.state not in ("asleep", "waking"):
                continue
            try:
                node = await self.kube.get(api_path("v1", "nodes", name=st.name))
            except ApiError:
                continue  # read again on the next plan (the pod is retried)
            by = ((node.get("metadata") or {}).get("annotations") or {}).get(
                contract.WAKE_REQUESTED_BY_ANNOTATION, ""
            )
            ns, _, pod = str(by).partition("/")
            if ns == self.live.ns and pod:
                out[pod] = st.name
        return out

    def _asked_host(self, name: str | None, need: Resources) -> NodePower | None:
        """The node the scheduler asked for, if the manager acts on that request: asleep
        (the real manager wakes an asleep node whose request is newer than its sleep), or
        already waking with room left. A wake-failed node in its backoff is not woken: the
        scheduler sees it is not waking and decides again."""
        st = self.nodes.get(name) if name is not None else None
        if st is None:
            return None
        if st.state == "asleep" or (st.state == "waking" and self._room(st).fits(need)):
            return st
        return None

    def _room(self, st: NodePower) -> Resources:
        room = st.allocatable
        for r in st.waiting.values():
            room = room.minus(r)
        return room

    async def _start_wake(self, st: NodePower, t: float, job_id: str) -> None:
        assert self.live is not None and st.figures is not None
        truth = self.sim.nodes[st.name].truth.power
        assert truth is not None
        rng = self._rng[st.name]
        fails = rng.random() < truth.wake_failure_probability
        duration = truth.wake_seconds * (
            math.exp(rng.gauss(0.0, truth.wake_jitter)) if truth.wake_jitter > 0 else 1.0
        )
        st.state = "waking"
        st.wakes += 1
        st.wake_requested_at = t
        start = max(t, st.fall_end if st.fall_end is not None else t)
        timeout = wake_timeout_seconds(st.figures, self.config)
        if fails:
            st.wake_fail_at = t + timeout
        else:
            if start + duration > t + timeout:  # the long tail: the manager gives up first
                st.wake_fail_at = t + timeout
            st.wake_done = start + duration
            st.wake_start = start
        await self._annotate(
            st.name,
            "waking",
            {
                contract.WAKE_REQUESTED_ANNOTATION: rfc3339(time.time()),
                contract.WAKE_REQUESTED_BY_ANNOTATION: f"{self.live.ns}/{job_id}",
            },
        )

    def _wake_start(self, node: str, t: float) -> None:
        st = self.nodes[node]
        st.wake_start = None
        if self.sim.nodes[node].mode == "falling":
            st.fall_end = None
        self.sim.set_mode(node, "waking", t)
        assert self.live is not None
        self.live.publish(node)

    async def _wake_done(self, node: str, t: float) -> None:
        assert self.live is not None
        live = self.live
        st = self.nodes[node]
        st.wake_done = st.wake_fail_at = None
        self.sim.set_mode(node, "on", t)
        live.publish(node)
        st.state = "awake"
        st.failures = 0
        st.empty_since = t
        self._next_sleep_pass = min(self._next_sleep_pass, t)
        self._next_plan = min(self._next_plan, t)
        # The node's Ready and untainted state must reach the scheduler at this moment of
        # simulated time: hold the clock until the jobs waiting for it are bound.
        live.clock.hold(t)
        held = False
        try:
            # Ready first, the controller's taints gone, then ours: the waiting pods are
            # retried once, on a clean node (each failed retry doubles their backoff).
            await self._annotate(node, "awake")
            await self._wait_ready(node)
            await self._wait_untainted(node, LIFECYCLE_TAINTS)
            await self._taint(node, add=False)
            jobs = set(st.waiting)
            if jobs:
                self._hold[node] = (jobs, time.monotonic() + self.ready_timeout_s)
                held = True
        except TimeoutError as exc:
            self.notes.append(f"{node}: {exc}")
        finally:
            if not held:
                live.clock.release()
        st.waiting.clear()

    async def _wake_failed(self, node: str, t: float) -> None:
        st = self.nodes[node]
        st.wake_fail_at = None
        st.state = "wake-failed"
        st.failures += 1
        st.wake_failures += 1
        st.last_failure = t
        await self._annotate(node, "wake-failed")
        # its pods go elsewhere: planned again now (another node, or this one after backoff)
        for job_id, need in st.waiting.items():
            self.pending[job_id] = need
            for w in self.waits:
                if w.job == job_id and w.bound is None and w.node == node:
                    w.node = f"{node} (failed)"
        st.waiting.clear()
        # the machine never comes up: it is asleep again
        if st.wake_done is None and self.sim.nodes[node].mode != "asleep":
            self.sim.set_mode(node, "asleep", t)
            assert self.live is not None
            self.live.publish(node)
        # Otherwise it comes up late by itself (wake_done still set): the long tail.
        self._next_plan = min(self._next_plan, t)

    def _release_hold(self, job_id: str) -> None:
        for node, (jobs, _) in list(self._hold.items()):
            jobs.discard(job_id)
            if not jobs:
                del self._hold[node]
                assert self.live is not None
                self.live.clock.release()

    def check_holds(self) -> None:
        """Let the clock go when a woken node's pods are not bound within the wall cap."""
        now = time.monotonic()
        for node, (jobs, deadline) in list(self._hold.items()):
            if now > deadline:
                del self._hold[node]
                self.notes.append(
                    f"{node}: {len(jobs)} pod(s) not bound within {self.ready_timeout_s:g} s "
                    "wall of the node's wake; the clock went on"
                )
                assert self.live is not None
                self.live.clock.release()

    # -- the API ------------------------------------------------------------------------------

    async def _annotate(
        self, node: str, state: contract.PowerState, extra: Mapping[str, str] | None = None
    ) -> None:
        annotations = {
            contract.POWER_STATE_ANNOTATION: state,
            contract.POWER_STATE_SINCE_ANNOTATION: rfc3339(time.time()),
            **(extra or {}),
        }
        await self.kube.patch(
            api_path("v1", "nodes", name=node), {"metadata": {"annotations": annotations}}
        )

    async def _taint(self, node: str, *, add: bool) -> None:
        path = api_path("v1", "nodes", name=node)
        for _ in range(10):
            obj = await self.kube.get(path)
            taints: list[dict[str, Any]] = [
                t
                for t in (obj.get("spec") or {}).get("taints") or []
                if t.get("key") != contract.ASLEEP_TAINT_KEY
            ]
            if add:
                taints.append(dict(ASLEEP_TAINT))
            try:
                await self.kube.patch(
                    path,
                    {
                        "metadata": {"resourceVersion": obj["metadata"]["resourceVersion"]},
                        "spec": {"taints": taints},
                    },
                )
                return
            except ApiError as exc:
                if not exc.conflict:
                    raise
        raise TimeoutError(f"{node}: taint not updated after 10 conflicts")

    async def _wait_ready(self, node: str) -> None:
        from energysched_lab.waiting import wait_for

        async def ready() -> bool:
            obj = await self.kube.get(api_path("v1", "nodes", name=node))
            return any(
                c.get("type") == "Ready" and c.get("status") == "True"
                for c in (obj.get("status") or {}).get("conditions") or []
            )

        await wait_for(ready, self.ready_timeout_s, f"node {node} to be Ready", 0.02)

    async def _wait_untainted(
        self, node: str, keys: tuple[str, ...] = (*LIFECYCLE_TAINTS, contract.ASLEEP_TAINT_KEY)
    ) -> None:
        from energysched_lab.waiting import wait_for

        async def clean() -> bool:
            obj = await self.kube.get(api_path("v1", "nodes", name=node))
            return not [
                t
                for t in (obj.get("spec") or {}).get("taints") or []
                if t.get("key") in keys and t.get("effect") == "NoSchedule"
            ]

        await wait_for(
            clean, self.ready_timeout_s, f"node {node} to lose its NoSchedule taints", 0.02
        )

    async def wake_all(self) -> None:
        """After the run: every node awake, Ready and untainted again (the next run's start)."""
        for node in self.nodes:
            with contextlib.suppress(ApiError, OSError, TimeoutError, asyncio.TimeoutError):
                await self._annotate(node, "awake")
        for node in self.nodes:
            try:
                await self._wait_ready(node)
                await self._taint(node, add=False)
                await self._wait_untainted(node)
            except (ApiError, OSError, TimeoutError) as exc:
                self.notes.append(f"{node}: not clean after the run: {exc}")

    # -- the run's figures --------------------------------------------------------------------

    def summary(self, horizon_s: float) -> dict[str, Any]:
        days = max(horizon_s, 1e-9) / 86400.0
        sleeps = {n: st.sleeps for n, st in self.nodes.items()}
        return {
            "sleeps": sum(sleeps.values()),
            "wakes": sum(st.wakes for st in self.nodes.values()),
            "wake_failures": sum(st.wake_failures for st in self.nodes.values()),
            "cycles_per_node_day": " ".join(f"{n}={sleeps[n] / days:.1f}" for n in sorted(sleeps)),
            "waits": [w.bound - w.asked for w in self.waits if w.bound is not None],
        }
