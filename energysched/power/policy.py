"""When to put an idle node to sleep, which sleeping node to wake, when to retry a wake.

Pure: no I/O and no clock. ``now`` is passed in (seconds on any one clock the caller
keeps: the power manager uses wall time, the experiment's simulator simulated time), so
the in-cluster power manager and the simulator run the very same decisions.

The rules (README, "Sleeping nodes"):

* **Break-even.** Sleeping saves ``idle - sleep`` watts and costs one wake
  (``wakeJoules``) plus the time to fall asleep (``suspendSeconds`` at idle power, no
  saving). A node that stays asleep longer than
  ``wakeJoules / (idle - sleep) + suspendSeconds`` saves energy. The policy cannot know
  how long a node will stay empty, so it uses the empty time seen so far as the forecast
  (the classic ski-rental rule: wait as long as the break-even before acting, which never
  costs more than twice the best choice), plus a configured hysteresis.
* **Candidates.** Managed (opted in), not keep-awake, state ``awake``, Ready, running no
  pod but DaemonSet and mirror pods, empty for longer than break-even + hysteresis.
* **Headroom.** Candidates are taken one at a time, the largest saving first (ties by
  name); each must leave at least ``min_awake_nodes`` awake and Ready nodes with at least
  ``min_free_fraction`` of their allocatable CPU and memory free. The nodes that count
  towards ``min_awake_nodes`` are those that cannot sleep (not managed, keep-awake, no
  figures) and those whose idle power is no higher than the candidate's: the reserve kept
  awake is the cheapest. Otherwise a cheap node that empties while an expensive one is busy
  would sleep, and the expensive one, once empty, would be the last awake node and never
  sleep again (seen in the simulation: a 42 W desktop kept awake for 13 hours while a
  1.5 W Pi slept).
* **Wake choice.** For a pending pod that fits no awake node: among the asleep nodes it
  fits (and failed wakes past their backoff), the one whose wake energy plus expected
  energy (the pod's, if the caller knows it, and the idle energy of staying awake for the
  least time the policy keeps a woken node: break-even + hysteresis) is least; ties by
  name.
* **Backoff.** A failed wake is retried after ``initial * 2**(failures-1)`` seconds,
  capped.

Every node not put to sleep has a :class:`SkipReason` (a short, fixed label for a
metric) and a message naming the figures.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final, Literal, get_args

from energysched.contract import (
    POWER_STATE_ANNOTATION,
    POWER_STATES,
    WAKE_FAILURES_ANNOTATION,
    PowerState,
)
from energysched.kb.profiles import PowerStates

#: Why a node was not put to sleep (the ``reason`` label of the skipped-sleep metric).
SkipReason = Literal[
    "not-managed",
    "keep-awake",
    "not-awake",
    "not-ready",
    "runs-pods",
    "no-power-state-figures",
    "no-saving",
    "empty-too-briefly",
    "min-awake-nodes",
    "headroom-cpu",
    "headroom-memory",
]
SKIP_REASONS: Final[tuple[SkipReason, ...]] = get_args(SkipReason)  # one spelling, the Literal

#: The transitions the power manager makes; anything else is a bug or a stale view.
TRANSITIONS: Final[Mapping[PowerState, frozenset[PowerState]]] = {
    "awake": frozenset({"draining"}),
    # a drain is abandoned (a pod arrived, the PDB blocks) or completes into sleep
    "draining": frozenset({"awake", "asleep"}),
    "asleep": frozenset({"waking", "awake"}),  # "awake": the node came back by itself
    "waking": frozenset({"awake", "wake-failed"}),
    # retried after the backoff, or it came back late by itself
    "wake-failed": frozenset({"waking", "awake"}),
}


def power_state_of(annotations: Mapping[str, str]) -> PowerState:
    """The power-state annotation's state; none (or a value we do not know) is awake."""
    raw = annotations.get(POWER_STATE_ANNOTATION, "awake")
    for state in POWER_STATES:
        if raw == state:
            return state
    return "awake"


def wake_failures_of(annotations: Mapping[str, str]) -> int:
    """Consecutive failed wakes (the annotation the manager keeps); unreadable is 0."""
    try:
        return max(0, int(annotations.get(WAKE_FAILURES_ANNOTATION, "0")))
    except ValueError:
        return 0


