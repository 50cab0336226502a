"""The power manager: puts idle opted-in nodes to sleep and wakes them when work needs them.

A controller of its own (``energysched power-manager``), leader-elected with the
scheduler's Lease elector. It keeps nodes, pods and EnergyProfiles in reflectors and, every
``interval`` seconds while it leads, makes one pass:

1. **In-flight states.** ``draining``: check again, from the API server and not the cache,
   that the node runs no workload pod; then the method's sleep step (the node agent's
   suspend/poweroff, a relay, a command) and ``asleep``. Any pod on it, or a failed step:
   the taint comes off and the node is ``awake`` again (this is also what a restarted
   manager does with a node it left ``draining``). ``waking``: Ready with a heartbeat
   newer than the wake -> taint off, ``awake``; past the wake timeout -> ``wake-failed``
   (the taint stays, so nothing is placed on it; the pod goes elsewhere), retried after a
   backoff when work still asks for it.
2. **Waking.** A pending pod that a scheduler found unschedulable (PodScheduled=False,
   reason Unschedulable: kube-scheduler's, energysched's) and that fits no awake node asks
   the policy for a sleeping node; the manager writes the wake request on it (as the
   scheduler does for its own pods) and wakes every node whose request is newer than its
   sleep.
3. **Sleeping.** The pure policy's verdicts; for each node to sleep: taint
   (``energy.thesis.io/asleep:NoSchedule``) and ``draining`` in one optimistic write (the
   node's resourceVersion), then step 1 at once.

Why the taint makes the node lifecycle controller harmless: a sleeping node goes NotReady
and gets ``node.kubernetes.io/unreachable`` taints; the NoExecute one evicts pods that do
not tolerate it, but the node runs none (only DaemonSet pods, which tolerate it). Our
NoSchedule taint keeps every scheduler off the node until it is Ready again.

State lives on the node (annotations, the ``EnergyschedPowerState`` condition), so a new
leader continues where the old one stopped; Events and metrics say what happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import structlog

from energysched.contract import (
    API_VERSION,
    ASLEEP_TAINT_EFFECT,
    ASLEEP_TAINT_KEY,
    CONSOLIDATION_ANNOTATION,
    DRAIN_BLOCKED_EVENT_REASON,
    POD_EVICTED_EVENT_REASON,
    POWER_CONTROL_ANNOTATION,
    POWER_STATE_ANNOTATION,
    POWER_STATE_CONDITION,
    POWER_STATE_REASONS,
    POWER_STATE_SINCE_ANNOTATION,
    PROFILE_PLURAL,
    SLEEP_REQUESTED_ANNOTATION,
    WAKE_FAILURES_ANNOTATION,
    WAKE_REQUESTED_ANNOTATION,
    WAKE_REQUESTED_BY_ANNOTATION,
    PowerState,
)
from energysched.core.parse import parse_rfc3339
from energysched.kb.profiles import KnowledgeBase, ProfileSpec
from energysched.kb.validate import parse_profile
from energysched.kube.client import JSON, ApiError, KubeClient, api_path
from energysched.kube.events import EventWriter, ObjectRef
from energysched.kube.files import ConfigFile
from energysched.kube.reflector import EventType, Reflector
from energysched.power import consolidation, policy
from energysched.power.consolidation import ConsolidationConfig
from energysched.power.policy import NodeView, PolicyConfig, Resources
from energysched.powermanager import drain, view
from energysched.powermanager.config import ManagerConfig
from energysched.powermanager.control import (
    NoneControl,
    PowerControl,
    RedfishControl,
    ShellyRelayControl,
    WolControl,
    parse_power_control,
)
from energysched.powermanager.methods import MethodError, PowerMethod
from energysched.powermanager.methods.build import build_method
from energysched.powermanager.metrics import PowerMetrics
from energysched.powermanager.wanted import wake_target
from energysched.strict import DocumentError
from energysched_monitor.secret import Secret

log = structlog.get_logger(__name__)

CONTROLLER = "energysched-power-manager"


def rfc3339(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _epoch(value: dt.datetime | None) -> float | None:
    return value.timestamp() if value is not None else None


@dataclass
class _Tracking:
    """What the manager remembers of a node between passes (not needed across restarts)."""

    empty_since: float | None = None
    #: After a failed sleep step: not tried again before this time (doubling backoff).
    sleep_blocked_until: float = 0.0
    sleep_failures: int = 0
    #: The last "not drained because of a pod" message reported (Event and log once each).
    drain_block: str | None = None


class PowerManager:
    def __init__(
        self,
        kube: KubeClient,
        events_kube: KubeClient,
        config: ManagerConfig | ConfigFile[ManagerConfig],
        metrics: PowerMetrics | None = None,
        clock: Any = time.time,
        *,
        namespace: str = "energysched",
        config_map: str = "",
    ) -> None:
        self.kube = kube
        #: The config file, reloaded before every pass (None: ``config`` never changes).
        self.source = config if isinstance(config, ConfigFile) else None
        self.config = config.current if isinstance(config, ConfigFile) else config
        #: The manager's namespace: the only one whose Secrets (plug credentials) it reads.
        self.namespace = namespace
        #: The ConfigMap the config file comes from (in ``namespace``): a rejected edit is a
        #: Warning Event about it, in its namespace (without a uid: the manager may not read
        #: ConfigMaps, so ``kubectl get events``, not ``describe configmap``, lists it).
        self.config_map = config_map
        self.metrics = metrics or PowerMetrics()
        self.clock = clock
        # No fixed namespace: Events about Nodes go to "default" (cluster-scoped objects'
        # Events must), about the ConfigMap to its own namespace.
        self.events = EventWriter(events_kube, CONTROLLER, "PowerManagement")
        self.nodes = Reflector(kube, api_path("v1", "nodes"), self._on_node, name="nodes")
        self.pods = Reflector(kube, api_path("v1", "pods"), self._ignore, name="pods")
        self.profiles = Reflector(
            kube, api_path(API_VERSION, PROFILE_PLURAL), self._ignore, name="energyprofiles"
        )
        # Read by consolidation only; watched always, so that turning it on needs no restart.
        self.pdbs = Reflector(
            kube,
            api_path("policy/v1", "poddisruptionbudgets"),
            self._ignore,
            name="poddisruptionbudgets",
        )
        self._tracking: dict[str, _Tracking] = {}
        self._tasks: list[asyncio.Task[None]] = []
        #: Pods (uid) a wake was already requested for, so one pod wakes one node.
        self._served: dict[str, str] = {}
        self.passes = 0

    # -- reflector plumbing ----------------------------------------------------------

    def _ignore(self, event: EventType, obj: JSON, old: JSON | None) -> None:
        return None

    def _on_node(self, event: EventType, obj: JSON, old: JSON | None) -> None:
        if event == "DELETED":
            self._tracking.pop(view.name_of(obj), None)
            self.metrics.forget(view.name_of(obj))

    def start(self) -> None:
        self.events.start()
        for reflector in (self.nodes, self.pods, self.profiles, self.pdbs):
            self._tasks.append(asyncio.create_task(reflector.run(), name=reflector.name))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.events.stop()

    async def synced(self) -> None:
        # Not the budgets: without them (e.g. RBAC from an older release) everything but
        # consolidation works, and consolidation drains nothing until they are listed.
        for reflector in (self.nodes, self.pods, self.profiles):
            await reflector.synced.wait()

    def healthy(self) -> bool:
        return self.nodes.up and self.pods.up

    async def run(self, leading: Any = lambda: True) -> None:
        """Pass after pass, while ``leading()``; never raises but on cancellation."""
        await self.synced()
        while True:
            # Every replica reloads, so that a standby takes over with the config in force.
            self.reload_config()
            if leading() and self.healthy():
                try:
                    await self.reconcile()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("power manager pass failed; next pass retries")
            await asyncio.sleep(self.config.interval)

    def reload_config(self) -> bool:
        """Pick up a changed config file; True when a new config is now in force."""
        if self.source is None:
            return False
        new = self.source.reload(self._count_reload)
        if new is None:
            return False
        changed = _changes(self.config, new)
        self.config = new
        log.info("config reloaded", path=str(self.source.path), changed=changed)
        return True

    def _count_reload(self, result: str) -> None:
        self.metrics.config_reloads.labels(result=result).inc()
        if result == "invalid" and self.source is not None and self.config_map:
            ref = ObjectRef("v1", "ConfigMap", self.config_map, self.namespace)
            why = self.source.last_error or "invalid config"
            self.events.post(ref, "Warning", "ConfigRejected", why)

    # -- one pass --------------------------------------------------------------------

    def knowledge_base(self) -> KnowledgeBase:
        specs: list[ProfileSpec] = []
        for obj in self.profiles.store.values():
            parsed = parse_profile(obj)
            if isinstance(parsed, ProfileSpec):
                specs.append(parsed)
        return KnowledgeBase.of(specs)

    def views(self, now: float) -> dict[str, NodeView]:
        kb = self.knowledge_base()
        by_node = view.pods_by_node(self.pods.store.values())
        out: dict[str, NodeView] = {}
        for node in self.nodes.store.values():
            name = view.name_of(node)
            pods = by_node.get(name, view.NodePods(Resources(), ()))
            track = self._tracking.setdefault(name, _Tracking())
            state = view.power_state(node)
            anns = view.annotations_of(node)
            # Empty time counts only while awake: a node that wakes (for a pod not bound
            # yet) starts from zero, or it would be "empty past break-even" at once and
            # drained again before its pod arrives.
            if pods.workload or state != "awake":
                track.empty_since = None
            elif track.empty_since is None:
                # First seen empty now: a restarted manager waits the full hold again,
                # which errs on the side of keeping nodes awake.
                track.empty_since = now
            resolved = kb.resolve(view.labels_of(node))
            failures = policy.wake_failures_of(anns)
            out[name] = NodeView(
                name=name,
                managed=view.managed(node),
                keep_awake=view.keep_awake(node, self.config.keep_awake),
                state=state,
                ready=view.is_ready(node),
                allocatable=view.allocatable(node),
                requested=pods.requested,
                workload_pods=len(pods.workload),
                empty_since=track.empty_since,
                idle_watts=resolved.profile.idle_power_watts if resolved else None,
                power=resolved.profile.power_states if resolved else None,
                wake_failures=failures,
                last_wake_failure=(
                    _epoch(view.state_since(node)) if state == "wake-failed" else None
                ),
            )
            if view.managed(node):
                self.metrics.set_state(name, state)
        return out

    async def reconcile(self) -> None:
        now = self.clock()
        self.passes += 1
        views = self.views(now)
        nodes = {view.name_of(n): n for n in self.nodes.store.values()}
        for name, node in nodes.items():
            if not view.managed(node) and not view.has_asleep_taint(node):
                continue
            await self._advance(node, views[name], now)
        await self._request_wakes(views, now)
        verdicts = policy.sleep_verdicts(views.values(), now, self.config.policy)
        began = False
        busy: list[str] = []
        for verdict in verdicts:
            if not views[verdict.node].managed:
                continue
            if not verdict.sleep:
                if verdict.reason is not None:
                    self.metrics.skipped.labels(reason=verdict.reason).inc()
                if verdict.reason == "runs-pods":
                    busy.append(verdict.node)
                continue
            node = nodes[verdict.node]
            blocker = self._sleep_blocker(node, now)
            if blocker is not None:
                self.metrics.skipped.labels(reason=blocker).inc()
                continue
            await self._begin_sleep(node, views[verdict.node], verdict.message)
            began = True
        if self.config.consolidation.enabled and busy and not began:
            await self._consolidate(views, nodes, busy, now)

    def _sleep_blocker(self, node: Mapping[str, Any], now: float) -> str | None:
        """Why the manager itself cannot sleep ``node`` now (the skip metric's reason)."""
        control = self._control(node)
        if control is None or isinstance(control, NoneControl):
            return "invalid-power-control" if control is None else "method-none"
        if now < self._tracking[view.name_of(node)].sleep_blocked_until:
            return "sleep-failed-backoff"
        return None

    # -- consolidation -------------------------------------------------------------------

    async def _consolidate(
        self,
        views: Mapping[str, NodeView],
        nodes: Mapping[str, Mapping[str, Any]],
        busy: list[str],
        now: float,
    ) -> None:
        """Drain at most one busy node so that it can sleep (``consolidation.enabled``)."""
        if not self.pdbs.synced.is_set():
            log.warning("PodDisruptionBudgets not listed (RBAC?): no drain until they are")
            return
        if any(v.managed and v.state in ("draining", "waking") for v in views.values()):
            return  # one drain at a time, and none while a node wakes
        if any(
            str(view.meta(p).get("uid", "")) in self._served and not view.pod_node(p)
            for p in self.pods.store.values()
        ):
            return  # pods wait for a node to wake: room is short, do not take more away
        candidates = [n for n in busy if self._sleep_blocker(nodes[n], now) is None]
        if not candidates:
            return
        # Only awake, Ready nodes can take pods: the filters run against those alone.
        infos = drain.node_infos(
            nodes[n] for n, v in views.items() if v.state == "awake" and v.ready
        )
        pdbs = list(self.pdbs.store.values())
        work = drain.workload_by_node(self.pods.store.values())
        facts = {n: [drain.pod_facts(p, pdbs, infos) for p in work.get(n, [])] for n in candidates}
        every = consolidation.drain_verdicts(
            views.values(),
            facts,
            drain.disruptions_allowed(pdbs),
            now,
            self.config.policy,
            self.config.consolidation,
        )
        verdicts = [v for v in every if v.node in facts]
        for verdict in verdicts:
            track = self._tracking[verdict.node]
            if verdict.drain or verdict.reason is None:
                continue
            self.metrics.skipped.labels(reason=f"drain-{verdict.reason}").inc()
            if verdict.reason not in consolidation.POD_BLOCKS:
                track.drain_block = None
                continue
            if verdict.message != track.drain_block:
                track.drain_block = verdict.message
                log.warning(
                    "node not drained", node=verdict.node, reason=verdict.reason,
                    why=verdict.message,
                )  # fmt: skip
                self.events.post(
                    _node_ref(nodes[verdict.node]),
                    "Warning",
                    DRAIN_BLOCKED_EVENT_REASON,
                    f"{verdict.message}; the node stays awake",
                )
        choice = consolidation.choose_drain(verdicts)
        if choice is None:
            return
        self._tracking[choice.node].drain_block = None
        if (
            await self._write_state(
                nodes[choice.node],
                "draining",
                f"{choice.message}; tainted, evicting",
                taint=True,
                extra={CONSOLIDATION_ANNOTATION: rfc3339(now)},
            )
            and self.config.drain_settle_seconds <= 0
        ):
            fresh = self.nodes.store[choice.node]
            await self._continue_drain(fresh, views[choice.node], now)

    async def _continue_drain(self, node: Mapping[str, Any], nv: NodeView, now: float) -> None:
        """Evict what is left on a node drained for consolidation; once it is empty, sleep it.

        Each pod goes through the Eviction API (PDBs decide again at eviction time). A pod
        that cannot be evicted (one that arrived before the taint, a budget that refuses),
        a drain past its timeout, or consolidation turned off: the node is given back,
        awake and untainted, and the pods already evicted run elsewhere.
        """
        name = view.name_of(node)
        anns = view.annotations_of(node)
        if anns.get(SLEEP_REQUESTED_ANNOTATION) is not None:
            # The drain is over and the sleep step has begun (the node agent may already
            # have suspended the machine): only the sleep path may give the node back.
            await self._continue_sleep(node, nv, now)
            return
        began = parse_rfc3339(anns.get(CONSOLIDATION_ANNOTATION, ""))
        began_at = began.timestamp() if began is not None else now
        cfg = self.config.consolidation
        if not cfg.enabled:
            await self._give_back(node, "drain abandoned: consolidation was turned off")
            return
        pods = await self._pods_on(name)
        if pods is None:
            return
        if not pods:
            await self._continue_sleep(node, nv, now)
            return
        if now - began_at > cfg.drain_timeout_seconds:
            keys = ", ".join(_key(p) for p in pods[:5])
            await self._drain_failed(
                node,
                "timeout",
                f"drain timed out after {cfg.drain_timeout_seconds:g} s, still on it: {keys}",
                now,
            )
            return
        for pod in pods:
            facts = drain.pod_facts(pod, (), {})
            block = consolidation.pod_block(facts, {}, {})
            if block is not None and block[0] != "pod-terminating":
                await self._drain_failed(node, block[0], f"drain abandoned: {block[1]}", now)
                return
        for pod in pods:
            if view.meta(pod).get("deletionTimestamp"):
                continue  # evicted already, terminating
            ns, pod_name = str(view.meta(pod).get("namespace", "")), view.name_of(pod)
            try:
                await self.kube.create(
                    api_path("v1", "pods", ns, pod_name, "eviction"), drain.eviction(pod)
                )
            except ApiError as exc:
                if exc.not_found or exc.conflict:
                    continue  # gone already, or replaced (the uid precondition)
                if exc.status == 429:
                    await self._drain_failed(
                        node,
                        "pdb",
                        f"drain abandoned: the eviction of {ns}/{pod_name} was refused"
                        f" ({exc.message[:200]})",
                        now,
                    )
                    return
                log.warning("eviction failed; next pass retries", pod=f"{ns}/{pod_name}",
                            node=name, error=str(exc))  # fmt: skip
                continue
            log.info("pod evicted", node=name, pod=f"{ns}/{pod_name}")
            self.events.post(
                _node_ref(node),
                "Normal",
                POD_EVICTED_EVENT_REASON,
                f"evicted {ns}/{pod_name} so that the node can sleep (consolidation)",
            )

    async def _drain_failed(
        self, node: Mapping[str, Any], reason: str, message: str, now: float
    ) -> None:
        """Give the node back (awake, untainted) and wait a backoff before draining it again."""
        name = view.name_of(node)
        track = self._tracking.setdefault(name, _Tracking())
        track.sleep_failures += 1
        wait = policy.wake_backoff_seconds(track.sleep_failures, self.config.policy)
        track.sleep_blocked_until = now + wait
        self.metrics.skipped.labels(reason=f"drain-{reason}").inc()
        log.warning("drain abandoned", node=name, reason=reason, why=message)
        await self._give_back(
            node, f"{message}; the node stays awake, not drained again for {wait:.0f} s",
            warning=True,
        )  # fmt: skip

    # -- state on the node -------------------------------------------------------------

    async def _write_state(
        self,
        node: Mapping[str, Any],
        new: PowerState,
        message: str,
        *,
        taint: bool | None = None,
        extra: Mapping[str, str | None] | None = None,
        event_type: str = "Normal",
    ) -> bool:
        """One optimistic write of the state annotation (and the taint), then the condition.

        False when the node changed under us (409) or is gone: the next pass sees it anew.
        """
        name = view.name_of(node)
        old = view.power_state(node)
        now = self.clock()
        patch: JSON = {
            "metadata": {
                "resourceVersion": view.meta(node).get("resourceVersion"),
                "annotations": {
                    POWER_STATE_ANNOTATION: new,
                    POWER_STATE_SINCE_ANNOTATION: rfc3339(now),
                    # a drain for consolidation ends with the draining state
                    **({} if new == "draining" else {CONSOLIDATION_ANNOTATION: None}),
                    **(extra or {}),
                },
            }
        }
        if taint is not None:
            others = [t for t in view.taints(node) if t.get("key") != ASLEEP_TAINT_KEY]
            if taint:
                others.append(
                    {"key": ASLEEP_TAINT_KEY, "effect": ASLEEP_TAINT_EFFECT, "timeAdded": None}
                )
                others[-1].pop("timeAdded")
            patch["spec"] = {"taints": others}
        try:
            updated = await self.kube.patch(api_path("v1", "nodes", name=name), patch)
        except ApiError as exc:
            if exc.conflict or exc.not_found:
                log.info("node changed under us; next pass", node=name, wanted=new)
                return False
            raise
        self.nodes.store[name] = updated  # the watch brings the same; do not act on stale
        condition = {
            "type": POWER_STATE_CONDITION,
            "status": "True" if new == "awake" else "False",
            "reason": POWER_STATE_REASONS[new],
            "message": message[:1000],
            "lastTransitionTime": rfc3339(now),
            "lastHeartbeatTime": rfc3339(now),
        }
        try:
            # The status write moves the resourceVersion too: keep what it returned.
            updated = await self.kube.patch(
                api_path("v1", "nodes", name=name, subresource="status"),
                {"status": {"conditions": [condition]}},
                "strategic",
            )
            self.nodes.store[name] = updated
        except ApiError as exc:
            log.warning("could not write the power-state condition", node=name, error=str(exc))
        if old != new:
            self.metrics.transitions.labels(node=name, **{"from": old, "to": new}).inc()
        self.metrics.set_state(name, new)
        reason = POWER_STATE_REASONS[new]
        self.events.post(_node_ref(updated), event_type, reason, message)
        log.info("power state", node=name, old=old, new=new, why=message)
        return True

    def _control(self, node: Mapping[str, Any]) -> PowerControl | None:
        name = view.name_of(node)
        raw = view.annotations_of(node).get(POWER_CONTROL_ANNOTATION)
        if raw is None:
            self.events.post(
                _node_ref(node),
                "Warning",
                "NoPowerControl",
                f"annotation {POWER_CONTROL_ANNOTATION} is missing: the node stays awake",
            )
            return None
        try:
            return parse_power_control(raw, where=POWER_CONTROL_ANNOTATION)
        except DocumentError as exc:
            log.warning(
                "bad power-control annotation; the node stays awake", node=name, error=str(exc)
            )
            self.events.post(
                _node_ref(node), "Warning", "InvalidPowerControl", f"{exc}; the node stays awake"
            )
            return None

    async def _method(self, node: Mapping[str, Any], control: PowerControl) -> PowerMethod:
        username, password = "admin", None
        if isinstance(control, ShellyRelayControl | RedfishControl) and control.credentials_secret:
            username, password = await self._credentials(control.credentials_secret)
        return build_method(
            control,
            view.name_of(node),
            username=username,
            password=password,
            command_timeout=self.config.command_timeout,
        )

    async def _credentials(self, ref: str) -> tuple[str, Secret | None]:
        import base64

        namespace, _, secret_name = ref.partition("/")
        if namespace != self.namespace:
            raise MethodError(
                "config",
                f"credentialsSecret {ref!r}: the power manager reads Secrets in its own"
                f" namespace {self.namespace!r} only",
            )
        try:
            secret = await self.kube.get(api_path("v1", "secrets", namespace, secret_name))
        except ApiError as exc:
            raise MethodError(
                "config", f"credentialsSecret {ref!r}: {exc.status} {exc.reason}"
            ) from None
        data = secret.get("data") or {}
        try:
            password = base64.b64decode(data.get("password", "")).decode()
            username = base64.b64decode(data.get("username", "")).decode() or "admin"
        except (ValueError, UnicodeDecodeError):
            raise MethodError("config", f"credentialsSecret {ref!r}: not base64 UTF-8") from None
        return username, Secret(password) if password else None

    # -- sleeping ----------------------------------------------------------------------

    async def _begin_sleep(self, node: Mapping[str, Any], nv: NodeView, why: str) -> None:
        if not await self._write_state(
            node, "draining", f"{why}; tainted, checking it is empty", taint=True
        ):
            return
        if self.config.drain_settle_seconds <= 0:
            fresh = self.nodes.store[view.name_of(node)]
            await self._continue_sleep(fresh, nv, self.clock())
        # else: a later pass continues, once binds decided before the taint have landed

    async def _pods_on(self, name: str) -> list[Mapping[str, Any]] | None:
        """The workload pods bound to ``name``, read from the API server (not the cache)."""
        try:
            listing = await self.kube.list_all(
                api_path("v1", "pods"), fieldSelector=f"spec.nodeName={name}"
            )
        except ApiError as exc:
            log.warning(
                "cannot list the node's pods; not sleeping it now", node=name, error=str(exc)
            )
            return None
        return drain.workload_by_node(listing.get("items") or []).get(name, [])

    async def _workload_on(self, name: str) -> list[str] | None:
        """The ``namespace/name`` of the workload pods bound to ``name`` (from the API)."""
        pods = await self._pods_on(name)
        return None if pods is None else sorted(_key(p) for p in pods)

    async def _give_back(
        self, node: Mapping[str, Any], message: str, warning: bool = False
    ) -> None:
        await self._write_state(
            node,
            "awake",
            message,
            taint=False,
            extra={SLEEP_REQUESTED_ANNOTATION: None},
            event_type="Warning" if warning else "Normal",
        )

    async def _continue_sleep(self, node: Mapping[str, Any], nv: NodeView, now: float) -> None:
        name = view.name_of(node)
        workload = await self._workload_on(name)
        if workload is None:
            return
        anns = view.annotations_of(node)
        if workload and anns.get(SLEEP_REQUESTED_ANNOTATION) is not None:
            # The node agent may already have halted or suspended the machine: giving the
            # node back would strand the pods; call it asleep, and the next pass wakes it.
            await self._write_state(
                node, "asleep", f"pods arrived after the sleep request: {', '.join(workload[:5])}"
            )
            return
        if workload:
            await self._give_back(node, f"sleep aborted: pods arrived: {', '.join(workload[:5])}")
            return
        control = self._control(node)
        if control is None or isinstance(control, NoneControl):
            await self._give_back(node, "sleep aborted: no usable power-control", warning=True)
            return
        requested = anns.get(SLEEP_REQUESTED_ANNOTATION)
        power = nv.power
        agent_step = _agent_step(control, power.sleep_kind if power else "suspend")
        if agent_step is not None and requested is None:
            await self._write_state(
                node,
                "draining",
                f"empty; asked the node agent to {agent_step}",
                extra={SLEEP_REQUESTED_ANNOTATION: f"{rfc3339(now)} {agent_step}"},
            )
            if isinstance(control, WolControl):
                # Nothing else for the manager to do: the node suspends itself.
                await self._write_state(
                    self.nodes.store[name], "asleep", "the node agent suspends the node"
                )
            return
        if agent_step is not None and isinstance(control, ShellyRelayControl):
            asked = parse_rfc3339(requested.split()[0]) if requested else None
            settle = power.suspend_seconds if power else 30.0
            if asked is not None and now - asked.timestamp() < settle:
                return  # the node is still halting: the relay goes off on a later pass
        try:
            method = await self._method(node, control)
            try:
                await method.finish_sleep()
            finally:
                await method.close()
        except MethodError as exc:
            track = self._tracking.setdefault(name, _Tracking())
            track.sleep_failures += 1
            wait = policy.wake_backoff_seconds(track.sleep_failures, self.config.policy)
            track.sleep_blocked_until = now + wait
            await self._give_back(
                node,
                f"sleep failed ({exc.kind}): {exc.message}; not tried again for {wait:.0f} s",
                warning=True,
            )
            return
        self._tracking.setdefault(name, _Tracking()).sleep_failures = 0
        await self._write_state(self.nodes.store[name], "asleep", f"asleep ({control.method})")

    # -- waking ------------------------------------------------------------------------

    async def _request_wakes(self, views: Mapping[str, NodeView], now: float) -> None:
        live = set()
        for pod in list(self.pods.store.values()):
            uid = str(view.meta(pod).get("uid", ""))
            live.add(uid)
            if uid in self._served or not view.unschedulable_pending(pod):
                continue
            choice = wake_target(
                pod,
                self.nodes.store,
                self.pods.store.values(),
                self.knowledge_base(),
                now,
                self.config.policy,
            )
            if choice is None:
                continue
            node = self.nodes.store.get(choice.node)
            if node is None:
                continue
            key = f"{view.meta(pod).get('namespace', '')}/{view.name_of(pod)}"
            try:
                updated = await self.kube.patch(
                    api_path("v1", "nodes", name=choice.node),
                    {
                        "metadata": {
                            "annotations": {
                                WAKE_REQUESTED_ANNOTATION: rfc3339(now),
                                WAKE_REQUESTED_BY_ANNOTATION: key,
                            }
                        }
                    },
                )
            except ApiError as exc:
                log.warning("could not request a wake", node=choice.node, error=str(exc))
                continue
            self.nodes.store[choice.node] = updated
            self._served[uid] = choice.node
            log.info("wake requested", node=choice.node, pod=key)
            await self._advance(updated, views[choice.node], now)
        for uid in list(self._served):
            if uid not in live:
                del self._served[uid]

    async def _wake(self, node: Mapping[str, Any], nv: NodeView, now: float) -> None:
        name = view.name_of(node)
        control = self._control(node)
        if control is None or isinstance(control, NoneControl):
            await self._fail_wake(node, nv, "no usable power-control to wake it with", "none")
            return
        try:
            method = await self._method(node, control)
            try:
                await method.wake()
            finally:
                await method.close()
        except MethodError as exc:
            await self._fail_wake(node, nv, f"{exc.kind}: {exc.message}", control.method)
            return
        by = view.annotations_of(node).get(WAKE_REQUESTED_BY_ANNOTATION, "")
        await self._write_state(
            self.nodes.store[name],
            "waking",
            f"woken by {control.method} for {by or 'a pending pod'}",
            extra={SLEEP_REQUESTED_ANNOTATION: None},
        )

    async def _fail_wake(
        self, node: Mapping[str, Any], nv: NodeView, why: str, method: str
    ) -> None:
        self.metrics.wake_failures.labels(method=method).inc()
        # The pods that asked this node may ask another one on the next pass.
        name = view.name_of(node)
        self._served = {uid: n for uid, n in self._served.items() if n != name}
        failures = nv.wake_failures + 1
        backoff = policy.wake_backoff_seconds(failures, self.config.policy)
        await self._write_state(
            node,
            "wake-failed",
            f"wake failed ({why}); failure {failures}, retry after {backoff:.0f} s",
            extra={WAKE_FAILURES_ANNOTATION: str(failures)},
            event_type="Warning",
        )

    async def _advance(self, node: Mapping[str, Any], nv: NodeView, now: float) -> None:
        """Move one node along its in-flight state (see the module's docstring)."""
        state = nv.state
        since = _epoch(view.state_since(node)) or now
        requested = _epoch(view.wake_requested(node))
        # Proof that kubelet is back: a Ready heartbeat posted after the wake was asked for
        # (kubelet posts one when it starts; later ones may be minutes apart).
        back_after = view.wake_requested(node) or view.state_since(node)
        if state == "draining":
            if now - since < self.config.drain_settle_seconds:
                pass  # binds decided before the taint may still land
            elif CONSOLIDATION_ANNOTATION in view.annotations_of(node):
                await self._continue_drain(node, nv, now)
            else:
                await self._continue_sleep(node, nv, now)
        elif state == "asleep":
            if nv.workload_pods > 0:
                # A pod bound to a sleeping node (a bind that raced the taint, or a pod that
                # tolerates every taint): never strand it, wake the node.
                await self._wake(node, nv, now)
            elif requested is not None and requested >= since:
                await self._wake(node, nv, now)
            elif view.is_ready(node, heartbeat_after=view.state_since(node)) and _agent_overdue(
                node, nv, since, now, self.config.agent_grace_seconds
            ):
                await self._give_back(
                    node, "the node kept reporting Ready: it did not fall asleep", warning=True
                )
        elif state == "waking":
            if view.is_ready(node, heartbeat_after=back_after):
                asked = requested if requested is not None else since
                took = max(0.0, now - asked)
                self.metrics.wake_seconds.observe(took)
                await self._write_state(
                    node,
                    "awake",
                    f"Ready again {took:.0f} s after the wake request",
                    taint=False,
                    extra={WAKE_FAILURES_ANNOTATION: None},
                )
            else:
                timeout = (
                    policy.wake_timeout_seconds(nv.power, self.config.policy)
                    if nv.power
                    else self.config.policy.wake_timeout_margin_seconds
                )
                if now - since > timeout:
                    control = self._control(node)
                    method = control.method if control is not None else "unknown"
                    await self._fail_wake(
                        node, nv, f"not Ready {timeout:.0f} s after the wake", method
                    )
        elif state == "wake-failed":
            if view.is_ready(node, heartbeat_after=back_after):
                await self._write_state(
                    node,
                    "awake",
                    "Ready again (after a failed wake)",
                    taint=False,
                    extra={WAKE_FAILURES_ANNOTATION: None},
                )
            elif (
                requested is not None
                and requested >= since
                and policy.may_retry_wake(nv, now, self.config.policy)
            ):
                await self._wake(node, nv, now)
        elif state == "awake" and view.has_asleep_taint(node) and nv.ready:
            # Left over (e.g. a manager stopped between two writes): an awake, Ready node
            # must not keep our taint.
            await self._give_back(node, "awake and Ready: removing a left-over asleep taint")


def _agent_step(control: PowerControl, sleep_kind: str) -> str | None:
    if isinstance(control, WolControl):
        return "poweroff" if sleep_kind == "halt" else "suspend"
    if isinstance(control, ShellyRelayControl) and control.halt_first:
        return "poweroff"
    return None


def _agent_overdue(
    node: Mapping[str, Any], nv: NodeView, since: float, now: float, grace: float
) -> bool:
    settle = nv.power.suspend_seconds if nv.power else 0.0
    return now - since > settle + grace and math.isfinite(since)


def _changes(old: ManagerConfig, new: ManagerConfig) -> dict[str, str]:
    """``{"policy.min_awake_nodes": "1 -> 0"}``: what a reload changed, for its log line."""

    def flat(config: ManagerConfig) -> dict[str, object]:
        out: dict[str, object] = {}
        for f in fields(config):
            value = getattr(config, f.name)
            if isinstance(value, PolicyConfig | ConsolidationConfig):
                prefix = "policy" if isinstance(value, PolicyConfig) else f.name
                out.update({f"{prefix}.{p.name}": getattr(value, p.name) for p in fields(value)})
            elif isinstance(value, view.Selector):
                out[f.name] = ",".join(k if v is None else f"{k}={v}" for k, v in value.terms)
            else:
                out[f.name] = value
        return out

    before, after = flat(old), flat(new)
    return {k: f"{before[k]!r} -> {after[k]!r}" for k in after if before.get(k) != after[k]}


def _key(pod: Mapping[str, Any]) -> str:
    return f"{view.meta(pod).get('namespace', '')}/{view.name_of(pod)}"


def _node_ref(node: Mapping[str, Any]) -> ObjectRef:
    m = view.meta(node)
    return ObjectRef("v1", "Node", str(m.get("name", "")), "", str(m.get("uid", "")))
