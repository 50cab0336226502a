"""The scheduler process: watch, decide with the pure core, bind, explain.

Flow per pod (kube-scheduler's, minus preemption):

  reflector event → queue → ``schedule_one`` on an immutable snapshot →
  assume (the pod counts on its node at once) → bind in the background
  (POST pods/binding with the pod's UID) → Normal ``Scheduled`` event; or a
  ``FailedScheduling`` Warning, PodScheduled=False and a parked pod that is
  retried when nodes, pods or profiles change (or after at most 5 minutes).

Only the leader binds; decisions stop the moment its lease cannot be renewed.

Nothing dies silently. Every long-lived task is supervised: the reflectors
retry any failure with backoff, and while the pod or node watch is down no
decision is made (the cache may no longer be true) and ``/readyz`` says so. A
vital task that ends anyway (leadership lost, a bug that escaped) makes
:meth:`EnergyScheduler.run` raise :class:`SchedulerStopped`; the CLI turns that
into a non-zero exit so the Deployment restarts the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
from collections.abc import Awaitable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import structlog

from energysched import contract
from energysched.core.errors import InputError
from energysched.core.framework import Decision, schedule_one
from energysched.core.scores import hybrid
from energysched.core.values import PodInfo
from energysched.kube.background import BackgroundWriter
from energysched.kube.client import JSON, ApiError, KubeClient, api_path
from energysched.kube.events import EventWriter, ObjectRef
from energysched.kube.reflector import EventType, Reflector, object_key
from energysched.scheduler import wake
from energysched.scheduler.config import ConfigSource, SchedulerConfig
from energysched.scheduler.events import set_pod_scheduled_false
from energysched.scheduler.leader import LeaderElector
from energysched.scheduler.metrics import SchedulerMetrics
from energysched.scheduler.mirror import (
    TERMINAL_PODS_EXCLUDED,
    ClusterMirror,
    PodSpecView,
    PodStatusView,
    has_condition,
    pod_view,
    scheduling_gates,
)
from energysched.scheduler.queue import SchedulingQueue

log = structlog.get_logger(__name__)

PROFILES_PATH = api_path(contract.API_VERSION, contract.PROFILE_PLURAL)
T = TypeVar("T")
#: The API server's own message for a gated pod (pkg/registry/core/pod/strategy.go).
SCHEDULING_GATED_MESSAGE = "Scheduling is blocked due to non-empty scheduling gates"


class SchedulerStopped(RuntimeError):
    """A vital task ended (leadership lost, a task that crashed): the process must exit."""


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class EnergyScheduler:
    kube: KubeClient
    event_kube: KubeClient
    config: ConfigSource
    identity: str
    metrics: SchedulerMetrics = field(default_factory=SchedulerMetrics)
    max_binds_in_flight: int = 64
    config_poll_seconds: float = 2.0
    #: Leader election's own client (as kube-scheduler has): a renewal must never
    #: queue behind a burst of binds in the main client's rate limiter.
    lease_kube: KubeClient | None = None

    def __post_init__(self) -> None:
        self.cfg: SchedulerConfig = self.config.current
        #: Objects → the core's state, parsed once (shared with ``explain``).
        self.mirror = ClusterMirror()
        self.mirror.set_knowledge(self.cfg.knowledge, self.cfg.exploration)
        self.state = self.mirror.state
        self.book = self.mirror.book
        self.queue = SchedulingQueue()
        #: Events through their own client and bounded queue; PodScheduled
        #: patches through ``writer`` (bounded too): no task per write.
        self.events = EventWriter(
            self.event_kube, self.cfg.profiles[0].scheduler_name, "Scheduling"
        )
        self.writer = BackgroundWriter("status-writer")
        self.pods = Reflector(
            self.kube,
            api_path("v1", "pods"),
            self._on_pod,
            name="pods",
            # Terminal pods hold no resources; kube-scheduler's informer skips them
            # too. A pod that finishes leaves the selection: a DELETED event.
            params={"fieldSelector": TERMINAL_PODS_EXCLUDED},
            on_health=self._on_watch_health,
        )
        self.nodes = Reflector(
            self.kube,
            api_path("v1", "nodes"),
            self._on_node,
            name="nodes",
            on_health=self._on_watch_health,
        )
        self.profiles = Reflector(
            self.kube,
            PROFILES_PATH,
            self._on_profile,
            name="energyprofiles",
            on_health=self._on_watch_health,
        )
        #: Set while every vital watch (pods, nodes) is up: decisions wait for it.
        self.watches_up = asyncio.Event()
        self._vital: set[asyncio.Task[Any]] = set()
        self.stopped_because: str | None = None
        self.elector: LeaderElector | None = None
        self._first_seen: dict[str, float] = {}
        self._bind_slots = asyncio.Semaphore(self.max_binds_in_flight)
        self._bind_tasks: set[asyncio.Task[None]] = set()
        self._gated: set[str] = set()  # pods held back by scheduling gates
        #: Pods waiting for a node we asked to wake (pod key -> the wake).
        self._waking: dict[str, PendingWake] = {}
        self.bound = 0  # binds that succeeded (tests and the perf benchmark read it)

    # -- event handlers (synchronous, quick) --------------------------------------------

    def _ours(self, pod: Mapping[str, Any]) -> bool:
        spec = pod_view(pod).get("spec") or PodSpecView()
        return self.cfg.profile_for(str(spec.get("schedulerName", ""))) is not None

    def _on_pod(self, event: EventType, obj: JSON, old: JSON | None) -> None:
        key = object_key(obj)
        update = self.mirror.pod_event(event, obj, old)
        if update.change == "deleted":
            self._waking.pop(key, None)
            self.queue.forget(key)
            self._gated.discard(key)
            self._first_seen.pop(key, None)
        if update.freed:
            self.queue.move_all_to_active()  # capacity freed
        if update.change != "updated":
            return
        if update.bound or update.terminating:
            self._waking.pop(key, None)
            self.queue.forget(key)
            return
        phase = (pod_view(obj).get("status") or PodStatusView()).get("phase")
        if self._ours(obj) and phase not in ("Succeeded", "Failed"):
            if scheduling_gates(obj):
                self._hold_gated(key, obj)
                return
            self._gated.discard(key)
            self._first_seen.setdefault(key, time.monotonic())
            self.queue.add(key)

    def _hold_gated(self, key: str, obj: JSON) -> None:
        """A pod with scheduling gates is not attempted (kube-scheduler's PreEnqueue).

        The API server gives it PodScheduled=False/SchedulingGated on create; that is
        written here only when missing. Removing its gates (the only change allowed)
        is an update that queues it.
        """
        self.queue.forget(key)
        if key not in self._gated:
            self._gated.add(key)
            log.info("pod gated: not attempted", pod=key, gates=scheduling_gates(obj))
            if not has_condition(obj, "PodScheduled", "SchedulingGated"):
                self.writer.submit(
                    key,
                    lambda: set_pod_scheduled_false(
                        self.kube, obj, "SchedulingGated", SCHEDULING_GATED_MESSAGE
                    ),
                )

    def _on_node(self, event: EventType, obj: JSON, old: JSON | None) -> None:
        changed = self.mirror.node_event(event, obj, old)
        if changed:
            self.queue.move_all_to_active()
        if changed or event == "DELETED":
            name = str((obj.get("metadata") or {}).get("name", ""))
            for key, pending in self._waking.items():
                if pending.node == name and (event == "DELETED" or not wake.waiting_on(obj)):
                    self.queue.activate_now(key)  # its wake is over: bind (or decide) now

    def _on_profile(self, event: EventType, obj: JSON, old: JSON | None) -> None:
        if self.mirror.profile_event(event, obj, old):
            self.metrics.profiles.set(len(self.book.kb.profiles))
            self.queue.move_all_to_active()

    # -- health ---------------------------------------------------------------------

    @property
    def vital_reflectors(self) -> tuple[Reflector, ...]:
        """The watches a decision cannot do without. Profiles only change scores
        (and may be absent while the CRD is not installed): not vital."""
        return (self.pods, self.nodes)

    def _on_watch_health(self, name: str, up: bool) -> None:
        self.metrics.watch_up.labels(name).set(1 if up else 0)
        if all(r.up for r in self.vital_reflectors):
            if not self.watches_up.is_set():
                log.info("watches up: deciding again")
            self.watches_up.set()
        elif self.watches_up.is_set():
            self.watches_up.clear()
            log.warning("a watch is down: no decisions until it is back", reflector=name)

    def health_checks(self) -> list[tuple[str, bool, str]]:
        """``/healthz``: the process can go on (vital tasks alive, lease not overdue)."""
        checks = [("ping", True, "ok")]
        ended = [t.get_name() for t in self._vital if t.done()]
        checks.append(("vital-tasks", not ended, f"ended: {', '.join(ended)}" if ended else "ok"))
        if self.elector is not None and self.elector.became_leader.is_set():
            overdue = self.elector.seconds_since_renewal() - self.elector.lease_duration
            checks.append(
                (
                    "leaderElection",
                    overdue < 20.0,  # kube-scheduler's watchdog timeout
                    "ok" if overdue < 20.0 else f"lease not renewed for {overdue:.0f} s",
                )
            )
        return checks

    def ready_checks(self) -> list[tuple[str, bool, str]]:
        """``/readyz``: health plus caches synced and vital watches up (kube-scheduler's
        ``sched-handler-sync``); the leader state is reported, a standby is ready."""
        checks = self.health_checks()
        now = time.monotonic()
        for r in (*self.vital_reflectors, self.profiles):
            vital = r in self.vital_reflectors
            if r.up:
                msg, ok = "ok", True
            elif not r.synced.is_set() and r.down_since is None:
                msg, ok = "not synced yet", not vital
            else:
                since = now - (r.down_since or now)
                msg, ok = f"down for {since:.0f} s: {r.last_error}", not vital
            checks.append((f"watch-{r.name}", ok, msg if vital else f"{msg} (not vital)"))
        if self.elector is None:
            leader = "leader election disabled"
        else:
            leader = "leader" if self.elector.is_leader() else "standby"
        checks.append(("leader", True, leader))
        return checks

    # -- main loop ------------------------------------------------------------------

    def _start_vital(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro, name=name)
        self._vital.add(task)
        return task

    async def _supervised(self, goal: Awaitable[T], name: str = "") -> T:
        """Await ``goal`` while watching every vital task; one that ends stops everything."""
        goal_task = asyncio.ensure_future(goal)
        if name:
            goal_task.set_name(name)
        try:
            while True:
                done, _ = await asyncio.wait(
                    {goal_task, *self._vital}, return_when=asyncio.FIRST_COMPLETED
                )
                for task in done:
                    if task is not goal_task:
                        raise SchedulerStopped(_why_ended(task))
                if goal_task in done:
                    if not goal_task.cancelled() and goal_task.exception() is not None:
                        # e.g. the schedule loop itself failed: stop, saying why.
                        raise SchedulerStopped(_why_ended(goal_task)) from goal_task.exception()
                    return goal_task.result()
        finally:
            if not goal_task.done():
                goal_task.cancel()
                await asyncio.gather(goal_task, return_exceptions=True)

    async def run(self) -> None:
        """Run until cancelled; raises :class:`SchedulerStopped` when it cannot go on."""
        self.writer.start()
        self.events.start()
        self._start_vital(self.pods.run(), "reflector-pods")
        self._start_vital(self.nodes.run(), "reflector-nodes")
        self._start_vital(self.profiles.run(), "reflector-profiles")
        self._start_vital(self._poll_config(), "config")
        try:
            await self._supervised(
                asyncio.gather(self.pods.synced.wait(), self.nodes.synced.wait())
            )
            # Profiles may be missing (CRD not installed yet): wait a little,
            # then schedule with what there is; the neutral fallback says so.
            with contextlib.suppress(TimeoutError):
                await self._supervised(asyncio.wait_for(self.profiles.synced.wait(), 10))
            log.info(
                "caches synced",
                nodes=len(self.nodes.store),
                pods=len(self.pods.store),
                profiles=len(self.book.kb.profiles),
            )
            le = self.cfg.leader_election
            if le.enabled:
                self.elector = LeaderElector(
                    self.lease_kube or self.kube,
                    le.namespace,
                    le.name,
                    self.identity,
                    le.lease_duration,
                    le.renew_deadline,
                    le.retry_period,
                )
                # The elector's run() returns when leadership is lost: a vital end.
                self._start_vital(self.elector.run(), "leader-election")
                await self._supervised(self.elector.became_leader.wait())
                self.metrics.is_leader.set(1)
            await self._supervised(self._schedule_loop(), "schedule-loop")
        except SchedulerStopped as exc:
            self.stopped_because = str(exc)
            log.error("scheduler stopping", reason=str(exc))
            raise
        finally:
            self.metrics.is_leader.set(0)
            for t in self._vital:
                t.cancel()
            for t in list(self._bind_tasks):
                t.cancel()
            await asyncio.gather(*self._vital, *self._bind_tasks, return_exceptions=True)
            await self.writer.stop()
            await self.events.stop()
            if self.elector is not None:
                await self.elector.release()

    def _count_reload(self, result: str) -> None:
        self.metrics.config_reloads.labels(result).inc()

    async def _poll_config(self) -> None:
        while True:
            await asyncio.sleep(self.config_poll_seconds)
            new = self.config.reload(self._count_reload)
            if new is not None:
                self.cfg = new
                if self.mirror.set_knowledge(new.knowledge, new.exploration):
                    log.info(
                        "knowledge switched", knowledge=new.knowledge, exploration=new.exploration
                    )
                log.info("config reloaded", profiles=[p.scheduler_name for p in new.profiles])
                # Pods of a newly added profile name were ignored until now.
                for key, pod in self.pods.store.items():
                    if self._ours(pod) and not (pod.get("spec") or {}).get("nodeName"):
                        self.queue.add(key)

    async def _schedule_loop(self) -> None:
        last_prune = 0.0
        while True:
            if not self.watches_up.is_set():
                # The cache may no longer be true: decide nothing until it is.
                await self.watches_up.wait()
            key = await self.queue.pop()
            self._update_depths()
            if time.monotonic() - last_prune > 1.0:
                # Binds older than the staleness window show in every fresh reading
                # already; dropping them keeps each snapshot's bind list short.
                window = max(p.staleness_seconds for p in self.cfg.profiles)
                self.state.prune_binds(_now() - dt.timedelta(seconds=window))
                last_prune = time.monotonic()
            if self.elector is not None and not self.elector.is_leader():
                self.queue.retry_after_error(key)
                await asyncio.sleep(0.1)
                continue
            await self._bind_slots.acquire()
            t_attempt = time.perf_counter()
            try:
                self.schedule_key(key)
            except Exception:  # a bug must not stop scheduling for everyone
                log.exception("scheduling attempt crashed", pod=key)
                self.queue.retry_after_error(key)
                self._bind_slots.release()
            self.metrics.attempt_latency.observe(time.perf_counter() - t_attempt)

    def _update_depths(self) -> None:
        for queue, depth in self.queue.depths().items():
            self.metrics.queue_depth.labels(queue).set(depth)
        self.metrics.queue_depth.labels("gated").set(len(self._gated))

    # -- one pod ------------------------------------------------------------------------

    def schedule_key(self, key: str) -> None:
        """Decide for one queued pod; starts its bind. Holds one bind slot, releases it."""
        obj = self.pods.store.get(key)
        pod = self.mirror.pods.get(key)  # parsed once, when its event came in
        spec = (pod_view(obj).get("spec") if obj is not None else None) or PodSpecView()
        if (
            obj is None
            or pod is None
            or spec.get("nodeName")
            or not self._ours(obj)
            or scheduling_gates(obj)
        ):
            self.queue.forget(key)
            self._bind_slots.release()
            return
        profile = self.cfg.profile_for(str(spec.get("schedulerName")))
        assert profile is not None
        if isinstance(pod, InputError):
            self._reject(obj, key, pod.message, "SchedulerError", "invalid")
            return
        if self._keeps_waiting(key):
            return
        snapshot = self.state.snapshot(_now())
        t0 = time.perf_counter()  # the algorithm alone, as kube-scheduler times it
        cpu0 = time.thread_time()
        decision = schedule_one(pod, snapshot, profile.params())
        self.metrics.algorithm_cpu.observe(time.thread_time() - cpu0)
        self.metrics.algorithm_latency.observe(time.perf_counter() - t0)
        self._count_readings(decision)
        if decision.error is not None:
            self._reject(obj, key, decision.error.message, "SchedulerError", "invalid")
            return
        if decision.node is None:
            if not self._wait_for_wake(obj, key, decision):
                self._reject(obj, key, decision.message, "Unschedulable", "unschedulable")
            return
        if decision.fallback:
            self.metrics.neutral_fallbacks.inc()
        self.state.assume(pod, decision.node, _now())
        task = asyncio.create_task(self._bind(obj, pod, key, decision, profile.scheduler_name))
        self._bind_tasks.add(task)
        task.add_done_callback(self._bind_tasks.discard)

    def _count_readings(self, d: Decision) -> None:
        counts = hybrid.counts_of(d.part)  # hybrid's own part of the decision
        if counts.stale:
            self.metrics.stale_readings.labels("stale").inc(counts.stale)
        if counts.missing:
            self.metrics.stale_readings.labels("missing").inc(counts.missing)
        if counts.future:  # the monitor's clock ahead of ours beyond the allowance
            self.metrics.stale_readings.labels("future").inc(counts.future)

    def _reject(self, obj: JSON, key: str, message: str, reason: str, result: str) -> None:
        self._bind_slots.release()
        self.metrics.attempts.labels(result, str(obj["spec"].get("schedulerName"))).inc()
        self.queue.park_unschedulable(key)
        log.info("pod not scheduled", pod=key, reason=reason, message=message)
        self._event(obj, key, "Warning", "FailedScheduling", message)
        self.writer.submit(key, lambda: set_pod_scheduled_false(self.kube, obj, reason, message))

    def _keeps_waiting(self, key: str) -> bool:
        """The core chose to wake a node for this pod and that wake is under way: the pod
        waits for it (parked) instead of being decided again. Deciding meanwhile would find
        the node infeasible (tainted until Ready) and bind the pod to an awake node its
        mode has just judged worse, every time a node update re-queues it mid-wake.
        (A wake the power policy chose, for a pod that fitted no awake node, does not hold
        the pod: if room appears on an awake node, it may go there.)"""
        pending = self._waking.get(key)
        if pending is None or not pending.chosen_by_core:
            return False
        node = self.nodes.store.get(pending.node)
        if node is None or not wake.waiting_on(node):
            return False  # over (awake, failed, gone): decide anew
        self._bind_slots.release()
        self.queue.park_unschedulable(key)
        return True

    def _wait_for_wake(self, obj: JSON, key: str, decision: Decision) -> bool:
        """No node to bind to: wake a sleeping one that takes the pod (True), or not (False).

        The node is the core's choice when its mode counts wake-ups and a sleeping node
        ranked first (``decision.wake_node``: cluster-energy); otherwise, when the pod fits
        no awake node, the power policy's (:func:`wake.wake_target`). Either way the same
        request is written on that node, and the pod waits for it.
        """
        pending = self._waking.get(key)
        if pending is not None:
            node = self.nodes.store.get(pending.node)
            if node is not None and wake.waiting_on(node):
                self._bind_slots.release()
                self.queue.park_unschedulable(key)
                return True
            del self._waking[key]  # that wake is over (failed, or done): decide anew
        chosen_by_core = decision.wake_node is not None and decision.wake_message is not None
        if decision.wake_node is not None and decision.wake_message is not None:
            target, message = decision.wake_node, decision.wake_message
            by: str = decision.mode
        else:
            choice = wake.wake_target(
                obj, self.nodes.store, self.pods.store.values(), self.book.kb, time.time()
            )
            if choice is None:
                return False
            target, by = choice.node, "power policy"
            message = (
                f"0/{len(self.nodes.store)} awake nodes fit; waking node {choice.node}"
                f" (about {choice.wake_seconds:g} s)"
            )
        self._waking[key] = PendingWake(target, chosen_by_core)
        self._bind_slots.release()
        self.metrics.attempts.labels(
            "waiting-for-wake", str(obj["spec"].get("schedulerName"))
        ).inc()
        self.queue.park_unschedulable(key)
        log.info("waking a node for the pod", pod=key, node=target, chosen_by=by)
        self._event(obj, key, "Normal", contract.WAKING_NODE_EVENT_REASON, message)
        stamp = _now().strftime("%Y-%m-%dT%H:%M:%SZ")

        async def request_then_wait() -> None:
            # In this order: whoever reads the pod's WaitingForNodeWake finds the request
            # on the node (the experiment's simulated manager does).
            await self._request_wake(target, wake.request_patch(key, stamp))
            await set_pod_scheduled_false(
                self.kube, obj, contract.WAITING_FOR_NODE_WAKE_REASON, message
            )

        self.writer.submit(f"wake {target} for {key}", request_then_wait)
        return True

    async def _request_wake(self, node: str, patch: JSON) -> None:
        try:
            await self.kube.patch(api_path("v1", "nodes", name=node), patch)
        except ApiError as exc:
            log.warning("wake request not written", node=node, error=str(exc))

    def _event(self, obj: JSON, key: str, type_: str, reason: str, note: str) -> None:
        self.events.post(ObjectRef.pod(obj), type_, reason, note)

    async def _bind(
        self, obj: JSON, pod: PodInfo, key: str, decision: Decision, profile_name: str
    ) -> None:
        node = decision.node
        assert node is not None
        t0 = time.perf_counter()
        try:
            if self.elector is not None and not self.elector.is_leader():
                raise ApiError(0, "NotLeader", "lost the lease before binding")
            await self.kube.bind(pod.namespace, pod.name, pod.uid, node)
        except ApiError as exc:
            self.state.forget(pod.uid or pod.key)
            self.metrics.bind_errors.labels(str(exc.status)).inc()
            self.metrics.attempts.labels("error", profile_name).inc()
            if exc.status in (404, 409) or "already assigned" in exc.message:
                # Gone, replaced (UID precondition) or bound by someone else: nothing to do.
                log.info("bind skipped", pod=key, status=exc.status, error=exc.message)
                self.queue.forget(key)
                return
            delay = self.queue.retry_after_error(key)
            log.warning("bind failed, retrying", pod=key, node=node, error=str(exc), retry_in=delay)
            self._event(obj, key, "Warning", "FailedScheduling", f"Binding rejected: {exc.message}")
            return
        finally:
            self._bind_slots.release()
        self.bound += 1
        self.metrics.bind_latency.observe(time.perf_counter() - t0)
        self.metrics.attempts.labels("scheduled", profile_name).inc()
        first = self._first_seen.pop(key, None)
        if first is not None:
            self.metrics.e2e_latency.observe(time.monotonic() - first)
        self.queue.done(key)
        log.info(
            "bound", pod=key, node=node, score=_winner_score(decision), fallback=decision.fallback
        )
        self._event(obj, key, "Normal", "Scheduled", decision.message)


@dataclass(frozen=True, slots=True)
class PendingWake:
    """A wake we asked for a pod: the node, and whether the core chose it as the pod's
    best placement (``Decision.wake_node``) rather than the power policy as a fallback."""

    node: str
    chosen_by_core: bool


def _why_ended(task: asyncio.Task[Any]) -> str:
    if task.cancelled():
        return f"{task.get_name()} was cancelled"
    exc = task.exception()
    if exc is None:
        if task.get_name() == "leader-election":
            return "leadership lost"
        return f"{task.get_name()} ended"
    return f"{task.get_name()} failed: {type(exc).__name__}: {exc}"


def _winner_score(d: Decision) -> float | None:
    return round(d.ranking[0].score, 2) if d.ranking else None
