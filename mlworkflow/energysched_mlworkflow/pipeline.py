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


def data_volume(*, claim: str | None = None, host_path: str | None = None) -> dict[str, Any]:
    """The volume the stages share at ``/data``.

    ``claim``: a ReadWriteMany PersistentVolumeClaim (e.g. on NFS, as in the original
    cluster); ``host_path``: a directory on a single node (a local test cluster);
    neither: an emptyDir, which suits a single stage (or a KWOK cluster, where
    nothing runs).
    """
    if claim and host_path:
        raise ValueError("give a claim or a host path for the workflow data, not both")
    if claim:
        return {"name": "data", "persistentVolumeClaim": {"claimName": claim}}
    if host_path:
        return {"name": "data", "hostPath": {"path": host_path, "type": "Directory"}}
    return {"name": "data", "emptyDir": {}}


def make_runnable(
    pod_spec: dict[str, Any],
    stage: str,
    work: float,
    *,
    image: str = IMAGE,
    data: dict[str, Any] | None = None,
    data_dir: str = DATA_PATH,
    pull_policy: str = "IfNotPresent",
) -> dict[str, Any]:
    """``pod_spec`` (placement, requests) made to run ``stage`` on ``work`` from the image.

    Non-root with a read-only root file system; ``data_dir`` (under ``/data``) is
    where this workflow's stages exchange their files: one directory per workflow
    instance when several share a volume (the stage creates it).
    """
    if not (data_dir == DATA_PATH or data_dir.startswith(f"{DATA_PATH}/")):
        raise ValueError(f"data_dir must be under {DATA_PATH}, got {data_dir!r}")
    container = pod_spec["containers"][0]
    container.update(
        {
            "image": image,
            "imagePullPolicy": pull_policy,
            "args": [stage, "--work", f"{work:g}", "--data", data_dir],
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
    )
    pod_spec["securityContext"] = {"runAsNonRoot": True, "runAsUser": UID, "fsGroup": UID}
    pod_spec["volumes"] = [data or data_volume(), {"name": "tmp", "emptyDir": {}}]
    return pod_spec


def stage_job(
    stage: Stage,
    *,
    run_id: str,
    scheduler_name: str,
    weight: float | None,
    image: str = IMAGE,
    data_claim: str | None = None,
    data_host_path: str | None = None,
    work: float | None = None,
    pull_policy: str = "IfNotPresent",
) -> dict[str, Any]:
    """A Job running one stage, placed by ``scheduler_name`` (see :func:`data_volume`)."""
    annotations = {}
    if weight is not None:
        annotations[contract.PERFORMANCE_WEIGHT_ANNOTATION] = f"{weight:g}"
    labels = {
        contract.WORKLOAD_TYPE_LABEL: stage.workload_type,
        "energysched.lab.experiment/run": run_id,
        "energysched.lab.experiment/stage": stage.name,
    }
    pod_spec: dict[str, Any] = {
        "schedulerName": scheduler_name,
        "restartPolicy": "Never",
        "containers": [
            {
                "name": stage.name,
                "resources": {"requests": {"cpu": stage.cpu, "memory": stage.memory}},
            }
        ],
    }
    make_runnable(
        pod_spec,
        stage.name,
        stage.work if work is None else work,
        image=image,
        data=data_volume(claim=data_claim, host_path=data_host_path),
        pull_policy=pull_policy,
    )
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": f"{run_id}-{stage.name}", "labels": labels},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "metadata": {"labels": labels, "annotations": annotations},
                "spec": pod_spec,
            },
        },
    }
