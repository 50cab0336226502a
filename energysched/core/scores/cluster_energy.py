"""``cluster-energy``: the marginal energy of the whole cluster, idle power included.

Every other mode looks at the chosen node only. A wall plug measures every node,
idle or not: placing work on a slow, "efficient" node keeps the other nodes
waiting longer, and their idle power is paid for that time. This mode predicts,
for a pod of workload type ``T`` with work ``A`` on feasible node ``n``:

``d_n = A / P_n``
    the pod's duration on ``n`` (P: the profile's performance for ``T``).
``b_n``
    the node's backlog: the work already placed on it (typed pods, bound or
    assumed), ``sum(work_i / P_n(T_i)) - (now - earliest start)``, at least 0.
    The node is modelled as processor sharing: a second pod slows the first, so
    the node finishes all its work ``d_n`` later than it would have.
``H``
    the cluster's horizon: the largest backlog over the nodes with figures,
    i.e. when the cluster would otherwise have nothing left to do.
``E_n = (W_n - idle_n) * d_n + I * max(0, b_n + d_n - H)``
    the dynamic energy of the pod on ``n`` (W: the profile's power for ``T``,
    the part above idle), plus the idle power of the whole cluster ``I`` (the
    sum of the profiles' idle power) for as long as this placement extends the
    horizon. Energy that is spent anyway (idle power inside the horizon) is not
    charged.

``score = w * normT + (1 - w) * normCE`` with ``normCE = 100 * min(E) / E_n`` and
``normT = 100 * min(b + d) / (b_n + d_n)`` (the predicted completion: 1 = the
pod finishes first), minima over the scored nodes. The weight keeps its
meaning: 0 = least energy, 1 = fastest; on an idle cluster ``normT`` is v1.1's
``normP``.

The work ``A`` comes from the pod annotation ``energy.thesis.io/work`` (KB
units for ``T``); without it, ``default_work_seconds`` on the cluster's fastest
node for ``T``. On an idle cluster every term is proportional to ``A``, so the
choice does not depend on it; it matters only against the work already placed.

Live power (v2.0) still counts where the model is blind. A node's live
occupancy is ``u = (watts + predicted - idle) / (maxW - idle)`` clipped to
[0, 1] (fresh readings only; ``predicted``: the draw of pods bound since the
reading, as in hybrid; ``maxW``: the profile's largest workload power). When no
work of ours is known on the node (backlog 0) but it draws power, something
runs there that the model cannot see (another scheduler's pod, or our own work
running longer than the profile predicts): the pod's duration there is
stretched to ``d * (1 + u)``, as if sharing the node with that load. Unlike
hybrid's absolute buffer, a share of the node's own range also sees a frugal
node busy. Binds in flight count through the assume cache (they are in the
backlog at once).

Sleeping nodes (docs/power-states.md). The mode ``scores_asleep``: a node the
power manager put to sleep (:mod:`energysched.core.sleeping`) draws its sleep
power, so ``I`` is the idle power of the awake nodes plus the sleep power of the
sleeping ones. A sleeping node the pod would fit once awake (and that may be
woken now) is scored beside the awake ones, with no backlog:

``end_n = wake_n + d_n``
    the wake (``spec.powerStates.wakeSeconds``) comes first.
``E_n = wakeJ_n + (W_n - idle_n)*d_n + (idle_n - sleep_n)*(d_n + hold_n) + I*max(0, end_n - H)``
    the wake's energy (``wakeJoules``), the pod's dynamic energy, the node's idle
    power above its sleep power while it runs the pod and for ``hold_n`` after,
    and the cluster's idle power for as long as the placement extends the
    horizon. ``hold_n`` is the least time the power manager keeps a woken node
    awake before it may sleep again
    (:func:`energysched.power.policy.hold_seconds`: break-even + hysteresis, with
    the manager's default hysteresis; the scheduler does not read the manager's
    config).

So a sleeping fast node beats a busy slow one when the slow node's extension of
the horizon costs more than the wake; an idle awake node that fits beats a
sleeping one of its class (it pays neither the wake nor the hold). When a
sleeping node ranks first, the decision is to wake it. The other modes never
count wake-ups: a sleeping node is infeasible for them, and a pod that fits no
awake node wakes the node the power policy's ``choose_wake`` picks.

Assumptions, and where they are wrong: every awake node stays powered for the
whole horizon (a node that the manager puts to sleep when it empties does not
pay its idle power to the end, and the mode then overcharges slow placements);
profile power is whole-node power while running ``T``; pods without a workload
type carry no predictable work and are not in the backlog; after the horizon
the cluster's time is not charged (it may host other work or be switched off);
a sleeping node's wake is charged to every pod that would go there, even when
another pod's wake of it is already under way.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

import numpy as np

from energysched.contract import WORKLOAD_TYPES
from energysched.core.errors import InputError
from energysched.core.interface import ModeScores, ScoreInput, Scorer, Scores
from energysched.core.params import ScheduleParams
from energysched.core.parse import parse_work
from energysched.core.readings import classify_readings, predicted
from energysched.core.sleeping import WAKE_POLICY, power_states_of
from energysched.core.snapshot import BoolArray, ClusterSnapshot, FloatArray
from energysched.core.values import PodInfo
from energysched.power.policy import hold_seconds

MODE: Final = "cluster-energy"


@dataclass(frozen=True, slots=True, eq=False)
class ClusterEnergyFigures:
    """The mode's terms over every node (``Scores.part``), by name (see module doc):
    ``duration_s``, ``backlog_s``, ``end_s``, ``dynamic_j``, ``idle_j``, ``energy_j``,
    ``extension_s``, ``horizon_s``, ``cluster_idle_w``, ``work``, ``unseen_occupancy``,
    ``asleep_nodes``; and on the nodes to wake (0 elsewhere) ``wake_j``, ``wake_s``,
    ``hold_s``, ``sleep_w`` and ``held_j`` (idle above sleep power while the node runs
    the pod and for the hold after)."""

    terms: Mapping[str, FloatArray]


def terms(scores: Scores) -> Mapping[str, FloatArray]:
    part = scores.part
    assert isinstance(part, ClusterEnergyFigures), part
    return part.terms


def validate(pod: PodInfo) -> InputError | None:
    """The work annotation, the one input only this mode reads (invalid: the pod waits)."""
    work = parse_work(pod)
    return work if isinstance(work, InputError) else None


def backlog_seconds(snap: ClusterSnapshot, params: ScheduleParams) -> FloatArray:
    """Seconds of already placed work left on each node (0 without figures)."""
    t = snap.table
    n = t.size
    w = snap.work
    if not w.size:
        return np.zeros(n)
    now = snap.now.timestamp()
    perf = np.full(w.size, np.nan)
    on_table = w.node >= 0
    by_type = np.stack([t.perf[wt] for wt in WORKLOAD_TYPES])  # rows in WT_CODE order
    perf[on_table] = by_type[w.wt[on_table], w.node[on_table]]
    known = perf > 0  # no figures for its type on the node: its work cannot be predicted
    fastest = np.array([_nanmax(t.perf[wt]) for wt in WORKLOAD_TYPES])
    work = np.where(np.isfinite(w.work), w.work, params.default_work_seconds * fastest[w.wt])
    nodes = w.node[known]
    total = np.bincount(nodes, weights=work[known] / perf[known], minlength=n)
    earliest = np.full(n, np.inf)
    np.minimum.at(earliest, nodes, np.where(np.isfinite(w.since), w.since, now)[known])
    with np.errstate(invalid="ignore"):
        elapsed = np.where(np.isfinite(earliest), np.maximum(now - earliest, 0.0), 0.0)
    return np.maximum(total - elapsed, 0.0)


def _nanmax(a: FloatArray) -> float:
    finite = a[np.isfinite(a)]
    return float(finite.max()) if finite.size else math.nan


def _ratio_to_best(value: FloatArray, scored: BoolArray) -> FloatArray:
    """``100 * min(value) / value`` over the scored nodes (lower is better; 0 -> 100)."""
    best = float(value[scored].min()) if scored.any() else math.nan
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(value > 0, 100.0 * (best / value), 100.0)
    return np.where(np.isfinite(out), out, 0.0)


def _unexplained_occupancy(
    snap: ClusterSnapshot, fresh: BoolArray, load: FloatArray, backlog: FloatArray
) -> FloatArray:
    """Live occupancy (0..1) of nodes that draw power with no known work (module doc)."""
    t = snap.table
    max_w = np.full(t.size, np.nan)
    for wt in WORKLOAD_TYPES:
        max_w = np.fmax(max_w, t.power[wt])
    with np.errstate(divide="ignore", invalid="ignore"):
        occ = (snap.reading_watts + load - t.idle) / (max_w - t.idle)
    occ = np.where(fresh & (backlog == 0) & np.isfinite(occ), occ, 0.0)
    return np.clip(occ, 0.0, 1.0)


def score(inp: ScoreInput) -> ModeScores:
    snap, params, scored, has = inp.snap, inp.params, inp.scored, inp.has
    t = snap.table
    n = t.size
    work = parse_work(inp.pod)
    if not isinstance(work, float):  # absent (an invalid one never reaches a score)
        work = params.default_work_seconds * _nanmax(np.where(has, inp.perf, np.nan))
    idle = np.nan_to_num(t.idle, nan=0.0)
    sleep_w = _sleep_watts(snap, inp.asleep)
    # the awake nodes' idle power and the sleeping ones' sleep power (= every idle
    # power, computed as before, when no node sleeps)
    idle_or_sleep = np.where(inp.asleep, sleep_w, t.idle) if inp.asleep.any() else t.idle
    cluster_idle = float(np.nansum(idle_or_sleep))
    backlog = backlog_seconds(snap, params)
    horizon = float(backlog[has].max()) if has.any() else 0.0
    readings = classify_readings(snap, params)
    load = predicted(snap)
    unseen = _unexplained_occupancy(snap, readings.fresh, load, backlog)
    wake = inp.wake
    waking = bool(wake.any())
    wake_j, wake_s, hold_s = _wake_figures(snap, wake, idle, sleep_w)
    if waking:  # a sleeping node's reading (if any) says nothing about its load once awake
        unseen = np.where(wake, 0.0, unseen)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        duration = work / inp.perf
        end = backlog + duration * (1.0 + unseen)
        if waking:
            end = np.where(wake, wake_s + duration, end)
        extension = np.maximum(end - horizon, 0.0)
        dynamic = np.maximum(inp.power - idle, 0.0) * duration
        idle_charged = cluster_idle * extension
        energy = dynamic + idle_charged
        held = np.zeros(n)
        if waking:
            held = np.where(wake, (idle - np.nan_to_num(sleep_w)) * (duration + hold_s), 0.0)
            energy = energy + wake_j + held
    norm_t = _ratio_to_best(end, scored)
    norm_e = _ratio_to_best(energy, scored)
    w = inp.weight
    base = np.where(has, w * norm_t + (1 - w) * norm_e, 0.0)
    full = np.full(n, 1.0)
    return ModeScores(
        base=base,
        score=base.copy(),
        norm_p=norm_t,
        norm_e=norm_e,
        part=ClusterEnergyFigures(
            {
                "duration_s": duration,
                "backlog_s": backlog,
                "end_s": end,
                "dynamic_j": dynamic,
                "idle_j": idle_charged,
                "energy_j": energy,
                "extension_s": extension,
                "horizon_s": full * horizon,
                "cluster_idle_w": full * cluster_idle,
                "work": full * work,
                "unseen_occupancy": unseen,
                "asleep_nodes": full * float(np.count_nonzero(inp.asleep)),
                "wake_j": wake_j,
                "wake_s": wake_s,
                "hold_s": hold_s,
                "sleep_w": np.where(wake, sleep_w, 0.0),
                "held_j": held,
            }
        ),
    )


def _sleep_watts(snap: ClusterSnapshot, asleep: BoolArray) -> FloatArray:
    """The profile's sleep power on the sleeping nodes (NaN elsewhere)."""
    out = np.full(snap.table.size, np.nan)
    for i in np.flatnonzero(asleep).tolist():
        figures = power_states_of(snap, i)
        if figures is not None:
            out[i] = figures.sleep_watts
    return out


