"""The PyTorch backend on the CPU (no GPU here), against Debian's CPU-only PyTorch.

PyPI's torch wheels for Linux pull in the CUDA libraries (gigabytes); Debian's
``python3-torch`` (1.13.1, CPU only, ~150 MB of packages) does not, but it is
built for Debian's own ``/usr/bin/python3``, so the stages run there in a
subprocess (the ``debian_torch`` fixture, tests/conftest.py). ``.ci/run`` installs
it; without it this test fails with the install command rather than skipping.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from energysched_mlworkflow.stages import infer, parse_result

ROOT = Path(__file__).resolve().parents[3]


def _debian_python(python: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=f"{ROOT / 'mlworkflow'}:{ROOT / 'bench'}")
    env.pop("PYTHONHOME", None)
    return subprocess.run(
        [str(python), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=900
    )


def test_torch_backend_learns_on_cpu_and_its_model_serves_numpy(
    tmp_path: Path, debian_torch: Path
) -> None:
    data = tmp_path / "data"
    results = {}
    for stage, work in (("preprocessing", "0.2"), ("training", "60"), ("inference", "2000")):
        proc = _debian_python(
            debian_torch, "-m", "energysched_mlworkflow", stage, "--work", work,
            "--data", str(data), "--backend", "torch", cwd=tmp_path,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-2000:]
        (results[stage],) = parse_result(proc.stdout)
    assert results["training"]["backend"].startswith("torch-cpu:")
    assert results["inference"]["backend"].startswith("torch-cpu:")
    assert results["inference"]["work"] == 2000
    assert results["inference"]["accuracy"] >= 0.90
    metrics = json.loads((data / "training.json").read_text())
    assert metrics["loss_last50"] < metrics["loss_first"] / 3
    # The torch-trained model in the shared format: the numpy inference serves it.
    numpy_result = infer(data, 500)
    assert numpy_result.accuracy == pytest.approx(results["inference"]["accuracy"], abs=2 / 359)