def may_transition(old: PowerState, new: PowerState) -> bool:
    """Whether the power manager may move a node from ``old`` to ``new``."""
    return new in TRANSITIONS[old]


@dataclass(frozen=True, slots=True)
class PolicyConfig:
    """The power manager's tunables (its config file; documented defaults)."""

    #: Seconds a node must have been empty beyond its break-even time.
    hysteresis_seconds: float = 120.0
    #: Awake, Ready nodes that are never put to sleep, whatever their figures.
    min_awake_nodes: int = 1
    #: Fraction (0..1) of the awake nodes' allocatable CPU and memory that must stay free.
    min_free_fraction: float = 0.2
    #: The first retry of a failed wake waits this long; each further failure doubles it.
    wake_backoff_initial_seconds: float = 30.0
    wake_backoff_max_seconds: float = 1800.0
    #: A wake that has not reached Ready after wake_seconds x factor + margin has failed.
    wake_timeout_factor: float = 2.0
    wake_timeout_margin_seconds: float = 30.0

    def __post_init__(self) -> None:
        for name in (
            "hysteresis_seconds",
            "min_free_fraction",
            "wake_backoff_initial_seconds",
            "wake_backoff_max_seconds",
            "wake_timeout_factor",
            "wake_timeout_margin_seconds",
        ):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        if not 0 <= self.min_free_fraction <= 1:
            raise ValueError(
                f"min_free_fraction must be within 0..1, got {self.min_free_fraction!r}"
            )
        if not isinstance(self.min_awake_nodes, int) or self.min_awake_nodes < 0:
            raise ValueError(
                f"min_awake_nodes must be an integer >= 0, got {self.min_awake_nodes!r}"
            )


@dataclass(frozen=True, slots=True)
class Resources:
    """CPU in millicores, memory in bytes, extended resources (``nvidia.com/gpu``) in units."""

    cpu_milli: float = 0.0
    memory_bytes: float = 0.0
    extended: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))

    def fits(self, need: Resources) -> bool:
        return (
            need.cpu_milli <= self.cpu_milli
            and need.memory_bytes <= self.memory_bytes
            and all(v <= self.extended.get(k, 0.0) for k, v in need.extended.items() if v > 0)
        )

    def minus(self, other: Resources) -> Resources:
        keys = set(self.extended) | set(other.extended)
        return Resources(
            self.cpu_milli - other.cpu_milli,
            self.memory_bytes - other.memory_bytes,
            MappingProxyType(
                {k: self.extended.get(k, 0.0) - other.extended.get(k, 0.0) for k in keys}
            ),
        )

    def plus(self, other: Resources) -> Resources:
        keys = set(self.extended) | set(other.extended)
        return Resources(
            self.cpu_milli + other.cpu_milli,
            self.memory_bytes + other.memory_bytes,
            MappingProxyType(
                {k: self.extended.get(k, 0.0) + other.extended.get(k, 0.0) for k in keys}
            ),
        )


@dataclass(frozen=True, slots=True)
class NodeView:
    """What the policy needs to know of one node (the caller reads it from the API)."""

    name: str
    #: Opted in (the power-management label says ``enabled``).
    managed: bool
    #: In the never-touch set (keep-awake label or the config's keep-awake selector).
    keep_awake: bool
    state: PowerState
    ready: bool
    allocatable: Resources
    #: Requests of the pods on the node (DaemonSet and mirror pods included).
    requested: Resources
    #: Pods on the node other than DaemonSet and mirror pods (finished pods not counted).
    workload_pods: int
    #: Since when the node has run no workload pod (None: it runs one now).
    empty_since: float | None
    #: The profile's idle power; None when no valid profile resolves the node.
    idle_watts: float | None
    #: The profile's power-state figures; None: the node cannot be slept.
    power: PowerStates | None
    #: Consecutive failed wakes, and when the latest failed.
    wake_failures: int = 0
    last_wake_failure: float | None = None


@dataclass(frozen=True, slots=True)
class SleepVerdict:
    node: str
    sleep: bool
    #: None when the node is to sleep.
    reason: SkipReason | None
    message: str


