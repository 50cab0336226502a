"""The stages of the workflow and the Job manifests that run them (used by the experiment)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from energysched import contract
from energysched_mlworkflow.stages import STAGE_INFO

#: The workflow image as ``make images`` builds and saves it (``ctr -n k8s.io images
#: import`` on a node, or pushed with ``make images REGISTRY=... PUSH=1``).
IMAGE = "energysched-mlworkflow:dev"
#: Where the stages exchange data inside the container (a ReadWriteMany volume).
DATA_PATH = "/data"
UID = 10001  # the image's user


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


def _stage(name: str) -> Stage:
    info = STAGE_INFO[name]
    if info.workload_type not in contract.WORKLOAD_TYPES:
        raise ValueError(f"stage {name}: unknown workload type {info.workload_type!r}")
    return Stage(name, info.workload_type, work=info.default_work, unit=info.unit)


#: The thesis workflow: preprocessing -> training -> inference, at full size. 256Mi
#: each: the ~234k augmented images stay bytes (60 MB); batches become float32 one by one.
PIPELINE: tuple[Stage, ...] = tuple(_stage(name) for name in STAGE_INFO)


def stage_job(
    stage: Stage,
    *,
    run_id: str,
    scheduler_name: str,
    weight: float | None,
    image: str = IMAGE,
    data_claim: str | None = None,
    work: float | None = None,
) -> dict[str, Any]:
    """A Job running one stage, placed by ``scheduler_name``.

    ``data_claim``: a ReadWriteMany PersistentVolumeClaim (e.g. on NFS, as in the
    original cluster) that the three stages share; without it each pod gets an
    emptyDir, which suits a single stage (or a KWOK cluster, where nothing runs).
    """
    annotations = {}
    if weight is not None:
        annotations[contract.PERFORMANCE_WEIGHT_ANNOTATION] = f"{weight:g}"
    labels = {
        contract.WORKLOAD_TYPE_LABEL: stage.workload_type,
        "energysched.lab.experiment/run": run_id,
        "energysched.lab.experiment/stage": stage.name,
    }
    data_volume: dict[str, Any] = (
        {"name": "data", "persistentVolumeClaim": {"claimName": data_claim}}
        if data_claim
        else {"name": "data", "emptyDir": {}}
    )
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
                    "securityContext": {"runAsNonRoot": True, "runAsUser": UID, "fsGroup": UID},
                    "containers": [
                        {
                            "name": stage.name,
                            "image": image,
                            "imagePullPolicy": "IfNotPresent",
                            "args": [
                                stage.name,
                                "--work",
                                f"{stage.work if work is None else work:g}",
                                "--data",
                                DATA_PATH,
                            ],
                            "resources": {"requests": {"cpu": stage.cpu, "memory": stage.memory}},
                            "securityContext": {
                                "readOnlyRootFilesystem": True,
                                "allowPrivilegeEscalation": False,
                                "capabilities": {"drop": ["ALL"]},
                            },
                            "volumeMounts": [
                                {"name": "data", "mountPath": DATA_PATH},
                                {"name": "tmp", "mountPath": "/tmp"},
                            ],
                        }
                    ],
                    "volumes": [data_volume, {"name": "tmp", "emptyDir": {}}],
                },
            },
        },
    }
