"""The three stages of the workflow, real ML in numpy, handing data over through a directory.

* ``preprocessing`` (workload type ``sequential``): load and clean the shipped
  digits, normalise (16x16, 0..1), split train/test (stratified), augment the
  training part (the sequential work, in Miter of logistic-map draws), write
  ``dataset.npz``.
* ``training`` (``training``): fit the benchmark's standard MLP
  (256-512-512-10, batch 128, float32, SGD) for ``work`` steps, write
  ``model.npz`` and ``training.json``.
* ``inference`` (``inference``): load the model, predict ``work`` samples in
  batches of 256 (the test set, repeated), report accuracy and throughput.

Each stage prints one result line, ``RESULT_MARKER`` followed by JSON: the
work done in the knowledge base's unit for its workload type, wall time, rate
and accuracy, so a measured duration can be set against the profile's figure.
This module needs numpy and the standard library only (it runs in the
workflow image on every node class); it does not import ``energysched``.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from energysched_bench.kernels import STANDARD, NumpyMLP
from energysched_mlworkflow import dataset

RESULT_MARKER = "energysched-mlworkflow-result "


@dataclass(frozen=True)
class StageInfo:
    """What a stage is, in the knowledge base's terms, and its default amount of work."""

    name: str
    workload_type: str  # one of energysched.contract.WORKLOAD_TYPES (checked by a test)
    unit: str  # the profile's unit for that workload type, without "/s"
    default_work: float


#: The thesis workflow at its full size (what the experiment's Jobs run).
STAGE_INFO: dict[str, StageInfo] = {
    s.name: s
    for s in (
        StageInfo("preprocessing", "sequential", "Miter", 60.0),
        StageInfo("training", "training", "steps", 3000.0),
        StageInfo("inference", "inference", "samples", 2_000_000.0),
    )
}
STAGES = tuple(STAGE_INFO)


@dataclass
class Result:
    stage: str
    workload_type: str
    work: float  # done, in ``unit``
    unit: str
    seconds: float
    accuracy: float | None
    backend: str = "numpy"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.work / self.seconds if self.seconds > 0 else math.inf

    def line(self) -> str:
        doc = asdict(self)
        doc["rate"] = round(self.rate, 3)
        doc["rate_unit"] = f"{self.unit}/s"
        doc["seconds"] = round(self.seconds, 4)
        return RESULT_MARKER + json.dumps(doc, sort_keys=True)


def parse_result(text: str) -> list[dict[str, Any]]:
    """Every result line in ``text`` (e.g. a pod's log), as dicts."""
    return [
        json.loads(line[len(RESULT_MARKER) :])
        for line in text.splitlines()
        if line.startswith(RESULT_MARKER)
    ]


def _write_npz(path: Path, **arrays: npt.NDArray[Any]) -> None:
    # Write then rename: a reader on a shared volume never sees half a file.
    tmp = path.with_name(path.name + ".partial")
    savez: Any = np.savez  # numpy's stub types **kwds as its own keyword arguments
    with tmp.open("wb") as f:
        savez(f, **arrays)
    os.replace(tmp, path)


def _write_json(path: Path, doc: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".partial")
    tmp.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


class StageInputError(RuntimeError):
    """A stage's input is missing or unusable; the message says which file."""


def _load(path: Path, what: str) -> Any:
    if not path.exists():
        raise StageInputError(f"{path} is missing: run the {what} stage first")
    try:
        return np.load(path)
    except (OSError, ValueError) as exc:
        raise StageInputError(f"{path} is unreadable ({exc}); rerun the {what} stage") from exc


# -- preprocessing -------------------------------------------------------------