def break_even_seconds(idle_watts: float, power: PowerStates) -> float:
    """How long a node must stay asleep for sleeping to save energy (inf: it never does)."""
    saving = idle_watts - power.sleep_watts
    if saving <= 0:
        return math.inf
    return power.wake_joules / saving + power.suspend_seconds


def hold_seconds(idle_watts: float, power: PowerStates, config: PolicyConfig) -> float:
    """How long a node must have been empty before it may sleep."""
    return break_even_seconds(idle_watts, power) + config.hysteresis_seconds


def _awake(node: NodeView) -> bool:
    return node.state == "awake" and node.ready


def _own_verdict(node: NodeView, now: float, config: PolicyConfig) -> SleepVerdict | None:
    """Why the node itself cannot sleep (before headroom), or None when it may."""

    def skip(reason: SkipReason, message: str) -> SleepVerdict:
        return SleepVerdict(node.name, False, reason, message)

    if not node.managed:
        return skip("not-managed", "power management is not enabled on this node")
    if node.keep_awake:
        return skip("keep-awake", "the node is in the keep-awake set")
    if node.state != "awake":
        return skip("not-awake", f"the node is {node.state}")
    if not node.ready:
        return skip("not-ready", "the node is not Ready")
    if node.workload_pods > 0 or node.empty_since is None:
        return skip("runs-pods", f"the node runs {node.workload_pods} pod(s) besides DaemonSets")
    if node.power is None or node.idle_watts is None:
        return skip("no-power-state-figures", "no power-state figures (spec.powerStates)")
    if node.power.sleep_watts >= node.idle_watts:
        return skip(
            "no-saving",
            f"sleeping draws {node.power.sleep_watts:g} W, not below idle {node.idle_watts:g} W",
        )
    hold = hold_seconds(node.idle_watts, node.power, config)
    empty = now - node.empty_since
    if empty < hold:
        return skip(
            "empty-too-briefly",
            f"empty for {empty:.0f} s of the {hold:.0f} s needed "
            f"(break-even {break_even_seconds(node.idle_watts, node.power):.0f} s "
            f"+ hysteresis {config.hysteresis_seconds:g} s)",
        )
    return None


def _saving_watts(node: NodeView) -> float:
    assert node.power is not None and node.idle_watts is not None
    return node.idle_watts - node.power.sleep_watts


def sleep_verdicts(
    nodes: Iterable[NodeView], now: float, config: PolicyConfig
) -> list[SleepVerdict]:
    """One verdict per node, sorted by name: which to put to sleep now, and why not the rest."""
    views = sorted(nodes, key=lambda n: n.name)
    verdicts: dict[str, SleepVerdict] = {}
    candidates: list[NodeView] = []
    for node in views:
        verdict = _own_verdict(node, now, config)
        if verdict is None:
            candidates.append(node)
        else:
            verdicts[node.name] = verdict
    awake = {n.name: n for n in views if _awake(n)}
    for node in sorted(candidates, key=lambda n: (-_saving_watts(n), n.name)):
        rest = [n for name, n in awake.items() if name != node.name]
        problem = _headroom_problem(rest, config, node)
        if problem is None:
            del awake[node.name]
            verdicts[node.name] = SleepVerdict(
                node.name,
                True,
                None,
                f"empty past break-even; sleeping saves {_saving_watts(node):g} W",
            )
        else:
            verdicts[node.name] = SleepVerdict(node.name, False, *problem)
    return [verdicts[n.name] for n in views]


def _never_sleeps(node: NodeView) -> bool:
    return not node.managed or node.keep_awake or node.power is None or node.idle_watts is None


