"""The real-cluster mode's pure parts: the stage Jobs it submits and what it reads back."""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import pytest

from energysched import contract
from energysched_lab.experiment.jobs import instantiate
from energysched_lab.experiment.realcluster import (
    Workload,
    check_runnable,
    stage_manifest,
    stage_report,
    workload_from,
)
from energysched_lab.experiment.results import append_csv
from energysched_lab.experiment.scenario import DEFAULT_SCENARIO, load_scenario
from energysched_mlworkflow.pipeline import data_volume
from energysched_mlworkflow.stages import Result

SCENARIOS = Path(__file__).resolve().parents[3] / "kb" / "scenarios"


def test_a_stage_job_runs_the_workflow_image_on_its_share_of_the_data() -> None:
    jobs = instantiate(load_scenario(SCENARIOS / "concurrent"), 1)
    training = next(j for j in jobs if j.stage == "training" and j.workflow == 3)
    workload = Workload(
        image="reg/wf:1",
        pull_policy="Never",
        data=data_volume(host_path="/srv/wf"),
        node_selector={"node.energysched.local/real": "true"},
        pod_annotations={"x": "y"},
        work_scale=0.01,
    )
    job = stage_manifest(
        training,
        run_id="r1",
        scheduler_name=contract.SCHEDULER_NAME,
        weight=0.5,
        workload=workload,
    )
    tmpl = job["spec"]["template"]
    spec = tmpl["spec"]
    (container,) = spec["containers"]
    assert container["image"] == "reg/wf:1" and container["imagePullPolicy"] == "Never"
    assert container["args"] == [
        "training",
        "--work",
        f"{training.work * 0.01:g}",
        "--data",
        "/data/r1/wf3",  # the stages of workflow 3 in run r1 share this directory
    ]
    annotations = tmpl["metadata"]["annotations"]
    assert float(annotations[contract.WORK_ANNOTATION]) == pytest.approx(
        training.work * 0.01, rel=1e-5
    )
    assert annotations["x"] == "y"
    assert annotations[contract.PERFORMANCE_WEIGHT_ANNOTATION] == "0.5"
    assert spec["nodeSelector"] == {"node.energysched.local/real": "true"}
    assert spec["schedulerName"] == contract.SCHEDULER_NAME
    assert spec["volumes"][0] == {
        "name": "data",
        "hostPath": {"path": "/srv/wf", "type": "Directory"},
    }
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["resources"]["requests"] == {"cpu": training.cpu, "memory": training.memory}


def test_only_workflows_of_the_images_stages_run_on_a_real_cluster() -> None:
    check_runnable(load_scenario(DEFAULT_SCENARIO))
    with pytest.raises(ValueError, match="jobs"):
        check_runnable(load_scenario(SCENARIOS / "trace-sample"))


def _log(*results: Result) -> str:
    return "\n".join(["loading...", *(r.line() for r in results), "done"])


def test_the_stages_own_report_is_read_from_its_result_line() -> None:
    inference = Result("inference", "inference", 1000, "samples", 2.5, 0.91)
    report = stage_report(_log(inference))
    assert (report.accuracy, report.seconds, report.problem) == (pytest.approx(0.91), 2.5, "")
    preprocessing = Result("preprocessing", "sequential", 10, "Miter", 0.25, None)
    report = stage_report(_log(preprocessing))
    assert (report.accuracy, report.seconds, report.problem) == (None, 0.25, "")


@pytest.mark.parametrize(
    ("log", "problem"),
    [
        ("", "0 result lines"),
        ("energysched-mlworkflow-result {not json", "unreadable result line"),
        ('energysched-mlworkflow-result {"accuracy": 7, "seconds": 1}', "not a fraction"),
        ('energysched-mlworkflow-result {"accuracy": "0.9", "seconds": 1}', "not a fraction"),
        ('energysched-mlworkflow-result {"accuracy": true, "seconds": 1}', "not a fraction"),
        ('energysched-mlworkflow-result {"accuracy": NaN, "seconds": 1}', "not a fraction"),
        ('energysched-mlworkflow-result {"seconds": -1}', "not a duration"),
        ('energysched-mlworkflow-result {"seconds": Infinity}', "not a duration"),
        ('energysched-mlworkflow-result {"accuracy": 0.5}', "not a duration"),
    ],
)
def test_a_bad_log_is_a_reason_not_a_crash(log: str, problem: str) -> None:
    report = stage_report(log)
    assert report.accuracy is None and report.seconds is None and problem in report.problem


def _args(**over: object) -> argparse.Namespace:
    base: dict[str, object] = {
        "node_selector": [],
        "work_scale": 1.0,
        "image": None,
        "image_pull_policy": "IfNotPresent",
        "data_claim": None,
        "data_host_path": None,
    }
    return argparse.Namespace(**{**base, **over})


def test_workload_options_are_checked() -> None:
    w = workload_from(_args(node_selector=["a=b", "c="], data_claim="wf-data"))
    assert w.node_selector == {"a": "b", "c": ""}
    assert w.data == {"name": "data", "persistentVolumeClaim": {"claimName": "wf-data"}}
    with pytest.raises(ValueError, match="KEY=VALUE"):
        workload_from(_args(node_selector=["novalue"]))
    with pytest.raises(ValueError, match="work-scale"):
        workload_from(_args(work_scale=0.0))


def test_a_results_file_with_older_columns_is_kept_aside(tmp_path: Path) -> None:
    path = tmp_path / "thesis_results.csv"
    path.write_text("run_id,stage\nr0,training\n")
    columns = ("run_id", "stage", "accuracy")
    append_csv(path, columns, [{"run_id": "r1", "stage": "inference"}])
    assert (tmp_path / "thesis_results.old-1.csv").read_text() == "run_id,stage\nr0,training\n"
    with path.open() as fh:
        assert list(csv.DictReader(fh)) == [{"run_id": "r1", "stage": "inference", "accuracy": ""}]
    append_csv(path, columns, [{"run_id": "r2", "stage": "x"}])
    assert len(path.read_text().splitlines()) == 3  # same columns: appended
