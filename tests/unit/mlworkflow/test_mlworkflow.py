"""The workflow's stages learn for real (small amounts) and their Jobs are well formed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from energysched import contract
from energysched_bench.kernels import UNITS, logistic_map
from energysched_mlworkflow import dataset
from energysched_mlworkflow.__main__ import main
from energysched_mlworkflow.pipeline import PIPELINE, Stage, stage_job
from energysched_mlworkflow.stages import (
    STAGE_INFO,
    StageInputError,
    infer,
    parse_result,
    preprocess,
    run_stage,
    train,
)

#: The accuracy the README states for `python -m energysched_mlworkflow --scale 0.02`.
STATED_ACCURACY = 0.90


def test_pipeline_order_workload_types_and_units_match_the_kb() -> None:
    assert [s.name for s in PIPELINE] == ["preprocessing", "training", "inference"]
    assert {s.workload_type for s in PIPELINE} == set(contract.WORKLOAD_TYPES)
    for s in PIPELINE:
        assert isinstance(s, Stage)
        assert UNITS[s.workload_type] == f"{s.unit}/s"  # the profiles' unit
        assert s.work == STAGE_INFO[s.name].default_work


def test_end_to_end_reaches_the_stated_accuracy(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--scale", "0.02"]) == 0
    results = {r["stage"]: r for r in parse_result(capsys.readouterr().out)}
    assert list(results) == ["preprocessing", "training", "inference"]
    pre, tr, inf = results["preprocessing"], results["training"], results["inference"]
    assert pre["workload_type"] == "sequential" and pre["unit"] == "Miter"
    assert pre["work"] == pytest.approx(1.2, rel=0.01)  # 2 % of 60 Miter
    assert pre["extra"]["kept"] == 1797 and pre["extra"]["test"] == 359
    assert tr["work"] == 60 and tr["unit"] == "steps"
    assert tr["extra"]["loss_last50"] < tr["extra"]["loss_first"] / 3
    assert inf["work"] == 40_000 and inf["unit"] == "samples" and inf["rate"] > 0
    assert inf["accuracy"] >= STATED_ACCURACY


def test_stages_hand_over_through_the_directory(tmp_path: Path) -> None:
    with pytest.raises(StageInputError, match="preprocessing"):
        train(tmp_path, 1)
    pre = preprocess(tmp_path, 0.05)
    assert pre.work == pytest.approx(196 * 256 / 1e6)  # whole images of 256 draws
    stored = np.load(tmp_path / "dataset.npz")
    assert stored["train_x"].dtype == np.uint8 and stored["train_x"].shape[1:] == (16, 16)
    assert len(stored["train_x"]) == int(stored["n_original"]) + 196
    with pytest.raises(StageInputError, match="training"):
        infer(tmp_path, 1)
    train(tmp_path, 5)
    assert json.loads((tmp_path / "training.json").read_text())["steps"] == 5
    result = infer(tmp_path, 10)  # at least the test set once
    assert result.work == 359 and result.accuracy is not None


def test_inference_counts_every_sample_of_a_large_batch(tmp_path: Path) -> None:
    preprocess(tmp_path, 0.01)
    train(tmp_path, 20)
    result = run_stage("inference", tmp_path, 1000.5)
    doc = json.loads((tmp_path / "inference.json").read_text())
    assert result.work == 1001 and doc["samples"] == 1001
    # The test set repeated: the same predictions each time round.
    assert doc["accuracy_all_predictions"] == pytest.approx(doc["accuracy"], abs=0.02)


def test_cleaning_drops_bad_rows_with_reasons() -> None:
    good = ",".join(["0"] * 64 + ["3"])
    rows = dataset.read_rows(
        "\n".join(
            [
                good,
                good,  # duplicate
                ",".join(["0"] * 63 + ["3"]),  # short
                ",".join(["x"] * 64 + ["3"]),
                ",".join(["17"] + ["0"] * 63 + ["3"]),
                ",".join(["0"] * 64 + ["10"]),
            ]
        )
    )
    raw, labels, report = dataset.clean(rows)
    assert raw.shape == (1, 8, 8) and labels.tolist() == [3]
    assert report.dropped == {
        "duplicate": 1,
        "wrong field count": 1,
        "not an integer": 1,
        "pixel out of 0..16": 1,
        "label out of 0..9": 1,
    }


def test_augmentation_is_deterministic_and_sequential_work_is_counted() -> None:
    images = dataset.normalise(dataset.clean(dataset.read_rows())[0][:10])
    a, src_a, x_a = dataset.augment(images, 25, chunk=7)
    b, _, x_b = dataset.augment(images, 25, chunk=25)
    assert np.array_equal(a, b) and x_a == x_b  # chunking does not change the stream
    assert src_a.tolist() == [i % 10 for i in range(25)]
    assert not np.array_equal(a[0], a[10])  # same source, other draws
    # The draws are the benchmark's sequential kernel, iteration by iteration.
    draws, last = dataset.logistic_draws(0.1234, 3)
    assert draws[0] == 3.9 * 0.1234 * (1 - 0.1234)
    assert draws[1] == 3.9 * draws[0] * (1 - draws[0])
    assert last == draws[2] == logistic_map(0.1234, 3)


def test_cli_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        main(["all", "--work", "3"])
    with pytest.raises(SystemExit):
        main(["training"])  # no --data
    assert main(["training", "--data", str(tmp_path), "--work", "2"]) == 1  # no dataset yet


def test_stage_job_carries_scheduler_type_weight_image_and_data() -> None:
    stage = PIPELINE[1]
    job = stage_job(
        stage,
        run_id="r1",
        scheduler_name=contract.SCHEDULER_NAME,
        weight=0.25,
        data_claim="workflow-data",
    )
    tmpl = job["spec"]["template"]
    assert tmpl["spec"]["schedulerName"] == contract.SCHEDULER_NAME
    assert tmpl["metadata"]["labels"][contract.WORKLOAD_TYPE_LABEL] == "training"
    assert tmpl["metadata"]["annotations"] == {contract.PERFORMANCE_WEIGHT_ANNOTATION: "0.25"}
    container = tmpl["spec"]["containers"][0]
    assert container["image"] == "energysched-mlworkflow:dev"
    assert container["args"] == ["training", "--work", "3000", "--data", "/data"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert tmpl["spec"]["securityContext"]["runAsNonRoot"] is True
    assert tmpl["spec"]["volumes"][0]["persistentVolumeClaim"] == {"claimName": "workflow-data"}
    default = stage_job(stage, run_id="r1", scheduler_name="default-scheduler", weight=None)
    assert default["spec"]["template"]["metadata"]["annotations"] == {}
    assert default["spec"]["template"]["spec"]["volumes"][0] == {"name": "data", "emptyDir": {}}
