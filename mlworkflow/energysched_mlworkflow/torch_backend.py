"""Training and inference in PyTorch: on a GPU where CUDA is usable, else on the CPU.

The same model as the numpy stages (the benchmark's standard MLP, same
initialisation, SGD with the same learning rate and batches), so the two
backends' accuracy and the knowledge base's units compare. The weights are
saved in the numpy layout (``model.npz``): a model trained on a GPU node can
be served by the numpy inference on a Pi, and the other way round.

PyTorch is imported only here, only when ``--backend torch`` asks for it.
"""

from __future__ import annotations

import importlib
import itertools
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from energysched_bench.kernels import STANDARD, NumpyMLP
from energysched_mlworkflow import stages


def _torch() -> Any:
    try:
        return importlib.import_module("torch")
    except ImportError as exc:
        raise stages.StageInputError(
            f"--backend torch needs PyTorch ({exc}); use the GPU image or --backend numpy"
        ) from None


def device_name() -> tuple[Any, str]:
    torch = _torch()
    if torch.cuda.is_available():
        return torch.device("cuda"), f"torch-cuda:{torch.cuda.get_device_name(0)}"
    return torch.device("cpu"), f"torch-cpu:{torch.__version__}"


def _model(torch: Any, dev: Any) -> Any:
    # Initialised from the numpy model, so both backends start from the same weights.
    ref = NumpyMLP(STANDARD)
    sizes = [STANDARD.inputs] + [STANDARD.hidden] * STANDARD.hidden_layers + [STANDARD.classes]
    layers: list[Any] = []
    for i, (fan_in, fan_out) in enumerate(itertools.pairwise(sizes)):
        linear = torch.nn.Linear(fan_in, fan_out)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(np.ascontiguousarray(ref.weights[i].T)))
            linear.bias.copy_(torch.from_numpy(ref.biases[i]))
        layers.append(linear)
        if i != len(sizes) - 2:
            layers.append(torch.nn.ReLU())
    return torch.nn.Sequential(*layers).to(dev)


def _linears(model: Any) -> list[Any]:
    return [m for m in model if m.__class__.__name__ == "Linear"]


def trainer(
    inputs: stages.Inputs, y: npt.NDArray[np.int64], batches: list[npt.NDArray[np.intp]]
) -> tuple[list[npt.NDArray[Any]], list[npt.NDArray[Any]], list[float], str]:
    torch = _torch()
    dev, name = device_name()
    torch.manual_seed(STANDARD.seed)
    model = _model(torch, dev)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    loss_fn = torch.nn.CrossEntropyLoss()
    losses = []
    for b in batches:
        xb = torch.from_numpy(inputs(b)).to(dev, non_blocking=True)
        yb = torch.from_numpy(y[b]).to(dev, non_blocking=True)
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(xb), yb)
        loss.backward()
        optimizer.step()
        losses.append(loss)
    if dev.type == "cuda":
        torch.cuda.synchronize()
    weights = [m.weight.detach().cpu().numpy().T.copy() for m in _linears(model)]
    biases = [m.bias.detach().cpu().numpy().copy() for m in _linears(model)]
    return weights, biases, [float(v) for v in losses], name


def predictor(
    model_path: Path, x: npt.NDArray[np.float32], samples: int, batch: int
) -> tuple[npt.NDArray[np.intp], str]:
    torch = _torch()
    dev, name = device_name()
    ref = stages.load_model(model_path)
    model = _model(torch, dev)
    with torch.no_grad():
        for linear, w, b in zip(_linears(model), ref.weights, ref.biases, strict=True):
            linear.weight.copy_(torch.from_numpy(np.ascontiguousarray(w.T)))
            linear.bias.copy_(torch.from_numpy(b))
        xs = torch.from_numpy(np.concatenate([x, x[:batch]])).to(dev)
        out = torch.empty(samples, dtype=torch.int64, device=dev)
        n = len(x)
        for start in range(0, samples, batch):
            k = min(batch, samples - start)
            offset = start % n
            out[start : start + k] = model(xs[offset : offset + k]).argmax(dim=1)
        if dev.type == "cuda":
            torch.cuda.synchronize()
    return out.cpu().numpy().astype(np.intp), name
