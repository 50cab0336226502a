"""``normalized`` (v1.1).

Pre-score: ``maxP``, ``maxE`` over the feasible nodes that have figures for the
workload type. ``normP = 100*P/maxP``, ``normE = 100*E/maxE``,
``score = w*normP + (1-w)*normE``.
"""

from __future__ import annotations

from typing import Final

import numpy as np

from energysched.core.interface import ModeScores, ScoreInput, Scorer, Scores
from energysched.core.params import ScheduleParams
from energysched.core.snapshot import ClusterSnapshot

MODE: Final = "normalized"


def score(inp: ScoreInput) -> ModeScores:
    max_p = float(inp.perf[inp.scored].max())
    max_e = float(inp.eff[inp.scored].max())
    # Figures are finite (NodeTable keeps only those whose P/W and 100*P are), so
    # 100 * (x / max) is <= 100 for every scored node; an infeasible node with far
    # larger figures may overflow to inf (or NaN), which is never ranked.
    with np.errstate(over="ignore", invalid="ignore"):
        norm_p = 100.0 * (inp.perf / max_p) if max_p > 0 else np.where(inp.has, 0.0, np.nan)
        norm_e = 100.0 * (inp.eff / max_e) if max_e > 0 else np.where(inp.has, 0.0, np.nan)
        w = inp.weight
        base = np.where(inp.has, w * norm_p + (1 - w) * norm_e, 0.0)
    return ModeScores(base=base, score=base, norm_p=norm_p, norm_e=norm_e, max_p=max_p, max_e=max_e)


def why(scores: Scores, snap: ClusterSnapshot, params: ScheduleParams, i: int) -> str:
    w = scores.weight
    p, e = float(scores.raw_p[i]), float(scores.raw_e[i])
    res = snap.table.profiles[i]
    profile = res.profile.name if res is not None else None
    return (
        f"score {float(scores.base[i]):.1f} = {w:.2f}*normP {scores.norm_p[i]:.1f} + "
        f"{1 - w:.2f}*normE {scores.norm_e[i]:.1f} (P {p:g} of max {scores.max_p:g}, "
        f"E {e:.4g} of max {scores.max_e:.4g} work/J, profile {profile})"
    )


PLUGIN: Final = Scorer(MODE, score, why)
