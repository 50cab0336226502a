"""The workflow's stages and Jobs (pure; the stage code runs for real with tiny amounts)."""

from __future__ import annotations

import pytest

from energysched import contract
from energysched_mlworkflow.pipeline import PIPELINE, stage_job
from energysched_mlworkflow.stages import STAGES, run

pytestmark = pytest.mark.unit


def test_pipeline_order_and_workload_types() -> None:
    assert [s.name for s in PIPELINE] == ["preprocessing", "training", "inference"]
    assert {s.workload_type for s in PIPELINE} == set(contract.WORKLOAD_TYPES)


@pytest.mark.parametrize(
    ("stage", "work"), [("preprocessing", 0.2), ("training", 3), ("inference", 600)]
)
def test_stages_run_their_kernel(stage: str, work: float) -> None:
    assert stage in STAGES
    assert run(stage, work) > 0


def test_stage_job_carries_scheduler_type_and_weight_only_for_energysched() -> None:
    stage = PIPELINE[1]
    job = stage_job(stage, run_id="r1", scheduler_name=contract.SCHEDULER_NAME, weight=0.25)
    tmpl = job["spec"]["template"]
    assert tmpl["spec"]["schedulerName"] == contract.SCHEDULER_NAME
    assert tmpl["metadata"]["labels"][contract.WORKLOAD_TYPE_LABEL] == "training"
    assert tmpl["metadata"]["annotations"] == {contract.PERFORMANCE_WEIGHT_ANNOTATION: "0.25"}
    default = stage_job(stage, run_id="r1", scheduler_name="default-scheduler", weight=None)
    assert default["spec"]["template"]["metadata"]["annotations"] == {}
