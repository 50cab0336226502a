"""The names that users, manifests and tests rely on.

This is the only module that spells these strings; everything else imports them
from here, so that renaming one is a one-line change (and a breaking one).
"""

from __future__ import annotations

from typing import Final, Literal

GROUP: Final = "energy.thesis.io"
VERSION: Final = "v1alpha1"
API_VERSION: Final = f"{GROUP}/{VERSION}"

#: ``spec.schedulerName`` a pod sets to be placed by energysched.
SCHEDULER_NAME: Final = "energy-scheduler"

#: Pod label naming the workload type.
WORKLOAD_TYPE_LABEL: Final = f"{GROUP}/workload-type"
WorkloadType = Literal["training", "inference", "sequential"]
WORKLOAD_TYPES: Final[tuple[WorkloadType, ...]] = ("training", "inference", "sequential")

#: Pod annotation: 0.0 = energy only, 1.0 = performance only.
PERFORMANCE_WEIGHT_ANNOTATION: Final = f"{GROUP}/performance-weight"

#: Node annotations written by the monitor.
CURRENT_WATTS_ANNOTATION: Final = f"{GROUP}/current-watts"
CURRENT_WATTS_TIMESTAMP_ANNOTATION: Final = f"{GROUP}/current-watts-timestamp"
#: Where a node's reading comes from (``shelly``, ``rapl``, ``nvml``, ``model``);
#: software estimates say so here.
POWER_SOURCE_ANNOTATION: Final = f"{GROUP}/power-source"
#: Node annotation (set by operators) overriding the monitor's ConfigMap entry for this
#: node: a JSON object such as ``{"kind": "shelly", "address": "http://10.0.0.7"}``.
POWER_SOURCE_CONFIG_ANNOTATION: Final = f"{GROUP}/power-source-config"

#: The EnergyProfile custom resource (cluster-scoped).
PROFILE_KIND: Final = "EnergyProfile"
PROFILE_PLURAL: Final = "energyprofiles"
PROFILE_SINGULAR: Final = "energyprofile"
#: Not "ep": core Endpoints owns that short name and wins, so ours never resolved.
PROFILE_SHORT_NAME: Final = "eprof"

#: Pod annotation: the pod's amount of work in the knowledge base's units for its
#: workload type (training steps, inference samples, sequential Miter), a positive
#: decimal. The ``cluster-energy`` mode predicts the pod's duration from it.
WORK_ANNOTATION: Final = f"{GROUP}/work"

#: Scoring modes: v1.0, v1.1, v2.0, and the marginal energy of the whole cluster.
ScoringMode = Literal["static-raw", "normalized", "hybrid", "cluster-energy"]
SCORING_MODES: Final[tuple[ScoringMode, ...]] = (
    "static-raw",
    "normalized",
    "hybrid",
    "cluster-energy",
)
#: The mode without a config, in the base manifests and in ``make experiment``: the
#: whole cluster's energy. The thesis' versions (static-raw v1.0, normalized v1.1,
#: hybrid v2.0) stay selectable; on a cluster whose big node idles high they send work
#: to the frugal boards while the server idles (README "Scoring, in short").
DEFAULT_SCORING_MODE: Final[ScoringMode] = "cluster-energy"

#: KWOK: a pod annotation holding a Go duration ("45s") after which the
#: simulated pod completes (phase Succeeded). Used by the experiment.
SIMULATED_DURATION_ANNOTATION: Final = f"{GROUP}/simulated-duration"

#: Label put on the KWOK nodes of the local cluster (KWOK's own convention).
KWOK_NODE_ANNOTATION: Final = "kwok.x-k8s.io/node"

#: Node annotation naming the simulated node's class in kb/nodes (local cluster only).
NODE_CLASS_ANNOTATION: Final = f"{GROUP}/node-class"

# -- Power states (sleeping idle nodes, waking them for work) ---------------------------------

#: Node label: power management is opt-in per node; without ``enabled`` nothing is ever
#: done to a node.
POWER_MANAGEMENT_LABEL: Final = f"{GROUP}/power-management"
POWER_MANAGEMENT_ENABLED: Final = "enabled"
#: Node label: ``true`` puts a node in the never-touch set (as the control plane is).
KEEP_AWAKE_LABEL: Final = f"{GROUP}/keep-awake"
#: The power manager config's default keep-awake selector matches this label key.
CONTROL_PLANE_LABEL: Final = "node-role.kubernetes.io/control-plane"

