"""Benchmark kernels for the three workload types, in plain numpy.

They run on amd64 with and without AVX, arm64 and armv7: no special
instructions, whatever BLAS numpy brings. Each kernel is a callable that does
one "step" of work and returns how many work units it did; the runner times it.

* training:   steps of a small MLP (forward, backward, SGD), unit ``steps/s``;
* inference:  forward passes in batches, unit ``samples/s``;
* sequential: a logistic-map recurrence in a plain Python loop (each iteration
  needs the previous one, so it cannot vectorise or use a second core),
  unit ``Miter/s`` (million iterations per second);
* training/inference on a GPU when PyTorch with CUDA is importable (same MLP,
  same units, so the figures are comparable with the CPU ones).

The figures of different nodes are only comparable for the same configuration:
:data:`STANDARD` is what profiles are made from; tests use tiny sizes.
"""

from __future__ import annotations

import importlib
import itertools
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

Dtype = Literal["float32", "float64"]
Device = Literal["cpu", "gpu"]

#: A kernel step: does some work, returns the number of work units done.
Step = Callable[[], float]


@dataclass(frozen=True, slots=True)
class KernelConfig:
    """Sizes of the kernels. Profiles compare nodes only under the same config."""

    inputs: int = 256
    hidden: int = 512
    hidden_layers: int = 2
    classes: int = 10
    train_batch: int = 128
    infer_batch: int = 256
    dtype: Dtype = "float32"
    #: Logistic-map iterations per sequential step.
    seq_chunk: int = 200_000
    seed: int = 42

    def describe(self, workload: str) -> str:
        layers = "-".join(
            [str(self.inputs)] + [str(self.hidden)] * self.hidden_layers + [str(self.classes)]
        )
        if workload == "training":
            return f"MLP {layers}, batch {self.train_batch}, {self.dtype}, SGD"
        if workload == "inference":
            return f"MLP {layers} forward, batch {self.infer_batch}, {self.dtype}"
        return "logistic map x <- 3.9*x*(1-x) in a CPython loop, float64"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


STANDARD = KernelConfig()
TINY = KernelConfig(
    inputs=16,
    hidden=32,
    hidden_layers=1,
    classes=4,
    train_batch=8,
    infer_batch=16,
    seq_chunk=2_000,
)

UNITS: dict[str, str] = {"training": "steps/s", "inference": "samples/s", "sequential": "Miter/s"}


class NumpyMLP:
    """A ReLU MLP with softmax cross-entropy, trained by plain SGD."""

    def __init__(self, config: KernelConfig, *, lr: float = 0.05) -> None:
        rng = np.random.default_rng(config.seed)
        self.dtype = np.dtype(config.dtype)
        sizes = [config.inputs] + [config.hidden] * config.hidden_layers + [config.classes]
        self.weights: list[npt.NDArray[Any]] = []
        self.biases: list[npt.NDArray[Any]] = []
        for fan_in, fan_out in itertools.pairwise(sizes):
            scale = np.sqrt(2.0 / fan_in)
            self.weights.append((rng.standard_normal((fan_in, fan_out)) * scale).astype(self.dtype))
            self.biases.append(np.zeros(fan_out, dtype=self.dtype))
        self.lr = self.dtype.type(lr)

    def forward(self, x: npt.NDArray[Any]) -> tuple[npt.NDArray[Any], list[npt.NDArray[Any]]]:
        """Logits and the activations of every layer (input first)."""
        activations = [x]
        h = x
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            h = h @ w + b
            if i != last:
                np.maximum(h, 0, out=h)
            activations.append(h)
        return h, activations

    def loss_and_grads(
        self, x: npt.NDArray[Any], y: npt.NDArray[np.intp]
    ) -> tuple[float, list[npt.NDArray[Any]], list[npt.NDArray[Any]]]:
        logits, acts = self.forward(x)
        shifted = logits - logits.max(axis=1, keepdims=True)
        exp = np.exp(shifted)
        probs = exp / exp.sum(axis=1, keepdims=True)
        n = x.shape[0]
        loss = float(-np.log(probs[np.arange(n), y] + 1e-12).mean())
        delta = probs
        delta[np.arange(n), y] -= 1
        delta /= n
        grads_w: list[npt.NDArray[Any]] = [np.empty(0)] * len(self.weights)
        grads_b: list[npt.NDArray[Any]] = [np.empty(0)] * len(self.weights)
        for i in range(len(self.weights) - 1, -1, -1):
            grads_w[i] = acts[i].T @ delta
            grads_b[i] = delta.sum(axis=0)
            if i:
                delta = (delta @ self.weights[i].T) * (acts[i] > 0)
        return loss, grads_w, grads_b

    def train_step(self, x: npt.NDArray[Any], y: npt.NDArray[np.intp]) -> float:
        loss, grads_w, grads_b = self.loss_and_grads(x, y)
        for w, b, gw, gb in zip(self.weights, self.biases, grads_w, grads_b, strict=True):
            w -= self.lr * gw
            b -= self.lr * gb
        return loss


