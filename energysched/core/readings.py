"""Live power readings as the modes that use them see them: fresh, stale, missing, future.

A reading is fresh when ``-clock_skew_allowance <= now - timestamp <=
staleness_window``; one further in the future is invalid (state ``future``,
treated as missing). The predicted load (Trimaran's lesson): for every recent
bind to a node *after* its reading, the bound pod's ``powerWatts - idle`` from
the node's profile for the pod's workload type; for a pod without a type, or a
type the profile lacks, the largest such headroom of the profile
(conservative). ``hybrid`` and ``cluster-energy`` share this module; neither
imports the other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

import numpy as np

from energysched.contract import WORKLOAD_TYPES
from energysched.core.params import ScheduleParams
from energysched.core.snapshot import BoolArray, ClusterSnapshot, FloatArray, IntArray

ReadingState = Literal["fresh", "stale", "missing", "future", "not-used"]
#: Per-node state codes (index into :data:`STATE_NAMES`).
NOT_USED, FRESH, STALE, MISSING, FUTURE = range(5)
STATE_NAMES: Final[tuple[ReadingState, ...]] = ("not-used", "fresh", "stale", "missing", "future")


@dataclass(frozen=True, slots=True, eq=False)
class Readings:
    """Each node's live reading classified."""

    fresh: BoolArray
    #: A valid reading, fresh or stale (one from the future is none).
    has_reading: BoolArray
    #: Further in the future than the clock-skew allowance; None when no reading is.
    future: BoolArray | None
    state: IntArray  # FRESH, STALE, MISSING or FUTURE per node


def classify_readings(snap: ClusterSnapshot, params: ScheduleParams) -> Readings:
    ts = snap.reading_ts
    now = snap.now.timestamp()
    skew = params.clock_skew_allowance.total_seconds()
    with np.errstate(invalid="ignore"):  # NaN timestamps: no reading
        age = now - ts
        has_reading = ~np.isnan(ts)
        future: BoolArray | None = None
        if snap.latest_reading_ts - now > skew:  # some reading is from the future
            ahead: BoolArray = age < -skew
            has_reading &= ~ahead  # ... and is no reading
            future = ahead
        fresh = has_reading & (age <= params.staleness_window.total_seconds())
    missing = np.where(has_reading, STALE, MISSING)
    if future is not None:
        missing[future] = FUTURE
    return Readings(fresh, has_reading, future, np.where(fresh, FRESH, missing))


def predicted(snap: ClusterSnapshot) -> FloatArray:
    """Watts of pods bound after each node's reading (see module doc)."""
    n = snap.table.size
    if not len(snap.bind_node):
        return np.zeros(n)
    t = snap.table
    bn, bts, btype = snap.bind_node, snap.bind_ts, snap.bind_type
    extra = t.default_extra_watts[bn].copy()
    for code, wt in enumerate(WORKLOAD_TYPES):
        sel = btype == code
        if sel.any():
            h = t.headroom[wt][bn[sel]]
            extra[sel] = np.where(np.isnan(h), extra[sel], h)
    with np.errstate(invalid="ignore"):
        after = bts > snap.reading_ts[bn]  # NaN (no reading) compares False
    total = np.bincount(bn[after], weights=extra[after], minlength=n).astype(np.float64)
    # Headroom figures near float max (a profile may say 1e308 W) sum to inf; the largest
    # finite figure keeps "far over any budget" without an inf reaching a decision.
    return np.minimum(total, np.finfo(np.float64).max)