#: Node annotation: the node's power state (one of POWER_STATES) and since when (RFC 3339 UTC).
POWER_STATE_ANNOTATION: Final = f"{GROUP}/power-state"
POWER_STATE_SINCE_ANNOTATION: Final = f"{GROUP}/power-state-since"
PowerState = Literal["awake", "draining", "asleep", "waking", "wake-failed"]
POWER_STATES: Final[tuple[PowerState, ...]] = (
    "awake",
    "draining",
    "asleep",
    "waking",
    "wake-failed",
)
#: The condition reason of each state (CamelCase, as Kubernetes reasons are).
POWER_STATE_REASONS: Final[dict[PowerState, str]] = {
    "awake": "Awake",
    "draining": "Draining",
    "asleep": "Asleep",
    "waking": "Waking",
    "wake-failed": "WakeFailed",
}

#: Node annotations: the latest wake request (RFC 3339 UTC) and the pod that asked
#: (``namespace/name``), written by the scheduler or, for other schedulers' pods, the manager.
WAKE_REQUESTED_ANNOTATION: Final = f"{GROUP}/wake-requested"
WAKE_REQUESTED_BY_ANNOTATION: Final = f"{GROUP}/wake-requested-by"

#: Node annotation: how the node is woken and put to sleep, strictly validated JSON, e.g.
#: ``{"method": "wol", "mac": "aa:bb:cc:dd:ee:ff", "broadcast": "192.168.1.255", "port": 9}``.
POWER_CONTROL_ANNOTATION: Final = f"{GROUP}/power-control"
WakeMethod = Literal["wol", "shelly-relay", "command", "none", "redfish"]
WAKE_METHODS: Final[tuple[WakeMethod, ...]] = (
    "wol",
    "shelly-relay",
    "command",
    "none",
    "redfish",
)

#: Taint (effect NoSchedule) on a node from before its drain/sleep until it is awake and Ready.
ASLEEP_TAINT_KEY: Final = f"{GROUP}/asleep"
ASLEEP_TAINT_EFFECT: Final = "NoSchedule"

#: Node condition type: True when awake; reason = POWER_STATE_REASONS[state].
POWER_STATE_CONDITION: Final = "EnergyschedPowerState"

#: PodScheduled=False reason of a pod waiting for its node to wake, and the pod's Event reason.
WAITING_FOR_NODE_WAKE_REASON: Final = "WaitingForNodeWake"
WAKING_NODE_EVENT_REASON: Final = "WakingNode"

#: How a node without a suspend state is put to sleep (``spec.powerStates.sleepKind``).
SleepKind = Literal["suspend", "halt"]
SLEEP_KINDS: Final[tuple[SleepKind, ...]] = ("suspend", "halt")

#: Prometheus metric names of the power manager.
METRIC_POWER_STATE: Final = "energysched_power_state"
METRIC_POWER_TRANSITIONS: Final = "energysched_power_transitions_total"
METRIC_POWER_SLEEP_SKIPPED: Final = "energysched_power_sleep_skipped_total"
METRIC_POWER_WAKE_SECONDS: Final = "energysched_power_wake_seconds"
METRIC_POWER_WAKE_FAILURES: Final = "energysched_power_wake_failures_total"
METRIC_POWER_CONFIG_RELOADS: Final = "energysched_power_config_reloads_total"

#: Node annotation written by the power manager for the node agent: RFC 3339 UTC time of the
#: request and what to do, ``<time> suspend`` or ``<time> poweroff``. The agent acts once per
#: request, and only on a node that carries the asleep taint and runs no workload pod.
SLEEP_REQUESTED_ANNOTATION: Final = f"{GROUP}/sleep-requested"
#: Node annotation: consecutive failed wakes (the wake backoff survives a manager restart).
WAKE_FAILURES_ANNOTATION: Final = f"{GROUP}/wake-failures"

#: Node annotation: the node is ``draining`` for consolidation (its pods are being evicted so
#: that it can sleep); the value is when the drain began (RFC 3339 UTC). Without it a
#: ``draining`` node is expected to be empty already.
CONSOLIDATION_ANNOTATION: Final = f"{GROUP}/consolidating-since"
#: Pod annotations read by consolidation: ``"false"`` never evicts the pod, ``"true"`` allows
#: it despite local storage (emptyDir, hostPath). Cluster-autoscaler's key is honoured too.
SAFE_TO_EVICT_ANNOTATION: Final = f"{GROUP}/safe-to-evict"
CA_SAFE_TO_EVICT_ANNOTATION: Final = "cluster-autoscaler.kubernetes.io/safe-to-evict"
#: Node Event reasons of consolidation: a node was not drained because of a pod (Warning),
#: a pod of the node was evicted (Normal). The drain itself is the state's Event (Draining).
DRAIN_BLOCKED_EVENT_REASON: Final = "DrainBlocked"
POD_EVICTED_EVENT_REASON: Final = "PodEvicted"
