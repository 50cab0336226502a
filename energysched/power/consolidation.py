"""Consolidation: which node that still runs pods may be drained so that it can sleep.

Pure: no I/O and no clock (``now`` is passed in). The power manager reads pods, nodes and
PodDisruptionBudgets into :class:`PodFacts` and calls :func:`drain_verdicts`; it evicts
through the Eviction API (so PDBs are honoured again at eviction time) only the node
:func:`choose_drain` returns. Off by default (the config's ``consolidation.enabled``).

The rules (README, "Consolidation"):

* **Candidates.** Managed, not keep-awake, awake and Ready nodes with figures that run
  workload pods (the sleep policy's ``runs-pods`` nodes).
* **Quiet long enough.** No workload pod started on the node for the policy's hold time
  (break-even + hysteresis): the ski-rental rule the sleep policy applies to empty time,
  applied to the time since the node last received work. It also stops ping-pong: a node
  that has just received evicted pods is not quiet.
* **Every pod evictable.** Each workload pod must be controller-owned (a bare pod would be
  lost), not a Job's (its progress would be lost and its restart cost is unknown), without
  local storage (``emptyDir`` or ``hostPath``: an emptyDir may hold data we cannot see, as
  cluster-autoscaler's rule), not annotated ``safe-to-evict: "false"`` (ours or
  cluster-autoscaler's key; ``"true"`` waives the local-storage rule), not already
  terminating, and each PodDisruptionBudget that selects pods of the node must allow as
  many disruptions as the node has such pods.
* **Room elsewhere.** The pods fit, first-fit decreasing by CPU then memory, in what the
  other awake, Ready nodes that admit them (node selector, affinity, taints: the caller
  says which) have free; pods that were not placed block the drain.
* **The sleep policy agrees.** With the pods moved, the node asks the unchanged sleep
  policy (:func:`energysched.power.policy.sleep_verdicts`) as if it had been empty since
  its last pod arrived: figures, a saving, the headroom policy (min awake nodes, free CPU
  and memory of the nodes left awake, with the moved pods counted on them).
* **Worth it.** The predicted saving must exceed the cost of restarting the pods. The
  forecast of how long the node then stays asleep is the time it has been quiet (as the
  sleep policy forecasts from empty time), so the saving is
  ``(idle - sleep) * (quiet - break_even)``: the idle power not drawn, less the wake's
  energy and the fall into sleep, which is what break-even measures. The cost is
  ``restart_joules`` per pod (the config's ``podRestartJoules``: a start-up on the
  receiving node, image pull, process start, warm-up; the work the pod then does is the
  same wherever it runs and is not counted).

Every node not drained has a :data:`DrainSkip` (the ``drain-`` labels of the skip metric)
and a message naming the pod, the budget or the figures.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Final, Literal

from energysched.power import policy
from energysched.power.policy import NodeView, PolicyConfig, Resources

#: Why a node that runs pods was not drained (the skip metric's label is ``drain-<reason>``).
DrainSkip = Literal[
    "quiet-too-briefly",
    "no-controller",
    "job-pod",
    "not-safe-to-evict",
    "local-storage",
    "pod-terminating",
    "pdb",
    "no-room",
    "sleep-policy",
    "not-worth-it",
]
#: Reasons that concern a pod that cannot be evicted: the manager posts an Event for them.
POD_BLOCKS: Final[frozenset[DrainSkip]] = frozenset(
    {"no-controller", "job-pod", "not-safe-to-evict", "local-storage", "pdb"}
)


@dataclass(frozen=True, slots=True)
class ConsolidationConfig:
    """The ``consolidation`` section of the power manager's config."""

    enabled: bool = False
    #: What restarting one evicted pod elsewhere costs (J): see the module's docstring.
    pod_restart_joules: float = 600.0
    #: A drain whose pods are not gone after this long is abandoned (the node stays awake).
    drain_timeout_seconds: float = 300.0

    def __post_init__(self) -> None:
        for name in ("pod_restart_joules", "drain_timeout_seconds"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")


@dataclass(frozen=True, slots=True)
class PodFacts:
    """What the decision needs to know of one workload pod (the caller reads the API)."""

    #: ``namespace/name``.
    key: str
    requests: Resources
    #: The kind of its controlling owner (``ReplicaSet``, ``StatefulSet``...); None: none.
    controller: str | None
    #: Names of its ``emptyDir`` and ``hostPath`` volumes.
    local_volumes: tuple[str, ...] = ()
    #: The ``safe-to-evict`` annotation: True, False, or None when absent.
    safe_to_evict: bool | None = None
    terminating: bool = False
    #: ``namespace/name`` of the PodDisruptionBudgets that select it.
    budgets: tuple[str, ...] = ()
    #: The nodes that would admit it, resources aside (selector, affinity, taints).
    admitted_by: frozenset[str] = frozenset()
    #: When it was created (seconds on the caller's clock); None: unknown (counts as now).
    started: float | None = None


@dataclass(frozen=True, slots=True)
class DrainVerdict:
    node: str
    drain: bool
    #: None when the node is to be drained.
    reason: DrainSkip | None
    message: str
    saving_joules: float = 0.0
    cost_joules: float = 0.0
    #: Where each pod was placed in the check (``namespace/name`` -> node).
    placement: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


def pod_block(
    pod: PodFacts, allowed: Mapping[str, int], on_node: Mapping[str, int]
) -> tuple[DrainSkip, str] | None:
    """Why ``pod`` cannot be evicted, or None. ``allowed``: each budget's
    ``disruptionsAllowed``; ``on_node``: how many pods of the node each budget selects."""
    if pod.terminating:
        return "pod-terminating", f"pod {pod.key} is terminating"
    if pod.safe_to_evict is False:
        return "not-safe-to-evict", f'pod {pod.key} is annotated safe-to-evict: "false"'
    if pod.controller is None:
        return "no-controller", f"pod {pod.key} has no controller: evicted, it would be lost"
    if pod.controller == "Job":
        return (
            "job-pod",
            f"pod {pod.key} belongs to a Job: evicted, its work would start over",
        )
    if pod.local_volumes and pod.safe_to_evict is not True:
        return (
            "local-storage",
            f"pod {pod.key} has local storage ({', '.join(pod.local_volumes)}): evicted, its"
            " data would be lost",
        )
    for budget in pod.budgets:
        if allowed.get(budget, 0) < on_node.get(budget, 1):
            return (
                "pdb",
                f"PodDisruptionBudget {budget} allows {allowed.get(budget, 0)} disruption(s),"
                f" the node runs {on_node.get(budget, 1)} of its pod(s) ({pod.key})",
            )
    return None


def pack(
    pods: Sequence[PodFacts], free: Mapping[str, Resources]
) -> tuple[dict[str, str], list[PodFacts]]:
    """First-fit decreasing (CPU, then memory, then name) into ``free`` (nodes by name):
    the placement, and the pods that fit nowhere."""
    room = dict(free)
    placement: dict[str, str] = {}
    unplaced: list[PodFacts] = []
    order = sorted(pods, key=lambda p: (-p.requests.cpu_milli, -p.requests.memory_bytes, p.key))
    for pod in order:
        for name in sorted(room):
            if name in pod.admitted_by and room[name].fits(pod.requests):
                room[name] = room[name].minus(pod.requests)
                placement[pod.key] = name
                break
        else:
            unplaced.append(pod)
    return placement, unplaced


def _eligible(node: NodeView) -> bool:
    return (
        node.managed
        and not node.keep_awake
        and node.state == "awake"
        and node.ready
        and node.workload_pods > 0
        and node.power is not None
        and node.idle_watts is not None
    )


def saving_joules(node: NodeView, quiet_seconds: float) -> float:
    """The predicted saving of sleeping ``node`` for ``quiet_seconds`` (the forecast):
    the idle power not drawn, less the wake's energy and the fall (break-even)."""
    assert node.power is not None and node.idle_watts is not None
    watts = node.idle_watts - node.power.sleep_watts
    if watts <= 0:
        return -math.inf
    return watts * (quiet_seconds - policy.break_even_seconds(node.idle_watts, node.power))


def drain_verdict(
    node: NodeView,
    pods: Sequence[PodFacts],
    views: Mapping[str, NodeView],
    allowed: Mapping[str, int],
    now: float,
    policy_config: PolicyConfig,
    config: ConsolidationConfig,
) -> DrainVerdict:
    """Whether to drain ``node`` (an eligible one) of ``pods`` (its workload pods)."""

    def skip(
        reason: DrainSkip, message: str, saving: float = 0.0, cost: float = 0.0
    ) -> DrainVerdict:
        return DrainVerdict(node.name, False, reason, message, saving, cost)

    assert node.power is not None and node.idle_watts is not None
    starts = [p.started if p.started is not None else now for p in pods]
    quiet_since = max(starts, default=now)
    quiet = now - quiet_since
    hold = policy.hold_seconds(node.idle_watts, node.power, policy_config)
    if quiet < hold:
        return skip(
            "quiet-too-briefly",
            f"the last pod started {quiet:.0f} s ago, {hold:.0f} s are needed"
            f" (break-even + hysteresis)",
        )
    on_node: dict[str, int] = {}
    for pod in pods:
        for budget in pod.budgets:
            on_node[budget] = on_node.get(budget, 0) + 1
    blocks = [b for b in (pod_block(p, allowed, on_node) for p in pods) if b is not None]
    if blocks:
        reason = blocks[0][0]
        more = f" (and {len(blocks) - 1} more)" if len(blocks) > 1 else ""
        return skip(reason, f"not drained: {blocks[0][1]}{more}")
    free = {
        n.name: n.allocatable.minus(n.requested)
        for n in views.values()
        if n.name != node.name and n.state == "awake" and n.ready
    }
    placement, unplaced = pack(pods, free)
    if unplaced:
        return skip(
            "no-room",
            f"not drained: {len(unplaced)} pod(s) fit no other awake node"
            f" ({', '.join(p.key for p in unplaced[:3])})",
        )
    moved = Resources()
    for pod in pods:
        moved = moved.plus(pod.requests)
    after: dict[str, NodeView] = {}
    for name, other in views.items():
        if name == node.name:
            after[name] = replace(
                other,
                requested=other.requested.minus(moved),
                workload_pods=0,
                empty_since=quiet_since,
            )
            continue
        added = Resources()
        for pod in pods:
            if placement[pod.key] == name:
                added = added.plus(pod.requests)
        after[name] = replace(
            other,
            requested=other.requested.plus(added),
            workload_pods=other.workload_pods + sum(1 for v in placement.values() if v == name),
            empty_since=None if name in placement.values() else other.empty_since,
        )
    verdict = next(
        v for v in policy.sleep_verdicts(after.values(), now, policy_config) if v.node == node.name
    )
    if not verdict.sleep:
        return skip("sleep-policy", f"once drained it would not sleep: {verdict.message}")
    saving = saving_joules(node, quiet)
    cost = config.pod_restart_joules * len(pods)
    if saving <= cost:
        return skip(
            "not-worth-it",
            f"sleeping {quiet:.0f} s (the time it has been quiet) saves {saving:.0f} J, "
            f"restarting {len(pods)} pod(s) costs {cost:.0f} J",
            saving,
            cost,
        )
    return DrainVerdict(
        node.name,
        True,
        None,
        f"drain {len(pods)} pod(s) to sleep: saves {saving:.0f} J over the {quiet:.0f} s it"
        f" has been quiet, restarts cost {cost:.0f} J",
        saving,
        cost,
        MappingProxyType(placement),
    )


def drain_verdicts(
    nodes: Iterable[NodeView],
    pods: Mapping[str, Sequence[PodFacts]],
    allowed: Mapping[str, int],
    now: float,
    policy_config: PolicyConfig,
    config: ConsolidationConfig,
) -> list[DrainVerdict]:
    """One verdict per eligible node (sorted by name); ineligible nodes get none."""
    views = {n.name: n for n in nodes}
    return [
        drain_verdict(views[name], pods.get(name, ()), views, allowed, now, policy_config, config)
        for name in sorted(views)
        if _eligible(views[name])
    ]


def choose_drain(verdicts: Iterable[DrainVerdict]) -> DrainVerdict | None:
    """The node to drain now (one at a time): the largest net saving, ties by name."""
    best: DrainVerdict | None = None
    for v in sorted(verdicts, key=lambda v: v.node):
        if not v.drain:
            continue
        if best is None or v.saving_joules - v.cost_joules > best.saving_joules - best.cost_joules:
            best = v
    return best
