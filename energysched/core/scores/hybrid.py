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

Its own figures travel in its part of the result: :class:`HybridFigures` (all
nodes) in ``Scores.part``, :class:`HybridNode` in a breakdown's ``part``,
:class:`ReadingCounts` in the decision's ``part`` (the scheduler's metric of
stale, missing and future readings counts them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np

from energysched.core.interface import ModeScores, ScoreInput, Scorer, Scores
from energysched.core.params import ScheduleParams
from energysched.core.readings import (
    FRESH,
    FUTURE,
    STALE,
    STATE_NAMES,
    ReadingState,
    classify_readings,
    predicted,
)
from energysched.core.scores import normalized
from energysched.core.snapshot import BoolArray, ClusterSnapshot, FloatArray, IntArray

MODE: Final = "hybrid"


@dataclass(frozen=True, slots=True)
class ReadingCounts:
    """Feasible nodes with figures whose reading was stale / missing / from the future
    (further ahead than ``params.clock_skew_allowance``: invalid, treated as missing)."""

    stale: int = 0
    missing: int = 0
    future: int = 0


@dataclass(frozen=True, slots=True, eq=False)
class HybridFigures:
    """The mode's figures over every node (``Scores.part``)."""

    #: Watts of pods bound after the node's reading.
    predicted: FloatArray
    #: ``readings`` state codes (FRESH, STALE, MISSING, FUTURE).
    state: IntArray
    busy: BoolArray
    counts: ReadingCounts


@dataclass(frozen=True, slots=True)
class HybridNode:
    """One node's live-power figures (a breakdown's ``part``)."""

    live_watts: float | None
    predicted_watts: float
    reading_state: ReadingState
    reading_age_s: float | None
    reading_source: str | None
    busy: bool


def counts_of(part: object) -> ReadingCounts:
    """The counts in a decision's ``part``: zero when hybrid did not score (another
    mode, the neutral fallback, no feasible node)."""
    return part if isinstance(part, ReadingCounts) else ReadingCounts()


def figures(scores: Scores) -> HybridFigures:
    part = scores.part
    assert isinstance(part, HybridFigures), part
    return part


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
    counts = ReadingCounts(stale_count, unknown_count - stale_count - future_count, future_count)
    return ModeScores(
        base=norm.base,
        score=score,
        norm_p=norm.norm_p,
        norm_e=norm.norm_e,
        max_p=norm.max_p,
        max_e=norm.max_e,
        part=HybridFigures(load, state, busy, counts),
    )


def why(scores: Scores, snap: ClusterSnapshot, params: ScheduleParams, i: int) -> str:
    reading = snap.readings[i]
    age = None if reading is None else snap.now.timestamp() - reading.timestamp.timestamp()
    idle_raw = float(snap.table.idle[i])
    idle = None if np.isnan(idle_raw) else idle_raw
    own = figures(scores)
    load = float(own.predicted[i])
    base = float(scores.base[i])
    src = f", {reading.source}" if reading is not None else ""
    buffer = params.hybrid_buffer_watts
    state = int(own.state[i])
    if own.busy[i]:
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


def node_part(scores: Scores, snap: ClusterSnapshot, i: int) -> HybridNode:
    own = figures(scores)
    reading = snap.readings[i]
    return HybridNode(
        live_watts=None if reading is None else reading.watts,
        predicted_watts=float(own.predicted[i]),
        reading_state=STATE_NAMES[int(own.state[i])],
        reading_age_s=None
        if reading is None
        else snap.now.timestamp() - reading.timestamp.timestamp(),
        reading_source=None if reading is None else reading.source,
        busy=bool(own.busy[i]),
    )


def decision_part(scores: Scores) -> ReadingCounts:
    return figures(scores).counts


PLUGIN: Final = Scorer(MODE, score, why, node_part=node_part, decision_part=decision_part)
