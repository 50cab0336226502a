"""A scoring mode that is not in the tree, as one file: ``performance-only`` (normP)."""

from __future__ import annotations

from typing import Final

import numpy as np

from energysched.core.interface import ModeScores, ScoreInput, Scorer, Scores
from energysched.core.params import ScheduleParams
from energysched.core.scores import normalized
from energysched.core.snapshot import ClusterSnapshot

MODE: Final = "performance-only"


def score(inp: ScoreInput) -> ModeScores:
    norm = normalized.score(inp)
    base = np.where(inp.has, norm.norm_p, 0.0)
    return ModeScores(base=base, score=base, norm_p=norm.norm_p, norm_e=norm.norm_e)


def why(scores: Scores, snap: ClusterSnapshot, params: ScheduleParams, i: int) -> str:
    return f"score {float(scores.final[i]):.1f} = normP (performance only)"


PLUGIN: Final = Scorer(MODE, score, why)
