"""The kernels run for real (tiny sizes) and their result converts to a valid profile."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from energysched.kb.io import load_profiles
from energysched.kb.profiles import ProfileSpec
from energysched.kb.validate import parse_profile
from energysched.kbtools.convert import ConversionError, convert_result
from energysched_bench import __main__ as cli
from energysched_bench import kernels
from energysched_bench.kernels import TINY, KernelConfig, NumpyMLP
from energysched_bench.power import SampledSource
from energysched_bench.result import extract_result
from energysched_bench.runner import RunOptions, run_all, spread, timed_rates

REPO = Path(__file__).resolve().parents[3]
FAST = RunOptions(
    config=TINY,
    repeats=3,
    seconds=0.02,
    warmup_seconds=0.0,
    gpu=False,
    idle_seconds=0.0,
    node="rpi",
)


def test_backward_pass_matches_finite_differences() -> None:
    config = KernelConfig(
        inputs=5, hidden=7, hidden_layers=2, classes=3, train_batch=4, dtype="float64"
    )
    model = NumpyMLP(config)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 5))
    y = np.array([0, 2, 1, 2], dtype=np.intp)
    _, grads_w, grads_b = model.loss_and_grads(x, y)
    eps = 1e-6
    for layer in range(len(model.weights)):
        for params, grads in ((model.weights, grads_w), (model.biases, grads_b)):
            p = params[layer]
            for index in [(0,) * p.ndim, tuple(s - 1 for s in p.shape)]:
                old = p[index]
                p[index] = old + eps
                up = model.loss_and_grads(x, y)[0]
                p[index] = old - eps
                down = model.loss_and_grads(x, y)[0]
                p[index] = old
                assert grads[layer][index] == pytest.approx((up - down) / (2 * eps), abs=1e-6)


def test_training_learns() -> None:
    config = KernelConfig(inputs=8, hidden=16, hidden_layers=1, classes=3, train_batch=32)
    model = NumpyMLP(config, lr=0.2)
    data = kernels._dataset(config, 32)
    first = np.mean([model.loss_and_grads(x, y)[0] for x, y in data])
    for _ in range(60):
        for x, y in data:
            model.train_step(x, y)
    last = np.mean([model.loss_and_grads(x, y)[0] for x, y in data])
    assert last < 0.7 * first


def test_sequential_is_a_recurrence() -> None:
    assert kernels.logistic_map(0.5, 1) == pytest.approx(3.9 * 0.25)
    step = kernels.sequential_step(TINY)
    assert step() == pytest.approx(TINY.seq_chunk / 1e6)


def test_timed_rates_with_a_fake_clock() -> None:
    now = [0.0]

    def clock() -> float:
        return now[0]

    def step() -> float:
        now[0] += 0.25
        return 2.0

    rates, units, seconds = timed_rates(
        step, repeats=3, seconds=1.0, warmup_seconds=0.5, clock=clock
    )
    assert rates == [8.0, 8.0, 8.0]
    assert (units, seconds) == (24.0, 3.0)
    stats = spread([1.0, 2.0, 3.0, 4.0, 100.0])
    assert stats["median"] == 3.0 and stats["min"] == 1.0 and stats["max"] == 100.0
    assert (stats["q1"], stats["q3"]) == (2.0, 4.0)


def test_run_all_tiny_and_convert() -> None:
    doc = run_all(FAST)
    json.dumps(doc, allow_nan=False)  # a valid JSON document
    assert doc["node"] == "rpi" and isinstance(doc["avx"], bool) and doc["cpu_count"] >= 1
    assert doc["standard_config"] is False and doc["power_source"] is None
    by_name = {k["name"]: k for k in doc["kernels"]}
    assert set(by_name) == {"training-cpu", "inference-cpu", "sequential-cpu"}
    for kernel in by_name.values():
        assert kernel["available"] and kernel["median"] > 0 and kernel["repeats"] == 3
        assert kernel["spread"]["min"] <= kernel["median"] <= kernel["spread"]["max"]
        assert kernel["watts"] is None and kernel["joules_per_unit"] is None
    assert by_name["training-cpu"]["unit"] == "steps/s"

    # No power measured and nothing to take it from: refused, never guessed.
    with pytest.raises(ConversionError, match="refusing to invent"):
        convert_result(doc, allow_nonstandard=True)
    # Non-standard sizes are refused by default.
    with pytest.raises(ConversionError, match="non-standard"):
        convert_result(doc)

    kb = load_profiles(REPO / "kb/profiles").knowledge_base()
    manifest = convert_result(doc, power_from=kb, allow_nonstandard=True)
    spec = parse_profile(manifest)
    assert isinstance(spec, ProfileSpec), spec
    assert spec.name == "rpi" and spec.idle_power_watts == kb.profiles["rpi"].idle_power_watts
    for wtype, figures in spec.workloads.items():
        assert figures.source == "estimated"
        assert figures.power_watts == kb.profiles["rpi"].workloads[wtype].power_watts
        assert figures.performance == by_name[f"{wtype}-cpu"]["median"]
        assert "powerWatts NOT measured" in figures.provenance
    assert "idlePowerWatts NOT measured" in spec.provenance


def test_measured_power_converts_to_measured() -> None:
    # A busy machine may delay the poller for many intervals; this test is about the
    # conversion of a measured figure, not about gaps (test_bench_power covers those).
    source = SampledSource("fake-plug", lambda: 12.0, interval=0.005, max_gap_intervals=1e6)
    options = RunOptions(
        config=TINY,
        repeats=2,
        seconds=0.05,
        warmup_seconds=0.0,
        gpu=False,
        idle_seconds=0.05,
        node="bench-box",
    )
    doc = run_all(options, source)
    assert doc["idle"]["watts"] == pytest.approx(12.0)
    for kernel in doc["kernels"]:
        assert kernel["power_source"] == "fake-plug" and kernel["watts"] == pytest.approx(12.0)
        assert kernel["joules_per_unit"] == pytest.approx(12.0 / kernel["median"])
    manifest = convert_result(doc, allow_nonstandard=True)
    spec = parse_profile(manifest)
    assert isinstance(spec, ProfileSpec), spec
    assert dict(spec.node_selector) == {"kubernetes.io/hostname": "bench-box"}
    assert all(f.source == "measured" for f in spec.workloads.values())
    assert "measured by fake-plug (wall)" in spec.workloads["training"].provenance


def test_package_power_needs_consent() -> None:
    doc: dict[str, Any] = run_all(FAST)
    doc["power_source"], doc["power_scope"] = "rapl", "cpu-package"
    with pytest.raises(ConversionError, match="not at the wall"):
        convert_result(doc, allow_nonstandard=True)


def test_gpu_absent_is_reported_not_raised() -> None:
    try:
        import torch  # type: ignore[import-not-found]  # noqa: F401
    except ImportError:
        pass
    else:  # pragma: no cover - only where PyTorch is installed
        pytest.skip("PyTorch is installed here")
    options = RunOptions(
        config=TINY,
        workloads=("training",),
        repeats=1,
        seconds=0.01,
        warmup_seconds=0.0,
        gpu=True,
        idle_seconds=0.0,
    )
    doc = run_all(options)
    gpu = next(k for k in doc["kernels"] if k["device"] == "gpu")
    assert gpu["available"] is False and "PyTorch" in gpu["reason"]
    assert doc["gpu"] is None


def test_cli_json_is_extractable(capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(
        [
            "--size",
            "tiny",
            "--repeats",
            "1",
            "--seconds",
            "0.01",
            "--warmup",
            "0",
            "--no-gpu",
            "--power",
            "none",
            "--json",
            "--workloads",
            "sequential",
        ]
    )
    assert code == 0
    out = capsys.readouterr()
    doc = extract_result(out.out)
    assert [k["name"] for k in doc["kernels"]] == ["sequential-cpu"]
    assert "sequential-cpu" in out.err  # the table goes to stderr with --json


def test_bench_core_does_not_import_energysched() -> None:
    """The bench image has numpy only: runner and CLI must not pull in energysched."""
    code = (
        "import sys, energysched_bench.__main__, energysched_bench.runner;"
        "bad = [m for m in sys.modules if m == 'energysched' or m.startswith('energysched.')];"
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


def test_cli_workloads_match_the_runner() -> None:
    from energysched_bench import runner

    assert cli.WORKLOADS == runner.WORKLOADS


def test_busy_machine_is_flagged() -> None:
    from energysched_bench.runner import busy_warning

    assert busy_warning({"loadavg_before": 3.5, "cpu_count": 2}) is not None
    assert busy_warning({"loadavg_before": 0.1, "cpu_count": 4}) is None
    assert busy_warning({}) is None
