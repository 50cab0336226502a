"""The scheduler process: watch, decide with the pure core, bind, explain.

Flow per pod (kube-scheduler's, minus preemption):

  reflector event → queue → ``schedule_one`` on an immutable snapshot →
  assume (the pod counts on its node at once) → bind in the background
  (POST pods/binding with the pod's UID) → Normal ``Scheduled`` event; or a
  ``FailedScheduling`` Warning, PodScheduled=False and a parked pod that is
  retried when nodes, pods or profiles change (or after at most 5 minutes).

Only the leader binds; decisions stop the moment its lease cannot be renewed.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog

from energysched import contract
from energysched.core.errors import InputError
from energysched.core.framework import Decision, schedule_one
from energysched.core.parse import parse_node, parse_pod, parse_power_reading
from energysched.core.snapshot import ClusterState
from energysched.core.values import PodInfo
from energysched.kb.book import ProfileBook
from energysched.kube.client import JSON, ApiError, KubeClient, api_path
from energysched.kube.reflector import EventType, Reflector, object_key
from energysched.scheduler.config import ConfigError, ConfigSource, SchedulerConfig
from energysched.scheduler.events import EventRecorder, set_pod_scheduled_false
from energysched.scheduler.leader import LeaderElector
from energysched.scheduler.metrics import SchedulerMetrics
from energysched.scheduler.queue import SchedulingQueue

log = structlog.get_logger(__name__)

PROFILES_PATH = api_path(contract.API_VERSION, contract.PROFILE_PLURAL)


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
        self.state = ClusterState()
        self.book = ProfileBook()
        self.queue = SchedulingQueue()
        self.recorder = EventRecorder(self.event_kube, self.cfg.profiles[0].scheduler_name)
        self.pods = Reflector(self.kube, api_path("v1", "pods"), self._on_pod, name="pods")
        self.nodes = Reflector(self.kube, api_path("v1", "nodes"), self._on_node, name="nodes")
        self.profiles = Reflector(self.kube, PROFILES_PATH, self._on_profile, name="energyprofiles")
        self.elector: LeaderElector | None = None
        self._first_seen: dict[str, float] = {}
        self._bind_slots = asyncio.Semaphore(self.max_binds_in_flight)
        self._bind_tasks: set[asyncio.Task[None]] = set()
        self._bad_readings: dict[str, str] = {}
        self._node_views: dict[str, tuple[Any, ...]] = {}  # as last given to upsert_node
        self.bound = 0  # binds that succeeded (tests and the perf benchmark read it)

    # -- event handlers (synchronous, quick) --------------------------------------------

    def _ours(self, pod: Mapping[str, Any]) -> bool:
        spec = pod.get("spec") or {}
        return self.cfg.profile_for(str(spec.get("schedulerName", ""))) is not None

    def _on_pod(self, event: EventType, obj: JSON, old: JSON | None) -> None:
        key = object_key(obj)
        uid = (obj.get("metadata") or {}).get("uid", "")
        if event == "DELETED":
            self.state.remove_pod(uid)
            self.queue.forget(key)
            self._first_seen.pop(key, None)
            self.queue.move_all_to_active()  # capacity freed
            return
        if (
            event == "MODIFIED"
            and old is not None
            and _scheduling_view(old) == _scheduling_view(obj)
        ):
            # Status-only churn (KWOK or a kubelet reporting a running pod): nothing
            # a decision depends on changed. Skipping it keeps the loop free for binds.
            return
        parsed = parse_pod(obj)
        bound = bool((obj.get("spec") or {}).get("nodeName"))
        if isinstance(parsed, PodInfo):
            self.state.add_pod(parsed)
            if bound and parsed.is_terminal:
                self.queue.move_all_to_active()  # it just finished: capacity freed
        elif bound:
            # The API server accepted this pod, so its node really holds it; we
            # cannot count its requests. Say so, with the offending value.
            log.warning("cannot account a bound pod", pod=key, error=parsed.message)
        if bound or (obj.get("metadata") or {}).get("deletionTimestamp"):
            self.queue.forget(key)
            return
        phase = (obj.get("status") or {}).get("phase")
        if self._ours(obj) and phase not in ("Succeeded", "Failed"):
            self._first_seen.setdefault(key, time.monotonic())
            self.queue.add(key)

    def _on_node(self, event: EventType, obj: JSON, old: JSON | None) -> None:
        name = str((obj.get("metadata") or {}).get("name"))
        if event == "DELETED":
            self.state.remove_node(name)
            self._node_views.pop(name, None)
            return
        node = parse_node(obj)
        if isinstance(node, InputError):
            log.warning("node ignored: invalid", node=name, error=node.message)
            self.state.remove_node(name)
            self._node_views.pop(name, None)
            return
        view = _node_view(obj)
        if self._node_views.get(name) != view:
            # Only when the node itself changed since we last applied it: a new node
            # object (even an equal one) makes the next snapshot re-collect every
            # node, O(nodes) per decision, and the monitor's readings and heartbeats
            # arrive many times a second.
            self.state.upsert_node(node)
            self._node_views[name] = view
        reading = parse_power_reading(node)
        if isinstance(reading, InputError):
            if self._bad_readings.get(name) != reading.message:
                self._bad_readings[name] = reading.message
                log.warning("invalid power reading ignored", node=name, error=reading.message)
            reading = None
        else:
            self._bad_readings.pop(name, None)
        self.state.set_reading(name, reading)
        if old is None or _structural(old) != _structural(obj):
            self.queue.move_all_to_active()

    def _on_profile(self, event: EventType, obj: JSON, old: JSON | None) -> None:
        name = str((obj.get("metadata") or {}).get("name"))
        if event == "MODIFIED" and old is not None and _generation(old) == _generation(obj):
            return  # a status-only change (the operator's): nothing the scores depend on
        if event == "DELETED":
            self.book.delete(name)
        else:
            failure = self.book.upsert(obj)
            if failure is not None:
                kept = (
                    "keeping its last valid version"
                    if name in self.book.kb.profiles
                    else "not used"
                )
                log.warning("invalid EnergyProfile", profile=name, error=str(failure), action=kept)
        self.state.set_knowledge_base(self.book.kb)
        self.metrics.profiles.set(len(self.book.kb.profiles))
        self.queue.move_all_to_active()

    # -- main loop ------------------------------------------------------------------

    async def run(self) -> None:
        tasks = [
            asyncio.create_task(self.pods.run(), name="reflector-pods"),
            asyncio.create_task(self.nodes.run(), name="reflector-nodes"),
            asyncio.create_task(self.profiles.run(), name="reflector-profiles"),
            asyncio.create_task(self._poll_config(), name="config"),
        ]
        try:
            await asyncio.gather(self.pods.synced.wait(), self.nodes.synced.wait())
            # Profiles may be missing (CRD not installed yet): wait a little,
            # then schedule with what there is; the neutral fallback says so.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.profiles.synced.wait(), 10)
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
                election = asyncio.create_task(self.elector.run(), name="leader-election")
                tasks.append(election)
                await self.elector.became_leader.wait()
                self.metrics.is_leader.set(1)
                loop = asyncio.create_task(self._schedule_loop(), name="schedule-loop")
                tasks.append(loop)
                done, _ = await asyncio.wait({election, loop}, return_when=asyncio.FIRST_COMPLETED)
                for t in done:
                    t.result()
                # Leadership lost: stop at once (the Deployment restarts us as a candidate).
                self.metrics.is_leader.set(0)
                raise SystemExit("leadership lost")
            await self._schedule_loop()
        finally:
            for t in tasks:
                t.cancel()
            for t in list(self._bind_tasks):
                t.cancel()
            await asyncio.gather(*tasks, *self._bind_tasks, return_exceptions=True)
            if self.elector is not None:
                await self.elector.release()

    async def _poll_config(self) -> None:
        while True:
            await asyncio.sleep(self.config_poll_seconds)
            try:
                new = self.config.poll()
            except ConfigError as exc:
                self.metrics.config_reloads.labels("invalid").inc()
                log.error("config rejected", error=str(exc))
                continue
            if new is not None:
                self.cfg = new
                self.metrics.config_reloads.labels("applied").inc()
                log.info("config reloaded", profiles=[p.scheduler_name for p in new.profiles])
                # Pods of a newly added profile name were ignored until now.
                for key, pod in self.pods.store.items():
                    if self._ours(pod) and not (pod.get("spec") or {}).get("nodeName"):
                        self.queue.add(key)

    async def _schedule_loop(self) -> None:
        last_prune = 0.0
        while True:
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

    # -- one pod ------------------------------------------------------------------------

    def schedule_key(self, key: str) -> None:
        """Decide for one queued pod; starts its bind. Holds one bind slot, releases it."""
        obj = self.pods.store.get(key)
        if obj is None or (obj.get("spec") or {}).get("nodeName") or not self._ours(obj):
            self.queue.forget(key)
            self._bind_slots.release()
            return
        profile = self.cfg.profile_for(str(obj["spec"].get("schedulerName")))
        assert profile is not None
        pod = parse_pod(obj)
        if isinstance(pod, InputError):
            self._reject(obj, key, pod.message, "SchedulerError", "invalid")
            return
        snapshot = self.state.snapshot(_now())
        t0 = time.perf_counter()  # the algorithm alone, as kube-scheduler times it
        decision = schedule_one(pod, snapshot, profile.params())
        self.metrics.algorithm_latency.observe(time.perf_counter() - t0)
        self._count_readings(decision)
        if decision.error is not None:
            self._reject(obj, key, decision.error.message, "SchedulerError", "invalid")
            return
        if decision.node is None:
            self._reject(obj, key, decision.message, "Unschedulable", "unschedulable")
            return
        if decision.fallback:
            self.metrics.neutral_fallbacks.inc()
        self.state.assume(pod, decision.node, _now())
        task = asyncio.create_task(self._bind(obj, pod, key, decision, profile.scheduler_name))
        self._bind_tasks.add(task)
        task.add_done_callback(self._bind_tasks.discard)

    def _count_readings(self, d: Decision) -> None:
        if d.stale_readings:
            self.metrics.stale_readings.labels("stale").inc(d.stale_readings)
        if d.missing_readings:
            self.metrics.stale_readings.labels("missing").inc(d.missing_readings)

    def _reject(self, obj: JSON, key: str, message: str, reason: str, result: str) -> None:
        self._bind_slots.release()
        self.metrics.attempts.labels(result, str(obj["spec"].get("schedulerName"))).inc()
        self.queue.park_unschedulable(key)
        log.info("pod not scheduled", pod=key, reason=reason, message=message)
        self._spawn(self._report_failure(obj, reason, message))

    async def _report_failure(self, obj: JSON, reason: str, message: str) -> None:
        await self.recorder.pod_event(obj, "Warning", "FailedScheduling", message)
        await set_pod_scheduled_false(self.kube, obj, reason, message)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._bind_tasks.add(task)
        task.add_done_callback(self._bind_tasks.discard)

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
            await self.recorder.pod_event(
                obj, "Warning", "FailedScheduling", f"Binding rejected: {exc.message}"
            )
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
        await self.recorder.pod_event(obj, "Normal", "Scheduled", decision.message)


def _winner_score(d: Decision) -> float | None:
    return round(d.ranking[0].score, 2) if d.ranking else None


def _scheduling_view(pod: Mapping[str, Any]) -> tuple[Any, ...]:
    """What of a pod a decision can depend on (not its status details)."""
    meta = pod.get("metadata") or {}
    phase = (pod.get("status") or {}).get("phase")
    return (
        pod.get("spec"),
        meta.get("labels"),
        meta.get("annotations"),
        meta.get("deletionTimestamp"),
        phase in ("Succeeded", "Failed"),
    )


def _generation(obj: Mapping[str, Any]) -> object:
    return (obj.get("metadata") or {}).get("generation")


_READING_ANNOTATIONS = frozenset(
    (contract.CURRENT_WATTS_ANNOTATION, contract.CURRENT_WATTS_TIMESTAMP_ANNOTATION)
)


def _node_view(node: Mapping[str, Any]) -> tuple[Any, ...]:
    """What ``parse_node`` reads, the live reading apart (kept by ``set_reading``)."""
    meta = node.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    return (
        meta.get("labels"),
        {k: v for k, v in annotations.items() if k not in _READING_ANNOTATIONS},
        node.get("spec"),
        (node.get("status") or {}).get("allocatable"),
    )


def _structural(node: Mapping[str, Any]) -> tuple[Any, ...]:
    """What of a node can change where pods fit (not heartbeats or readings)."""
    meta = node.get("metadata") or {}
    spec = node.get("spec") or {}
    status = node.get("status") or {}
    return (
        tuple(sorted((meta.get("labels") or {}).items())),
        repr(spec.get("taints")),
        spec.get("unschedulable"),
        repr(status.get("allocatable")),
    )