def _dataset(
    config: KernelConfig, batch: int, batches: int = 4
) -> list[tuple[npt.NDArray[Any], npt.NDArray[np.intp]]]:
    """A few fixed synthetic batches with a learnable rule (label from a random projection)."""
    rng = np.random.default_rng(config.seed + 1)
    projection = rng.standard_normal((config.inputs, config.classes))
    data = []
    for _ in range(batches):
        x = rng.standard_normal((batch, config.inputs))
        y = np.argmax(x @ projection, axis=1).astype(np.intp)
        data.append((x.astype(config.dtype), y))
    return data


def training_step(config: KernelConfig) -> Step:
    model = NumpyMLP(config)
    data = _dataset(config, config.train_batch)
    state = {"i": 0}

    def step() -> float:
        x, y = data[state["i"] % len(data)]
        state["i"] += 1
        model.train_step(x, y)
        return 1.0

    return step


def inference_step(config: KernelConfig) -> Step:
    model = NumpyMLP(config)
    data = _dataset(config, config.infer_batch)
    state = {"i": 0}

    def step() -> float:
        x, _ = data[state["i"] % len(data)]
        state["i"] += 1
        logits, _ = model.forward(x)
        logits.argmax(axis=1)
        return float(config.infer_batch)

    return step


def logistic_map(x: float, iterations: int) -> float:
    """x <- 3.9 x (1 - x), ``iterations`` times: each step needs the previous one."""
    r = 3.9
    for _ in range(iterations):
        x = r * x * (1.0 - x)
    return x


def sequential_step(config: KernelConfig) -> Step:
    state = {"x": 0.5}
    per_step = config.seq_chunk / 1e6  # Miter

    def step() -> float:
        state["x"] = logistic_map(state["x"], config.seq_chunk)
        if not 0.0 < state["x"] < 1.0:  # keeps the loop honest; never true for r < 4
            state["x"] = 0.5
        return per_step

    return step


CPU_KERNELS: dict[str, Callable[[KernelConfig], Step]] = {
    "training": training_step,
    "inference": inference_step,
    "sequential": sequential_step,
}


class GpuUnavailable(Exception):
    """PyTorch or CUDA is missing; the message says which."""


def _torch() -> Any:
    try:
        torch = importlib.import_module("torch")
    except ImportError as exc:
        raise GpuUnavailable(f"PyTorch is not importable ({exc})") from None
    if not torch.cuda.is_available():
        raise GpuUnavailable("PyTorch has no usable CUDA device")
    return torch


def gpu_name() -> str:
    return str(_torch().cuda.get_device_name(0))


def gpu_step(workload: str, config: KernelConfig) -> Step:
    """The same MLP in PyTorch on CUDA; raises GpuUnavailable when it cannot run."""
    torch = _torch()
    dev = torch.device("cuda")
    dtype = torch.float32 if config.dtype == "float32" else torch.float64
    torch.manual_seed(config.seed)
    layers: list[Any] = []
    sizes = [config.inputs] + [config.hidden] * config.hidden_layers + [config.classes]
    for i, (fan_in, fan_out) in enumerate(itertools.pairwise(sizes)):
        layers.append(torch.nn.Linear(fan_in, fan_out))
        if i != len(sizes) - 2:
            layers.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*layers).to(device=dev, dtype=dtype)
    batch = config.train_batch if workload == "training" else config.infer_batch
    data = [
        (torch.from_numpy(x).to(device=dev, dtype=dtype), torch.from_numpy(y).to(dev))
        for x, y in _dataset(config, batch)
    ]
    state = {"i": 0}
    if workload == "training":
        optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
        loss_fn = torch.nn.CrossEntropyLoss()

        def train() -> float:
            x, y = data[state["i"] % len(data)]
            state["i"] += 1
            optimizer.zero_grad(set_to_none=True)
            loss_fn(model(x), y).backward()
            optimizer.step()
            torch.cuda.synchronize()
            return 1.0

        return train

    def infer() -> float:
        x, _ = data[state["i"] % len(data)]
        state["i"] += 1
        with torch.no_grad():
            model(x).argmax(dim=1)
        torch.cuda.synchronize()
        return float(batch)

    return infer
