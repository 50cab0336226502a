"""Scheduling parameters: one frozen value, swapped whole on config change.

Configuration changes take effect on the next decision (the controller passes
the current value to every :func:`~energysched.core.framework.schedule_one`);
nothing needs a restart, unlike kube-scheduler.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta
from typing import Final, Literal

from energysched.contract import WORKLOAD_TYPES, ScoringMode, WorkloadType

#: What hybrid mode does with a node whose reading is stale or missing:
#:
#: ``ignore``   no live information: the node keeps its normalized (v1.1) score.
#: ``penalize`` its normalized score is multiplied by ``stale_penalty_factor``.
#: ``busy``     it is treated as busy: score 0 (still above any node without a profile).
StalePolicy = Literal["ignore", "penalize", "busy"]
STALE_POLICIES: Final[tuple[StalePolicy, ...]] = ("ignore", "penalize", "busy")

#: How far in the future a reading's timestamp may lie (clock skew between the
#: monitor's node and the scheduler's) and still count: one monitor heartbeat
#: (the monitor rewrites an unchanged reading every 30 s). Beyond it the reading
#: is invalid: without the bound, a timestamp in 2099 would be "fresh" for
#: decades and hide the predicted load of every later bind.
DEFAULT_CLOCK_SKEW: Final = timedelta(seconds=30)


@dataclass(frozen=True, slots=True)
class ScheduleParams:
    """Everything a decision depends on besides the pod and the snapshot."""

    #: The score plugin's mode. Whether a plugin serves it is the registry's to say:
    #: ``schedule_one`` raises ``ValueError`` for a mode its registry lacks (the
    #: scheduler's config file admits only the in-tree ``contract.SCORING_MODES``).
    mode: ScoringMode = "cluster-energy"  # = contract.DEFAULT_SCORING_MODE (tested)
    #: Weight for pods without the performance-weight annotation.
    default_weight: float = 0.5
    #: Hybrid: a node whose fresh reading (plus predicted load) exceeds its
    #: profile's idle power by more than this is busy and scores 0.
    hybrid_buffer_watts: float = 5.0
    #: Hybrid: a reading is fresh when ``now - timestamp <= staleness_window``.
    staleness_window: timedelta = timedelta(seconds=60)
    #: Hybrid: a reading up to this far in the future counts as fresh (clock
    #: skew); beyond, it is invalid ("future"): treated as missing and counted
    #: in hybrid's :class:`~energysched.core.scores.hybrid.ReadingCounts`.
    clock_skew_allowance: timedelta = DEFAULT_CLOCK_SKEW
    stale_policy: StalePolicy = "ignore"
    stale_penalty_factor: float = 0.5
    #: Workload type assumed for pods without the workload-type label. ``None``
    #: (the default): such pods are placed by the neutral policy, and the
    #: decision says so.
    default_workload_type: WorkloadType | None = None
    #: Fraction of its score a node loses at the cluster's highest count of
    #: PreferNoSchedule taints the pod does not tolerate (see scoring module).
    prefer_no_schedule_penalty: float = 0.5
    #: How many ranked nodes get a full breakdown outside explain mode.
    detail_top_k: int = 3
    #: Cluster-energy: a pod without the work annotation is assumed to carry this
    #: many seconds of work on the cluster's fastest node for its workload type
    #: (and so do placed pods without it). Scale-free on purpose: the KB's units
    #: differ per workload type. On an idle cluster the choice does not depend on
    #: it (every term is proportional to the work); it matters only against the
    #: work already placed.
    default_work_seconds: float = 60.0

    def __post_init__(self) -> None:
        problems = []
        if not (isinstance(self.mode, str) and self.mode):
            problems.append(f"mode {self.mode!r} must be a non-empty string")
        if not 0.0 <= self.default_weight <= 1.0:
            problems.append(f"default_weight {self.default_weight} is not within [0, 1]")
        if not (math.isfinite(self.hybrid_buffer_watts) and self.hybrid_buffer_watts >= 0):
            problems.append(f"hybrid_buffer_watts {self.hybrid_buffer_watts} must be >= 0")
        if self.staleness_window < timedelta(0):
            problems.append(f"staleness_window {self.staleness_window} is negative")
        if self.clock_skew_allowance < timedelta(0):
            problems.append(f"clock_skew_allowance {self.clock_skew_allowance} is negative")
        if self.stale_policy not in STALE_POLICIES:
            problems.append(
                f"stale_policy {self.stale_policy!r} is not one of {', '.join(STALE_POLICIES)}"
            )
        if not 0.0 <= self.stale_penalty_factor <= 1.0:
            problems.append(f"stale_penalty_factor {self.stale_penalty_factor} not within [0, 1]")
        if self.default_workload_type is not None and (
            self.default_workload_type not in WORKLOAD_TYPES
        ):
            problems.append(
                f"default_workload_type {self.default_workload_type!r} is not one of "
                + ", ".join(WORKLOAD_TYPES)
            )
        if not 0.0 <= self.prefer_no_schedule_penalty <= 1.0:
            problems.append(
                f"prefer_no_schedule_penalty {self.prefer_no_schedule_penalty} not within [0, 1]"
            )
        if self.detail_top_k < 2:
            problems.append(f"detail_top_k {self.detail_top_k} must be >= 2 (winner, runner-up)")
        if not (math.isfinite(self.default_work_seconds) and self.default_work_seconds > 0):
            problems.append(f"default_work_seconds {self.default_work_seconds} must be > 0")
        if problems:
            raise ValueError("invalid ScheduleParams: " + "; ".join(problems))
