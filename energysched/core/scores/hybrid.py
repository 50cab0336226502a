"""``hybrid`` (v2.0): the normalized (v1.1) score, corrected by live power.

A node whose *fresh* reading plus predicted load exceeds ``idle +
hybrid_buffer_watts`` is busy and scores 0. Fresh: ``-clock_skew_allowance <=
now - timestamp <= staleness_window``; a reading further in the future is
invalid (state ``future``, treated as missing and counted apart). Predicted load
(Trimaran's lesson): for every recent bind to the node *after* its reading, the
bound pod's ``powerWatts - idle`` from the node's profile for the pod's workload
type; for a pod without a type, or a type the profile lacks, the largest such
headroom of the profile (conservative). Stale, missing or future readings follow
``stale_policy`` (see :mod:`energysched.core.params`); the decision counts them
over the feasible nodes with figures.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np

from energysched.contract import WORKLOAD_TYPES
from energysched.core.params import ScheduleParams
from energysched.core.plugin import Scorer
from energysched.core.scores import normalized
from energysched.core.scoring import (
    FRESH,
    FUTURE,
    MISSING,
    STALE,
    ModeScores,
    ScoreInput,
    Scores,
)
from energysched.core.snapshot import BoolArray, ClusterSnapshot, FloatArray, IntArray

MODE: Final = "hybrid"


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
    return np.bincount(bn[after], weights=extra[after], minlength=n).astype(np.float64)


@dataclass(frozen=True, slots=True, eq=False)
class Readings:
    """Each node's live reading classified (the modes that read live power share it)."""

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


def score(inp: ScoreInput) -> ModeScores:
    norm = normalized.score(inp)
    snap, params, scored = inp.snap, inp.params, inp.scored
    score = norm.score.copy()
    readings = classify_readings(snap, params)
    fresh, has_reading, future = readings.fresh, readings.has_reading, readings.future
    future_count = 0
    load = predicted(snap)
    with np.errstate(invalid="ignore"):  # NaN watts: no reading
        busy = (
            scored
            & fresh
            & (snap.reading_watts + load > snap.table.idle + params.hybrid_buffer_watts)
        )
    state = readings.state
    score[busy] = 0.0
    unknown = scored & ~fresh
    if params.stale_policy == "penalize":
        score[unknown] *= params.stale_penalty_factor
    elif params.stale_policy == "busy":
        score[unknown] = 0.0
    stale_count = int(np.count_nonzero(unknown & has_reading))
    unknown_count = int(np.count_nonzero(unknown))
    if future is not None:
        future_count = int(np.count_nonzero(unknown & future))
    return ModeScores(
        base=norm.base,
        score=score,
        norm_p=norm.norm_p,
        norm_e=norm.norm_e,
        max_p=norm.max_p,
        max_e=norm.max_e,
        predicted=load,
        state=state,
        busy=busy,
        stale_count=stale_count,
        missing_count=unknown_count - stale_count - future_count,
        future_count=future_count,
    )


def why(scores: Scores, snap: ClusterSnapshot, params: ScheduleParams, i: int) -> str:
    reading = snap.readings[i]
    age = None if reading is None else snap.now.timestamp() - reading.timestamp.timestamp()
    idle_raw = float(snap.table.idle[i])
    idle = None if np.isnan(idle_raw) else idle_raw
    load = float(scores.predicted[i])
    base = float(scores.base[i])
    src = f", {reading.source}" if reading is not None else ""
    buffer = params.hybrid_buffer_watts
    state = int(scores.state[i])
    if scores.busy[i]:
        assert reading is not None and age is not None
        return (
            f"score 0: busy, live {reading.watts:.1f} W + predicted {load:.1f} W > "
            f"idle {idle} W + buffer {buffer:g} W (reading {age:.0f}s old{src}); "
            f"normalized would be {base:.1f}"
        )
    why = normalized.why(scores, snap, params, i)
    if state == FRESH:
        assert reading is not None and age is not None
        return why + (
            f"; idle: live {reading.watts:.1f} W + predicted {load:.1f} W <= "
            f"idle {idle} W + buffer {buffer:g} W (reading {age:.0f}s old{src})"
        )
    if state == STALE:
        assert age is not None
        what = f"reading {age:.0f}s old > {params.staleness_window.total_seconds():g}s window"
    elif state == FUTURE:
        assert age is not None
        what = (
            f"reading {-age:.0f}s in the future > "
            f"{params.clock_skew_allowance.total_seconds():g}s clock-skew allowance "
            "(invalid, as if missing)"
        )
    else:
        what = "no power reading"
    effect = {
        "ignore": "ignored, normalized score kept",
        "penalize": f"penalized x{params.stale_penalty_factor:g}",
        "busy": "treated as busy, score 0",
    }[params.stale_policy]
    return f"{why}; {what}: {effect}"


PLUGIN: Final = Scorer(MODE, score, why)
