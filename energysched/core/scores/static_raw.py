"""``static-raw`` (v1.0, kept to reproduce the thesis' first results).

``score = clip(w*P + (1-w)*E, 0, 100)`` on raw, unnormalised figures. With real
figures (P in the hundreds or thousands, E in the tens to hundreds) nearly every
node clips to 100, so the weight has (almost) no effect and the tie-break
decides. This flaw is deliberate: it is what v1.0 did.
"""

from __future__ import annotations

from typing import Final

import numpy as np

from energysched.core.interface import ModeScores, ScoreInput, Scorer, Scores
from energysched.core.params import ScheduleParams
from energysched.core.snapshot import ClusterSnapshot

MODE: Final = "static-raw"


def score(inp: ScoreInput) -> ModeScores:
    w = inp.weight
    # finite figures (see NodeTable): no overflow; NaN only where there are none
    base = np.where(inp.has, np.clip(w * inp.perf + (1 - w) * inp.eff, 0.0, 100.0), 0.0)
    return ModeScores(base=base, score=base, norm_p=inp.nan, norm_e=inp.nan)


def why(scores: Scores, snap: ClusterSnapshot, params: ScheduleParams, i: int) -> str:
    w = scores.weight
    p, e = float(scores.raw_p[i]), float(scores.raw_e[i])
    return (
        f"score {float(scores.final[i]):.1f} = clip({w:.2f}*P {p:g} + {1 - w:.2f}*E {e:.4g}, "
        "0, 100) (static-raw, v1.0: raw figures, not normalised)"
    )


PLUGIN: Final = Scorer(MODE, score, why)
