"""The workflow's data: load, clean, normalise, split and augment the digits (numpy only).

The data set ships with the package (``data/digits.csv.gz``, see
``data/README.md``): 1,797 handwritten digits of 8x8 pixels (0..16). Images
are upsampled to 16x16 so that they have the 256 inputs of the benchmark's
standard MLP (:data:`energysched_bench.kernels.STANDARD`): a training step
here is exactly one step of the knowledge base's ``training`` unit, an
inference sample exactly one ``inference`` sample.

The preprocessing stage's work is *sequential* in the knowledge base's sense:
its augmentation draws its randomness from the logistic map
``x <- 3.9 x (1 - x)`` in a plain Python loop, the benchmark's sequential
kernel, one iteration per pixel of each augmented image. So its amount of work
is stated in the same unit, Miter (a million iterations).
"""

from __future__ import annotations

import csv
import gzip
import io
from array import array
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import numpy as np
import numpy.typing as npt

SIDE = 16  # pixels per side after upsampling
INPUTS = SIDE * SIDE  # 256, the standard MLP's inputs
CLASSES = 10
RAW_SIDE = 8
RAW_MAX = 16
#: Logistic-map draws per augmented image: one per pixel.
DRAWS_PER_IMAGE = INPUTS
R = 3.9  # the benchmark kernel's logistic-map parameter


@dataclass
class CleanReport:
    rows: int = 0
    kept: int = 0
    dropped: dict[str, int] = field(default_factory=dict)

    def drop(self, reason: str) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + 1


def read_rows(text: str | None = None) -> list[list[str]]:
    """The raw CSV rows (the shipped file unless ``text`` is given)."""
    if text is None:
        raw = resources.files("energysched_mlworkflow").joinpath("data/digits.csv.gz").read_bytes()
        text = gzip.decompress(raw).decode("ascii")
    return list(csv.reader(io.StringIO(text)))


def clean(
    rows: list[list[str]],
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64], CleanReport]:
    """Validate every row; drop malformed rows, out-of-range values and exact duplicates."""
    report = CleanReport(rows=len(rows))
    seen: set[tuple[int, ...]] = set()
    pixels: list[tuple[int, ...]] = []
    labels: list[int] = []
    width = RAW_SIDE * RAW_SIDE + 1
    for row in rows:
        if len(row) != width:
            report.drop("wrong field count")
            continue
        try:
            values = tuple(int(v) for v in row)
        except ValueError:
            report.drop("not an integer")
            continue
        *pix, label = values
        if not all(0 <= p <= RAW_MAX for p in pix):
            report.drop("pixel out of 0..16")
            continue
        if not 0 <= label < CLASSES:
            report.drop("label out of 0..9")
            continue
        if values in seen:
            report.drop("duplicate")
            continue
        seen.add(values)
        pixels.append(tuple(pix))
        labels.append(label)
    report.kept = len(labels)
    return (
        np.array(pixels, dtype=np.uint8).reshape(-1, RAW_SIDE, RAW_SIDE),
        np.array(labels, dtype=np.int64),
        report,
    )


def _interpolation(n_in: int, n_out: int) -> npt.NDArray[np.float64]:
    """Linear interpolation matrix (n_out x n_in), pixel centres aligned."""
    pos = (np.arange(n_out) + 0.5) * n_in / n_out - 0.5
    pos = np.clip(pos, 0, n_in - 1)
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, n_in - 1)
    frac = pos - lo
    m = np.zeros((n_out, n_in))
    m[np.arange(n_out), lo] += 1 - frac
    m[np.arange(n_out), hi] += frac
    return m


def normalise(raw: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
    """0..16 pixels of 8x8 -> 0..1 intensities of 16x16 (bilinear)."""
    m = _interpolation(RAW_SIDE, SIDE)
    x = raw.astype(np.float64) / RAW_MAX
    up: npt.NDArray[Any] = np.einsum("ij,njk,lk->nil", m, x, m)
    return up.astype(np.float32)


def split(
    labels: npt.NDArray[np.int64], test_fraction: float, seed: int
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """Stratified, deterministic train/test indices."""
    rng = np.random.default_rng(seed)
    train: list[npt.NDArray[np.intp]] = []
    test: list[npt.NDArray[np.intp]] = []
    for c in range(CLASSES):
        idx = rng.permutation(np.flatnonzero(labels == c))
        n_test = round(len(idx) * test_fraction)
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def logistic_draws(x: float, n: int) -> tuple[array[float], float]:
    """``n`` successive values of the logistic map from ``x``: the sequential work.

    The benchmark's kernel loop plus one store per iteration; each value needs
    the one before, so this neither vectorises nor uses a second core.
    """
    out = array("d", bytes(8 * n))
    r = R
    for i in range(n):
        x = r * x * (1.0 - x)
        out[i] = x
    return out, x


def augment(
    images: npt.NDArray[np.float32], count: int, x0: float = 0.1234, chunk: int = 4096
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.intp], float]:
    """``count`` augmented copies of ``images`` (16x16, 0..1), as 0..255 pixels.

    Image ``i`` is a copy of ``images[i % n]`` shifted by up to one pixel in each
    direction (from its first two draws) with pixel noise from all its draws.
    Returns the images, the index of each source image and the map's last value.
    """
    n = len(images)
    out = np.empty((count, SIDE, SIDE), dtype=np.uint8)
    sources = np.arange(count) % n
    x = x0
    for start in range(0, count, chunk):
        k = min(chunk, count - start)
        draws_buf, x = logistic_draws(x, k * DRAWS_PER_IMAGE)
        draws = np.frombuffer(draws_buf, dtype=np.float64).reshape(k, SIDE, SIDE)
        src = images[sources[start : start + k]]
        dy = np.minimum((draws[:, 0, 0] * 3).astype(int), 2) - 1
        dx = np.minimum((draws[:, 0, 1] * 3).astype(int), 2) - 1
        shifted = np.empty_like(src)
        for sy in (-1, 0, 1):  # nine vectorised shifts instead of a per-image loop
            for sx in (-1, 0, 1):
                sel = (dy == sy) & (dx == sx)
                if sel.any():
                    shifted[sel] = np.roll(src[sel], (sy, sx), axis=(1, 2))
        noisy = np.clip(shifted + 0.2 * (draws - 0.5), 0.0, 1.0)
        out[start : start + k] = np.round(noisy * 255).astype(np.uint8)
    return out, sources, x


def to_pixels(images: npt.NDArray[np.float32]) -> npt.NDArray[np.uint8]:
    return np.round(np.clip(images, 0.0, 1.0) * 255).astype(np.uint8)


def standardise(
    pixels: npt.NDArray[np.uint8], mean: npt.NDArray[np.float32], std: npt.NDArray[np.float32]
) -> npt.NDArray[np.float32]:
    """0..255 pixels -> the model's inputs (n x 256, float32)."""
    x = pixels.reshape(len(pixels), INPUTS).astype(np.float32) / np.float32(255)
    out: npt.NDArray[np.float32] = (x - mean) / std
    return out
