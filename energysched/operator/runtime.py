"""The operator's I/O shell around :mod:`energysched.operator.status`.

kopf delivers Node and EnergyProfile events to :meth:`OperatorRuntime.on_node`
and :meth:`OperatorRuntime.on_profile`; they only update the in-memory state and
mark it dirty (quick, no I/O, in kopf's event loop). One reconciler task
coalesces bursts (``debounce_seconds``), computes the plan over the whole state
and writes only what differs: a node heartbeat or a resync changes nothing and
writes nothing, a new node patches the one profile it resolves to.

Writes go through our own :class:`~energysched.kube.client.KubeClient`, not
kopf's patch mechanism, because a node event changes the status of *other*
objects (the profiles), and events about cluster-scoped objects must go to the
``default`` namespace, which kopf's poster does not do when run in a pod.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import random
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import structlog

from energysched.contract import API_VERSION, PROFILE_KIND, PROFILE_PLURAL
from energysched.kube.client import ApiError, KubeClient, api_path
from energysched.kube.config import load_access
from energysched.kube.events import EventWriter, ObjectRef
from energysched.learning.observe import Observation
from energysched.learning.status import restore
from energysched.operator.learning import (
    POD_ENERGY_ANNOTATION,
    POD_ENERGY_DETAIL_ANNOTATION,
    Collector,
    Finished,
)
from energysched.operator.metrics import OperatorMetrics
from energysched.operator.status import OperatorState, Plan, WarningMemory, plan

log = structlog.get_logger(__name__)

#: ``reportingController`` of the operator's events; also its User-Agent.
OPERATOR_NAME: Final = "energysched-operator"
EVENTS_API: Final = "events.k8s.io/v1"
PROFILES_PATH: Final = api_path(API_VERSION, PROFILE_PLURAL)
NODES_PATH: Final = api_path("v1", "nodes")


@dataclass(frozen=True)
class OperatorOptions:
    #: kubeconfig file; None: ``$KUBECONFIG``, else the in-cluster service account.
    kubeconfig: str | None = None
    #: Events about cluster-scoped objects must live in ``default`` or ``kube-system``.
    events_namespace: str = "default"
    #: Wait this long after a change before reconciling (coalesces bursts).
    debounce_seconds: float = 0.2
    qps: float = 20.0
    burst: int = 50
    #: Events have their own client and rate limit: a flood never delays status.
    event_qps: float = 5.0
    event_burst: int = 50
    #: kopf's liveness endpoint, e.g. ``http://0.0.0.0:8080/healthz``.
    liveness_endpoint: str | None = None
    #: Learn from finished pods (status.learned) and attribute their energy.
    learning: bool = True
    #: At most one learned-figures update per profile this often (a first one at once).
    learned_interval_seconds: float = 10.0
    #: Prometheus endpoint ``HOST:PORT`` ("" serves none; the registry is kept anyway).
    metrics_address: str = ""


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class OperatorRuntime:
    """State, reconciler and clients of one operator instance (one event loop)."""

    def __init__(self, options: OperatorOptions) -> None:
        self.options = options
        self.state = OperatorState()
        self.memory = WarningMemory()
        self.kube: KubeClient | None = None
        self.events: EventWriter | None = None
        self.last_plan: Plan | None = None
        #: Set (thread-safely) once the first reconcile pass after start-up is done.
        self.synced = threading.Event()
        self.passes = 0
        self.status_patches = 0
        self._dirty: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._event_kube: KubeClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.collector = Collector()
        self.metrics = OperatorMetrics()
        #: Finished pods whose energy and lesson are still to be written.
        self._finished: list[Finished] = []
        self._pod_events: EventWriter | None = None
        #: reason -> refusals already counted in the metric
        self._exported: dict[str, int] = {}
        #: profile -> when its learned figures were last written (monotonic seconds)
        self._learned_written: dict[str, float] = {}

    # -- lifecycle (kopf's startup and cleanup handlers) ---------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        access = load_access(self.options.kubeconfig)
        self.kube = KubeClient(
            access, qps=self.options.qps, burst=self.options.burst, user_agent=OPERATOR_NAME
        )
        self._event_kube = KubeClient(
            access,
            qps=self.options.event_qps,
            burst=self.options.event_burst,
            user_agent=f"{OPERATOR_NAME}-events",
        )
        await self.kube.open()
        await self._event_kube.open()
        # The operator remembers which warnings it gave (WarningMemory): no dedup here.
        self.events = EventWriter(
            self._event_kube,
            OPERATOR_NAME,
            "Reconcile",
            namespace=self.options.events_namespace,
            dedup_window=0,
            workers=1,  # in order
        )
        self.events.start()
        # Events about pods go to the pod's own namespace.
        self._pod_events = EventWriter(
            self._event_kube, OPERATOR_NAME, "Attribute", dedup_window=0, workers=1
        )
        self._pod_events.start()
        if self.options.metrics_address:
            self.metrics.serve(self.options.metrics_address)
        self._dirty = asyncio.Event()
        await self._seed()
        self._task = asyncio.create_task(self._reconcile_forever(), name="operator-reconciler")
        self._dirty.set()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self.events is not None:
            await self.events.stop()
        if self._pod_events is not None:
            await self._pod_events.stop()
        for client in (self.kube, self._event_kube):
            if client is not None:
                await client.close()

    async def _seed(self) -> None:
        """A full LIST of profiles and nodes before the first reconcile.

        Without it, the first passes would run on a half-listed cluster: nodes
        not yet seen, profiles not yet known, and a Warning for every node that
        "no profile matches". Waits (logging) while the CRD is not installed.
        """
        assert self.kube is not None
        delay = 1.0
        while True:
            try:
                profiles = await self.kube.list_all(PROFILES_PATH)
                nodes = await self.kube.list_all(NODES_PATH)
            except ApiError as exc:
                what = (
                    "the EnergyProfile CRD is not installed (apply manifests/crd/)"
                    if exc.not_found
                    else exc.message[:300]
                )
                log.warning("cannot list profiles and nodes yet", error=what, retry_in=delay)
                await asyncio.sleep(delay * (0.8 + 0.4 * random.random()))
                delay = min(delay * 2, 30.0)
                continue
            self.state.replace_all(profiles.get("items") or [], nodes.get("items") or [])
            for body in nodes.get("items") or []:
                self.collector.on_node(body)
            restored = restore(
                self.collector.estimator,
                self.state.kb,
                {name: rec.status for name, rec in self.state.profiles.items()},
            )
            if restored:
                log.info("learned figures resumed from profile status", figures=restored)
            log.info(
                "operator state seeded",
                profiles=len(self.state.profiles),
                valid=len(self.state.kb.profiles),
                nodes=len(self.state.nodes),
            )
            return

    # -- kopf event handlers (quick, no I/O) --------------------------------------------

    def mark_dirty(self) -> None:
        if self._dirty is not None:
            self._dirty.set()

    @property
    def events_posted(self) -> int:
        return self.events.posted if self.events is not None else 0

    def mark_dirty_threadsafe(self) -> None:
        """Ask for a reconcile pass from another thread (e.g. the one embedding the operator)."""
        if self._loop is not None and self._dirty is not None:
            self._loop.call_soon_threadsafe(self._dirty.set)

    def on_profile(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        if event_type == "DELETED":
            name = str((body.get("metadata") or {}).get("name") or "")
            changed = self.state.delete_profile(name)
        else:
            changed = self.state.upsert_profile(body)
        if changed:
            self.mark_dirty()

    def on_node(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        if event_type == "DELETED":
            name = str((body.get("metadata") or {}).get("name") or "")
            changed = self.state.delete_node(name)
            self.collector.delete_node(name)
        else:
            changed = self.state.upsert_node(body)
            if self.options.learning:
                self.collector.on_node(body)
        if changed:
            self.mark_dirty()

    def on_pod(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        """A pod changed: a finished one is observed and its energy attributed (no I/O)."""
        if not self.options.learning:
            return
        if event_type == "DELETED":
            self.collector.forget_pod(body)
            # A pod deleted at once after it finished still teaches; a running one does not.
            if (body.get("status") or {}).get("phase") not in ("Succeeded", "Failed"):
                return
        finished = self.collector.on_pod(body, self.state.kb)
        self._export_refusals()
        if finished is None:
            return
        wt = finished.workload_type or "none"
        if isinstance(finished.outcome, Observation):
            self.metrics.observations.labels(wt).inc()
        if finished.energy is not None:
            self.metrics.pod_energy.labels(finished.namespace, wt).inc(finished.energy.joules)
        self._finished.append(finished)
        self.mark_dirty()

    def _throttle_learned(self, learned: dict[str, dict[str, Any] | None]) -> None:
        """At most one learned update per profile per ``learned_interval_seconds``.

        Each one is a status write here and a knowledge-base swap in every scheduler
        (~10-100 ms at 5,000 nodes): a busy cluster finishing pods every second must not
        make either continuous. A first write and a reset go out at once.
        """
        now = time.monotonic()
        wait = self.options.learned_interval_seconds
        for name, block in learned.items():
            record = self.state.profiles.get(name)
            current = record.status.get("learned") if record is not None else None
            if block is None or current is None or block == current:
                continue
            last = self._learned_written.get(name)
            if last is not None and now - last < wait:
                learned[name] = current  # keep what is there; come back when it is due
                if self._loop is not None and self._dirty is not None:
                    self._loop.call_later(wait - (now - last), self._dirty.set)

    def _export_refusals(self) -> None:
        """Observe's and the estimator's refusal counts into the counter, by reason."""
        for counts in (self.collector.rejections, self.collector.estimator.counts):
            for reason, n in counts.items():
                seen = self._exported.get(reason, 0)
                if n > seen:
                    self.metrics.rejected.labels(reason).inc(n - seen)
                    self._exported[reason] = n

    async def _write_finished(self) -> None:
        """Each finished pod: its energy as an annotation, and one Event saying what it taught."""
        assert self.kube is not None and self._pod_events is not None
        todo, self._finished = self._finished, []
        for f in todo:
            ref = ObjectRef("v1", "Pod", f.name, namespace=f.namespace, uid=f.uid)
            if isinstance(f.outcome, Observation):
                o = f.outcome
                parts = []
                if o.performance is not None:
                    parts.append(f"performance {o.performance:.4g}/s")
                if o.power_watts is not None:
                    parts.append(f"working power {o.power_watts:.4g} W")
                lesson = f"observed on profile {o.profile}: " + ", ".join(parts)
                if o.partial:
                    lesson += f" (not observed: {', '.join(o.partial)})"
            else:
                lesson = f"not learned from: {f.outcome.reason}"
                if f.outcome.detail:
                    lesson += f" ({f.outcome.detail})"
            if f.energy is None:
                self._pod_events.post(
                    ref,
                    "Normal",
                    "EnergyNotAttributed",
                    f"No energy: the node's readings do not cover the run; {lesson}",
                )
                continue
            e = f.energy
            self._pod_events.post(
                ref,
                "Normal",
                "EnergyAttributed",
                f"Used {e.joules:.1f} J ({e.dynamic_joules:.1f} J above idle, "
                f"{e.idle_joules:.1f} J share of idle); {lesson}",
            )
            path = api_path("v1", "pods", namespace=f.namespace, name=f.name)
            patch = {
                "metadata": {
                    "annotations": {
                        POD_ENERGY_ANNOTATION: f"{e.joules:.1f}",
                        POD_ENERGY_DETAIL_ANNOTATION: (
                            f"dynamic={e.dynamic_joules:.1f} idle={e.idle_joules:.1f}"
                        ),
                    }
                }
            }
            try:
                await self.kube.patch(path, patch)
            except ApiError as exc:
                if not exc.not_found:
                    log.warning(
                        "pod energy annotation failed",
                        pod=f"{f.namespace}/{f.name}",
                        status=exc.status,
                        error=exc.message[:300],
                    )

    # -- the reconciler ------------------------------------------------------------------

    async def _reconcile_forever(self) -> None:
        assert self._dirty is not None
        backoff = 0.5
        while True:
            await self._dirty.wait()
            await asyncio.sleep(self.options.debounce_seconds)
            self._dirty.clear()
            try:
                retry = await self.reconcile_once()
            except Exception:  # a bug must not stop the operator; try again later
                log.exception("reconcile pass failed")
                retry = True
            if retry:
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 30.0)
                self._dirty.set()
            else:
                backoff = 0.5

    async def reconcile_once(self) -> bool:
        """One pass: patch the statuses that differ, post the new warnings.

        Returns True when something failed and the pass should be retried.
        """
        assert self.kube is not None and self.events is not None
        learned = self.collector.learned_blocks(self.state.kb) if self.options.learning else None
        if learned is not None:
            self._throttle_learned(learned)
        self._export_refusals()  # a spec change counts as it resets
        for name, block in (learned or {}).items():
            for wt, entry in ((block or {}).get("workloads") or {}).items():
                for figure, got, spec in (
                    ("performance", entry["performance"], entry["specPerformance"]),
                    ("power", entry["powerWatts"], entry["specPowerWatts"]),
                ):
                    self.metrics.learned_ratio.labels(name, wt, figure).set(got / spec)
        the_plan = plan(self.state, self.memory, _now(), learned)
        if self._finished:
            await self._write_finished()
        self.last_plan = the_plan
        self.passes += 1
        for spec in the_plan.warnings:
            log.warning(
                "warning event",
                object=spec.name,
                kind=spec.kind,
                reason=spec.reason,
                message=spec.message,
            )
            self.events.post(
                ObjectRef(
                    "v1" if spec.kind == "Node" else API_VERSION, spec.kind, spec.name, uid=spec.uid
                ),
                "Warning",
                spec.reason,
                spec.message,
            )
        failed = False
        for name, status in the_plan.patches.items():
            path = api_path(API_VERSION, PROFILE_PLURAL, name=name, subresource="status")
            try:
                result = await self.kube.patch(path, {"status": status})
            except ApiError as exc:
                if exc.not_found:
                    continue  # deleted meanwhile; its DELETED event follows
                log.warning(
                    "status patch failed", profile=name, status=exc.status, error=exc.message[:300]
                )
                failed = True
                continue
            self.status_patches += 1
            if "learned" in status:
                self._learned_written[name] = time.monotonic()
            new_status = result.get("status")
            self.state.record_status(name, new_status if isinstance(new_status, Mapping) else {})
            log.info(
                "profile status updated",
                profile=name,
                kind=PROFILE_KIND,
                matched=status["matchedNodeCount"],
                valid=status["conditions"][0]["status"],
            )
        if not self.synced.is_set():
            self.synced.set()
        return failed