def _headroom_problem(
    awake: list[NodeView], config: PolicyConfig, candidate: NodeView
) -> tuple[SkipReason, str] | None:
    assert candidate.idle_watts is not None
    reserve = [
        n
        for n in awake
        if _never_sleeps(n) or (n.idle_watts is not None and n.idle_watts <= candidate.idle_watts)
    ]
    if len(reserve) < config.min_awake_nodes:
        costlier = len(awake) - len(reserve)
        return (
            "min-awake-nodes",
            f"{len(reserve)} awake node(s) no costlier to keep awake would be left"
            + (f" (and {costlier} costlier)" if costlier else "")
            + f", the headroom policy keeps {config.min_awake_nodes}",
        )
    for reason, label, total, used in (
        (
            "headroom-cpu",
            "CPU",
            sum(n.allocatable.cpu_milli for n in awake),
            sum(n.requested.cpu_milli for n in awake),
        ),
        (
            "headroom-memory",
            "memory",
            sum(n.allocatable.memory_bytes for n in awake),
            sum(n.requested.memory_bytes for n in awake),
        ),
    ):
        free = (total - used) / total if total > 0 else 0.0
        if awake and free < config.min_free_fraction:
            return (
                reason,  # type: ignore[return-value]
                f"the awake nodes left would have {free:.0%} of their {label} free, the "
                f"headroom policy keeps {config.min_free_fraction:.0%}",
            )
    return None


def wake_backoff_seconds(failures: int, config: PolicyConfig) -> float:
    """Seconds to wait after the ``failures``-th consecutive failed wake."""
    if failures <= 0:
        return 0.0
    # 2**n overflows a float long before the cap matters; the cap wins from n = 64 on.
    step = config.wake_backoff_initial_seconds * 2.0 ** min(failures - 1, 64)
    return min(step, config.wake_backoff_max_seconds)


def wake_timeout_seconds(power: PowerStates, config: PolicyConfig) -> float:
    """After this long without Ready, a wake has failed."""
    return power.wake_seconds * config.wake_timeout_factor + config.wake_timeout_margin_seconds


def may_retry_wake(node: NodeView, now: float, config: PolicyConfig) -> bool:
    """Whether a wake may be (re)tried now: asleep, or wake-failed past its backoff."""
    return wake_allowed(node.state, node.wake_failures, node.last_wake_failure, now, config)


def wake_allowed(
    state: PowerState,
    failures: int,
    last_failure: float | None,
    now: float,
    config: PolicyConfig,
) -> bool:
    """:func:`may_retry_wake` on the bare figures (the scheduler's core has no NodeView)."""
    if state == "asleep":
        return True
    if state != "wake-failed":
        return False
    since = last_failure if last_failure is not None else -math.inf
    return now - since >= wake_backoff_seconds(failures, config)


@dataclass(frozen=True, slots=True)
class WakeChoice:
    node: str
    #: The energy the choice was made on: wake + expected + idle while held awake.
    cost_joules: float
    wake_seconds: float


def wake_cost_joules(node: NodeView, config: PolicyConfig, expected_joules: float = 0.0) -> float:
    """What waking ``node`` for one pod costs: the wake, the pod's expected energy, and the
    idle energy of the least time a woken node then stays awake (break-even + hysteresis)."""
    assert node.power is not None and node.idle_watts is not None
    return (
        node.power.wake_joules
        + expected_joules
        + node.idle_watts * hold_seconds(node.idle_watts, node.power, config)
    )


def choose_wake(
    request: Resources,
    nodes: Iterable[NodeView],
    now: float,
    config: PolicyConfig,
    expected_joules: Mapping[str, float] | None = None,
) -> WakeChoice | None:
    """The sleeping node to wake for a pod that needs ``request`` and fits no awake node.

    Considers managed nodes with figures that are asleep (or wake-failed past their
    backoff) and whose allocatable, less what stays on them (DaemonSet pods), fits the
    request. ``expected_joules``: the pod's expected energy per node, when the caller can
    predict it (nodes it lacks count 0). None when no sleeping node fits.
    """
    best: WakeChoice | None = None
    for node in sorted(nodes, key=lambda n: n.name):
        if not node.managed or node.keep_awake or node.power is None or node.idle_watts is None:
            continue
        if not may_retry_wake(node, now, config):
            continue
        if not node.allocatable.minus(node.requested).fits(request):
            continue
        extra = (expected_joules or {}).get(node.name, 0.0)
        cost = wake_cost_joules(node, config, extra)
        if best is None or cost < best.cost_joules:
            best = WakeChoice(node.name, cost, node.power.wake_seconds)
    return best


def fits_awake(request: Resources, nodes: Iterable[NodeView]) -> bool:
    """Whether some awake, Ready node has room for ``request`` (then nothing is woken)."""
    return any(_awake(n) and n.allocatable.minus(n.requested).fits(request) for n in nodes)