def _wake_figures(
    snap: ClusterSnapshot, wake: BoolArray, idle: FloatArray, sleep_w: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Per node to wake: the wake's joules and seconds, and the hold (0 elsewhere)."""
    n = snap.table.size
    wake_j, wake_s, hold_s = np.zeros(n), np.zeros(n), np.zeros(n)
    for i in np.flatnonzero(wake).tolist():
        figures = power_states_of(snap, i)
        assert figures is not None and sleep_w[i] < idle[i]  # what makes a node wakeable
        wake_j[i] = figures.wake_joules
        wake_s[i] = figures.wake_seconds
        hold_s[i] = hold_seconds(float(idle[i]), figures, WAKE_POLICY)
    return wake_j, wake_s, hold_s


def why(scores: Scores, snap: ClusterSnapshot, params: ScheduleParams, i: int) -> str:
    x = {k: float(v[i]) for k, v in terms(scores).items()}
    w = scores.weight
    idle = float(np.nan_to_num(snap.table.idle[i], nan=0.0))
    if x["wake_s"] > 0:
        return _why_asleep(scores, x, w, idle, i)
    head = (
        f"score {float(scores.base[i]):.1f} = {w:.2f}*normT {scores.norm_p[i]:.1f} + "
        f"{1 - w:.2f}*normCE {scores.norm_e[i]:.1f}: "
        f"cluster energy {x['energy_j']:.4g} J = dynamic {x['dynamic_j']:.4g} J "
        f"(({float(scores.power[i]):g} - idle {idle:g}) W x {x['duration_s']:.3g} s for work "
        f"{x['work']:g}) + idle {x['idle_j']:.4g} J (cluster idle {x['cluster_idle_w']:g} W x "
        f"{x['extension_s']:.3g} s past the {x['horizon_s']:.3g} s horizon); done in "
        f"{x['end_s']:.3g} s (backlog {x['backlog_s']:.3g} s)"
    )
    if x["unseen_occupancy"] > 0:
        head += (
            f"; live power shows {100 * x['unseen_occupancy']:.0f}% of the node busy with work"
            " the model does not know: duration stretched by that share"
        )
    return head + _asleep_note(x)


def _asleep_note(x: Mapping[str, float]) -> str:
    k = int(x["asleep_nodes"])
    return f" ({k} sleeping node(s) at their sleep power in the cluster idle)" if k else ""


def _why_asleep(scores: Scores, x: Mapping[str, float], w: float, idle: float, i: int) -> str:
    """A sleeping node: the wake terms first (module doc)."""
    return (
        f"asleep, to wake: score {float(scores.base[i]):.1f} = {w:.2f}*normT "
        f"{scores.norm_p[i]:.1f} + {1 - w:.2f}*normCE {scores.norm_e[i]:.1f}: "
        f"cluster energy {x['energy_j']:.4g} J = wake {x['wake_j']:.4g} J + dynamic "
        f"{x['dynamic_j']:.4g} J (({float(scores.power[i]):g} - idle {idle:g}) W x "
        f"{x['duration_s']:.3g} s for work {x['work']:g}) + awake {x['held_j']:.4g} J "
        f"((idle {idle:g} - sleep {x['sleep_w']:g}) W x ({x['duration_s']:.3g} s + hold "
        f"{x['hold_s']:.3g} s)) + idle {x['idle_j']:.4g} J (cluster idle "
        f"{x['cluster_idle_w']:g} W x {x['extension_s']:.3g} s past the {x['horizon_s']:.3g} s "
        f"horizon); done in {x['end_s']:.3g} s (wake {x['wake_s']:.3g} s first)" + _asleep_note(x)
    )


PLUGIN: Final = Scorer(MODE, score, why, validate=validate, scores_asleep=True)
