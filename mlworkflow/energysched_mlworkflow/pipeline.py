"""The stages of the workflow and the Job manifests that run them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from energysched import contract


@dataclass(frozen=True)
class Stage:
    name: str
    workload_type: contract.WorkloadType
    #: Work in the knowledge base's units for this workload type (see kb/profiles):
    #: sequential Miter, training steps, inference samples.
    work: float
    unit: str
    cpu: str = "500m"
    memory: str = "256Mi"


#: The thesis workflow; ``stages`` runs each as that many units of the
#: benchmark kernel of its workload type.
PIPELINE: tuple[Stage, ...] = (
    Stage("preprocessing", "sequential", work=60.0, unit="Miter"),
    Stage("training", "training", work=3000.0, unit="steps"),
    Stage("inference", "inference", work=2_000_000.0, unit="samples"),
)

IMAGE = "registry.local/energysched-mlworkflow:0.1.0"


def stage_job(
    stage: Stage, *, run_id: str, scheduler_name: str, weight: float | None
) -> dict[str, Any]:
    """A Job running one stage, placed by ``scheduler_name``."""
    annotations = {}
    if weight is not None:
        annotations[contract.PERFORMANCE_WEIGHT_ANNOTATION] = f"{weight:g}"
    labels = {
        contract.WORKLOAD_TYPE_LABEL: stage.workload_type,
        "energysched.lab.experiment/run": run_id,
        "energysched.lab.experiment/stage": stage.name,
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": f"{run_id}-{stage.name}", "labels": labels},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "metadata": {"labels": labels, "annotations": annotations},
                "spec": {
                    "schedulerName": scheduler_name,
                    "restartPolicy": "Never",
                    "containers": [
                        {
                            "name": stage.name,
                            "image": IMAGE,
                            "args": [stage.name],
                            "resources": {"requests": {"cpu": stage.cpu, "memory": stage.memory}},
                        }
                    ],
                },
            },
        },
    }
