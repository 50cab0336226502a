"""convert: which kernel feeds which workload, and the command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from energysched.kb.io import load_profiles
from energysched.kb.profiles import ProfileSpec
from energysched.kb.validate import parse_profile
from energysched.kbtools.convert import ConversionError, convert_result, main
from energysched_bench.kernels import STANDARD
from energysched_bench.result import SCHEMA, format_result

REPO = Path(__file__).resolve().parents[3]


def _kernel(workload: str, device: str, median: float, watts: float | None) -> dict[str, Any]:
    return {
        "name": f"{workload}-{device}",
        "workload": workload,
        "device": device,
        "unit": {"training": "steps/s", "inference": "samples/s", "sequential": "Miter/s"}[
            workload
        ],
        "config": "standard",
        "available": True,
        "reason": None,
        "median": median,
        "spread": {
            "q1": median * 0.9,
            "q3": median * 1.1,
            "min": median * 0.8,
            "max": median * 1.2,
        },
        "repeats": 5,
        "power_source": "shelly" if watts else None,
        "power_scope": "wall" if watts else None,
        "watts": watts,
        "joules_per_unit": watts / median if watts else None,
        "power_coverage": 1.0,
    }


def _doc(node: str = "tvpc", watts: bool = True) -> dict[str, Any]:
    w = (lambda x: x) if watts else (lambda x: None)
    return {
        "schema": SCHEMA,
        "node": node,
        "arch": "x86_64",
        "cpu_model": "i5-2500K",
        "avx": True,
        "gpu": "GeForce GTX 1060 6GB",
        "python": "3.11",
        "numpy": "2.4",
        "started_at": "2026-11-23T16:00:00Z",
        "config": STANDARD.as_dict(),
        "standard_config": True,
        "power_source": "shelly" if watts else None,
        "power_scope": "wall" if watts else None,
        "idle": {"watts": 38.0, "seconds": 3.0, "coverage": 1.0} if watts else None,
        "kernels": [
            _kernel("training", "cpu", 240, w(110)),
            _kernel("training", "gpu", 1100, w(130)),
            _kernel("inference", "cpu", 85000, w(112)),
            {
                "name": "inference-gpu",
                "workload": "inference",
                "device": "gpu",
                "available": False,
                "reason": "CUDA out of memory",
            },
            _kernel("sequential", "cpu", 11.5, w(63)),
        ],
    }


def test_gpu_for_selects_the_kernel() -> None:
    spec = parse_profile(convert_result(_doc()))
    assert isinstance(spec, ProfileSpec)
    assert spec.workloads["training"].performance == 1100  # GPU for training by default
    assert spec.workloads["inference"].performance == 85000  # GPU not available
    assert spec.idle_power_watts == 38.0
    assert all(f.source == "measured" for f in spec.workloads.values())
    assert "training-gpu" in spec.workloads["training"].provenance
    cpu_only = parse_profile(convert_result(_doc(), gpu_for=()))
    assert isinstance(cpu_only, ProfileSpec)
    assert cpu_only.workloads["training"].performance == 240


def test_power_from_profile_lacking_a_workload_is_refused() -> None:
    kb = load_profiles(REPO / "kb/profiles").knowledge_base()
    partial = kb.with_profile(
        ProfileSpec(
            name="tvpc",
            node_selector={"kubernetes.io/hostname": "tvpc"},
            idle_power_watts=40,
            workloads={"training": kb.profiles["tvpc"].workloads["training"]},
        )
    )
    with pytest.raises(ConversionError, match="has no figures for inference, sequential"):
        convert_result(_doc(watts=False), power_from=partial)
    spec = parse_profile(convert_result(_doc(watts=False), power_from=kb))
    assert isinstance(spec, ProfileSpec)
    assert {f.source for f in spec.workloads.values()} == {"estimated"}
    assert "taken from profile tvpc (estimated: Estimated" in spec.workloads["training"].provenance


def test_measured_power_below_idle_fails_validation() -> None:
    doc = _doc()
    doc["idle"]["watts"] = 70.0  # above the sequential kernel's 63 W
    with pytest.raises(
        ConversionError,
        match=r"sequential\.powerWatts: must not be below spec\.idlePowerWatts 70 .*, got 63",
    ):
        convert_result(doc)


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = tmp_path / "tvpc.json"
    result.write_text(json.dumps(_doc()))
    log = tmp_path / "wyse.log"
    log.write_text("pulling...\n" + format_result(_doc("wyse", watts=False)) + "done\n")
    out = tmp_path / "profiles.yaml"
    assert (
        main([str(result), str(log), "--power-from", str(REPO / "kb/profiles"), "-o", str(out)])
        == 0
    )
    docs = list(yaml.safe_load_all(out.read_text()))
    specs = [parse_profile(d) for d in docs]
    assert [s.name for s in specs if isinstance(s, ProfileSpec)] == ["tvpc", "wyse"]

    assert main([str(log)]) == 1
    assert "refused: node wyse: power was not measured" in capsys.readouterr().err
    empty = tmp_path / "empty.log"
    empty.write_text("nothing here\n")
    assert main([str(empty)]) == 1
    assert "no energysched-bench result" in capsys.readouterr().err
