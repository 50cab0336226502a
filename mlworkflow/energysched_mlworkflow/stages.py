"""The stage code the workflow's image runs on real nodes (numpy only).

Each stage does the amount of work ``pipeline.PIPELINE`` states, in the units of
the benchmark kernels, so a measured duration can be compared with the
knowledge base's prediction. On the simulated (KWOK) cluster no container runs:
there the experiment derives durations from the profiles instead.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from itertools import pairwise

import numpy as np
import numpy.typing as npt


def _mlp(rng: np.random.Generator) -> list[npt.NDArray[np.float32]]:
    """The benchmark kernels' MLP shape: 256-512-512-10, float32."""
    sizes = (256, 512, 512, 10)
    return [rng.standard_normal((a, b), dtype=np.float32) * 0.05 for a, b in pairwise(sizes)]


def preprocessing(miter: float = 60.0) -> float:
    """A sequential recurrence (the logistic map), one core: ``miter`` million steps."""
    x, r = 0.5, 3.9
    for _ in range(int(miter * 1e6)):
        x = r * x * (1.0 - x)
    return x


def training(steps: int = 3000, seed: int = 0) -> float:
    """SGD on a 256-512-512-10 MLP, batch 128, float32."""
    rng = np.random.default_rng(seed)
    weights = _mlp(rng)
    x = rng.standard_normal((128, 256), dtype=np.float32)
    y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, 128)]
    loss = 0.0
    for _ in range(steps):
        acts = [x]
        for w in weights[:-1]:
            acts.append(np.maximum(acts[-1] @ w, 0))
        out = acts[-1] @ weights[-1]
        grad = (out - y) / len(x)
        loss = float((grad**2).sum())
        for i in range(len(weights) - 1, -1, -1):
            g_w = acts[i].T @ grad
            if i:
                grad = (grad @ weights[i].T) * (acts[i] > 0)
            weights[i] -= 0.01 * g_w
    return loss


def inference(samples: int = 2_000_000, seed: int = 0) -> float:
    """Forward passes of the same MLP in batches of 256."""
    rng = np.random.default_rng(seed)
    weights = _mlp(rng)
    batch = rng.standard_normal((256, 256), dtype=np.float32)
    total = 0.0
    for _ in range(max(1, samples // 256)):
        h = batch
        for w in weights[:-1]:
            h = np.maximum(h @ w, 0)
        total += float((h @ weights[-1]).sum())
    return total


STAGES: dict[str, Callable[[], float]] = {
    "preprocessing": preprocessing,
    "training": training,
    "inference": inference,
}


def run(stage: str) -> float:
    """Run a stage; returns its wall time in seconds."""
    t0 = time.perf_counter()
    STAGES[stage]()
    return time.perf_counter() - t0