def preprocess(data_dir: Path, work: float, *, seed: int = STANDARD.seed) -> Result:
    """``work`` Miter of augmentation draws; writes ``dataset.npz``."""
    info = STAGE_INFO["preprocessing"]
    t0 = time.perf_counter()
    raw, labels, report = dataset.clean(dataset.read_rows())
    images = dataset.normalise(raw)
    train_idx, test_idx = dataset.split(labels, test_fraction=0.2, seed=seed)
    train_images, train_labels = images[train_idx], labels[train_idx]
    count = math.ceil(work * 1e6 / dataset.DRAWS_PER_IMAGE)
    augmented, sources, _ = dataset.augment(train_images, count)
    train_pixels = np.concatenate([dataset.to_pixels(train_images), augmented])
    train_y = np.concatenate([train_labels, train_labels[sources]])
    # Normalisation statistics from the original training images only (no test leakage).
    flat = train_images.reshape(len(train_images), dataset.INPUTS)
    mean = flat.mean(axis=0).astype(np.float32)
    std = np.maximum(flat.std(axis=0), 0.05).astype(np.float32)  # constant border pixels
    data_dir.mkdir(parents=True, exist_ok=True)
    _write_npz(
        data_dir / "dataset.npz",
        train_x=train_pixels,
        train_y=train_y,
        test_x=dataset.to_pixels(images[test_idx]),
        test_y=labels[test_idx],
        n_original=np.array(len(train_idx)),
        mean=mean,
        std=std,
    )
    seconds = time.perf_counter() - t0
    done = count * dataset.DRAWS_PER_IMAGE / 1e6
    return Result(
        "preprocessing",
        info.workload_type,
        done,
        info.unit,
        seconds,
        None,
        extra={
            "rows": report.rows,
            "kept": report.kept,
            "dropped": report.dropped,
            "train": len(train_idx),
            "augmented": count,
            "test": len(test_idx),
        },
    )


# -- training ------------------------------------------------------------------


def _batches(n: int, batch: int, steps: int, seed: int) -> list[npt.NDArray[np.intp]]:
    """Index batches for ``steps`` SGD steps: shuffled epochs, deterministic."""
    rng = np.random.default_rng(seed)
    out: list[npt.NDArray[np.intp]] = []
    order = rng.permutation(n)
    pos = 0
    for _ in range(steps):
        if pos + batch > n:
            order, pos = rng.permutation(n), 0
        out.append(order[pos : pos + batch])
        pos += batch
    return out


def accuracy(predicted: npt.NDArray[Any], truth: npt.NDArray[Any]) -> float:
    return float((predicted == truth).mean())


def save_model(path: Path, weights: list[npt.NDArray[Any]], biases: list[npt.NDArray[Any]]) -> None:
    arrays = {f"w{i}": w for i, w in enumerate(weights)}
    arrays.update({f"b{i}": b for i, b in enumerate(biases)})
    _write_npz(path, **arrays)


def load_model(path: Path) -> NumpyMLP:
    stored = _load(path, "training")
    layers = len([k for k in stored.files if k.startswith("w")])
    model = NumpyMLP(STANDARD)
    if layers != len(model.weights):
        raise StageInputError(f"{path} has {layers} layers, the model {len(model.weights)}")
    model.weights = [stored[f"w{i}"].astype(model.dtype) for i in range(layers)]
    model.biases = [stored[f"b{i}"].astype(model.dtype) for i in range(layers)]
    return model


def _load_dataset(data_dir: Path) -> dict[str, npt.NDArray[Any]]:
    stored = _load(data_dir / "dataset.npz", "preprocessing")
    return {k: stored[k] for k in stored.files}


#: Batch of standardised inputs for the given row indices.
Inputs = Callable[[npt.NDArray[np.intp]], npt.NDArray[np.float32]]
Trainer = Callable[
    [Inputs, npt.NDArray[np.int64], list[npt.NDArray[np.intp]]],
    tuple[list[npt.NDArray[Any]], list[npt.NDArray[Any]], list[float], str],
]


def numpy_trainer(
    inputs: Inputs, y: npt.NDArray[np.int64], batches: list[npt.NDArray[np.intp]]
) -> tuple[list[npt.NDArray[Any]], list[npt.NDArray[Any]], list[float], str]:
    model = NumpyMLP(STANDARD)
    losses = [model.train_step(inputs(b), y[b]) for b in batches]
    return model.weights, model.biases, losses, "numpy"


