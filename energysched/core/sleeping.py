"""Which nodes sleep, and which of them a decision may wake (power states, read-only).

The power manager records a node's state in the ``energy.thesis.io/power-state``
annotation and taints a node before it sleeps (``energy.thesis.io/asleep``
NoSchedule; the node lifecycle controller adds its not-ready/unreachable taints
once the node goes silent), so the filters find every sleeping node infeasible.
A mode that counts wake-ups (``Scorer.scores_asleep``: cluster-energy) also sees
the sleeping nodes it could wake; the kernel finds them here:

- **asleep**: state ``asleep`` or ``wake-failed`` and the node's profile has
  ``spec.powerStates``: the node draws its sleep power, not its idle power;
- **wakeable**: of those, the ones the power manager would wake now: opted in
  (the power-management label), not keep-awake, ``asleep`` or ``wake-failed``
  past its backoff (:func:`energysched.power.policy.wake_allowed`), and
  sleeping saves something (idle above sleep power).

Only nodes in a taint class carrying one of :data:`POWER_TAINT_KEYS` are read:
when no node sleeps this costs one pass over the (few) taint classes, and no
decision changes. A node whose annotation says asleep but that carries none of
these taints is, for the scheduler, an awake node (the taint is what kube's
filters see; the manager never sleeps a node without it).

The policy's tunables (the wake backoff, the hysteresis of the hold time) are the
power manager's documented defaults (:data:`WAKE_POLICY`): the scheduler does not
read the manager's config file.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import numpy as np

from energysched.contract import (
    ASLEEP_TAINT_KEY,
    KEEP_AWAKE_LABEL,
    POWER_MANAGEMENT_ENABLED,
    POWER_MANAGEMENT_LABEL,
    POWER_STATE_SINCE_ANNOTATION,
)
from energysched.core.parse import parse_rfc3339
from energysched.core.snapshot import BoolArray, ClusterSnapshot
from energysched.core.values import Toleration
from energysched.kb.profiles import PowerStates
from energysched.power.policy import (
    PolicyConfig,
    power_state_of,
    wake_allowed,
    wake_failures_of,
)

#: Taints a sleeping node carries: ours, and the node lifecycle controller's.
POWER_TAINT_KEYS: Final = (
    ASLEEP_TAINT_KEY,
    "node.kubernetes.io/not-ready",
    "node.kubernetes.io/unreachable",
)
#: What a pod is given to test whether it would fit a node once that node is awake.
POWER_TOLERATIONS: Final = tuple(Toleration(key=k, operator="Exists") for k in POWER_TAINT_KEYS)
#: The power manager's defaults (see module doc).
WAKE_POLICY: Final = PolicyConfig()


@dataclass(frozen=True, slots=True, eq=False)
class SleepingNodes:
    """Masks over the snapshot's nodes (see module doc); at least one node is asleep."""

    asleep: BoolArray
    wakeable: BoolArray


def power_states_of(snap: ClusterSnapshot, i: int) -> PowerStates | None:
    """Node ``i``'s profile ``spec.powerStates`` (None: no profile, or it cannot sleep)."""
    res = snap.table.profiles[i]
    return res.profile.power_states if res is not None else None


def usable_power_states(figures: PowerStates) -> bool:
    """Finite, non-negative figures and a wake that takes time. The profile reader
    already rejects anything else (:class:`energysched.kb.validate.PowerStatesFigures`);
    this guard keeps a profile built in code from turning a score into NaN."""
    values = (figures.sleep_watts, figures.suspend_seconds, figures.wake_joules)
    return (
        all(math.isfinite(v) and v >= 0 for v in values)
        and math.isfinite(figures.wake_seconds)
        and figures.wake_seconds > 0
    )


def sleeping_nodes(snap: ClusterSnapshot) -> SleepingNodes | None:
    """The sleeping nodes of ``snap``, or None when none sleeps."""
    t = snap.table
    tainted = [any(x.key in POWER_TAINT_KEYS for x in c.taints) for c in t.classes]
    if not any(tainted):
        return None
    asleep = np.zeros(t.size, dtype=np.bool_)
    wakeable = np.zeros(t.size, dtype=np.bool_)
    now = snap.now.timestamp()
    for i in np.flatnonzero(np.asarray(tainted, dtype=np.bool_)[t.class_ids]).tolist():
        node = t.nodes[i]
        state = power_state_of(node.annotations)
        figures = power_states_of(snap, i)
        if state not in ("asleep", "wake-failed") or figures is None:
            continue
        asleep[i] = True
        since = node.annotations.get(POWER_STATE_SINCE_ANNOTATION)
        failed_at = parse_rfc3339(since) if since is not None else None
        idle = float(t.idle[i])
        wakeable[i] = (
            node.labels.get(POWER_MANAGEMENT_LABEL) == POWER_MANAGEMENT_ENABLED
            and node.labels.get(KEEP_AWAKE_LABEL) != "true"
            and usable_power_states(figures)
            and bool(np.isfinite(idle))
            and idle > figures.sleep_watts
            and wake_allowed(
                state,
                wake_failures_of(node.annotations),
                failed_at.timestamp() if failed_at is not None else None,
                now,
                WAKE_POLICY,
            )
        )
    if not asleep.any():
        return None
    return SleepingNodes(asleep, wakeable)