def train(
    data_dir: Path, work: float, *, trainer: Trainer = numpy_trainer, seed: int = STANDARD.seed
) -> Result:
    """``work`` SGD steps of the standard MLP; writes ``model.npz``, ``training.json``."""
    info = STAGE_INFO["training"]
    t0 = time.perf_counter()
    data = _load_dataset(data_dir)
    pixels, mean, std, y = data["train_x"], data["mean"], data["std"], data["train_y"]

    def inputs(rows: npt.NDArray[np.intp]) -> npt.NDArray[np.float32]:
        # Per batch: the augmented set stays bytes in memory (a quarter of float32).
        return dataset.standardise(pixels[rows], mean, std)

    steps = max(1, math.ceil(work))
    batches = _batches(len(y), STANDARD.train_batch, steps, seed)
    weights, biases, losses, backend = trainer(inputs, y, batches)
    save_model(data_dir / "model.npz", weights, biases)
    # Accuracy on the original (unaugmented) training images: did it learn at all?
    n_orig = int(data["n_original"])  # stored first, before the augmented images
    model = load_model(data_dir / "model.npz")
    logits, _ = model.forward(inputs(np.arange(n_orig)))
    train_acc = accuracy(logits.argmax(axis=1), y[:n_orig])
    seconds = time.perf_counter() - t0
    tail = losses[-min(50, len(losses)) :]
    metrics = {
        "steps": steps,
        "batch": STANDARD.train_batch,
        "model": STANDARD.describe("training"),
        "loss_first": losses[0],
        "loss_last50": float(np.mean(tail)),
        "train_accuracy": train_acc,
        "backend": backend,
        "seconds": seconds,
    }
    _write_json(data_dir / "training.json", metrics)
    return Result(
        "training",
        info.workload_type,
        float(steps),
        info.unit,
        seconds,
        train_acc,
        backend,
        extra={"loss_first": round(losses[0], 4), "loss_last50": round(float(np.mean(tail)), 4)},
    )


# -- inference -----------------------------------------------------------------

#: Predicts ``samples`` rows of ``x`` taken cyclically, ``batch`` at a time.
Predictor = Callable[[Path, npt.NDArray[np.float32], int, int], tuple[npt.NDArray[np.intp], str]]


def numpy_predictor(
    model_path: Path, x: npt.NDArray[np.float32], samples: int, batch: int
) -> tuple[npt.NDArray[np.intp], str]:
    model = load_model(model_path)
    out = np.empty(samples, dtype=np.intp)
    # One big batch of the test set repeated, fed 256 rows at a time (not materialised:
    # 2,000,000 x 256 float32 would be 2 GB).
    reps = np.concatenate([x, x[:batch]])  # a window never wraps mid-batch
    n = len(x)
    for start in range(0, samples, batch):
        k = min(batch, samples - start)
        offset = start % n
        logits, _ = model.forward(reps[offset : offset + k])
        out[start : start + k] = logits.argmax(axis=1)
    return out, "numpy"


def infer(data_dir: Path, work: float, *, predictor: Predictor = numpy_predictor) -> Result:
    """Predict ``work`` samples (at least the whole test set once); accuracy and throughput."""
    info = STAGE_INFO["inference"]
    data = _load_dataset(data_dir)
    x_test = dataset.standardise(data["test_x"], data["mean"], data["std"])
    y_test = data["test_y"]
    batch = STANDARD.infer_batch
    if len(x_test) < batch:
        raise StageInputError(f"test set of {len(x_test)} samples is smaller than a batch")
    samples = max(math.ceil(work), len(x_test))
    t0 = time.perf_counter()
    predicted, backend = predictor(data_dir / "model.npz", x_test, samples, batch)
    seconds = time.perf_counter() - t0
    truth = y_test[np.arange(samples) % len(y_test)]
    acc = accuracy(predicted[: len(y_test)], y_test)
    doc = {
        "samples": samples,
        "test_samples": len(y_test),
        "accuracy": acc,
        "accuracy_all_predictions": accuracy(predicted, truth),
        "seconds": seconds,
        "backend": backend,
    }
    _write_json(data_dir / "inference.json", doc)
    return Result(
        "inference",
        info.workload_type,
        float(samples),
        info.unit,
        seconds,
        acc,
        backend,
        extra={"test_samples": len(y_test)},
    )


def run_stage(
    name: str, data_dir: Path, work: float | None = None, backend: str = "numpy"
) -> Result:
    """Run one stage (``work`` in its unit; default the full pipeline's)."""
    info = STAGE_INFO[name]
    amount = info.default_work if work is None else work
    if name == "preprocessing":
        return preprocess(data_dir, amount)
    if backend == "torch":
        from energysched_mlworkflow import torch_backend

        if name == "training":
            return train(data_dir, amount, trainer=torch_backend.trainer)
        return infer(data_dir, amount, predictor=torch_backend.predictor)
    if name == "training":
        return train(data_dir, amount)
    return infer(data_dir, amount)
