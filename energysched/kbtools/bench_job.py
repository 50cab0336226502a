"""The benchmark Job for one node (a pure manifest builder for ``energysched bench run``).

One Job per node, pinned by ``kubernetes.io/hostname``; its pod prints the
result document between marker lines (``python -m energysched_bench --json``)
and the CLI collects it from the pod log with :func:`energysched_bench.result.extract_result`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from energysched.contract import GROUP

HOSTNAME_LABEL = "kubernetes.io/hostname"
APP_NAME = "energysched-bench"
#: Label on the Job and its pod naming the node benchmarked.
BENCH_NODE_LABEL = f"{GROUP}/bench-node"
#: Label grouping the Jobs of one ``bench run`` (to list and clean them up).
BENCH_RUN_LABEL = f"{GROUP}/bench-run"
COMMAND = ("python", "-m", "energysched_bench", "--json")
#: Where the plug's password is mounted (a Secret volume): the bench reads it from the
#: file, so it is in neither the Job's spec nor the process list.
PASSWORD_DIR = "/var/run/secrets/energysched/plug"
PASSWORD_FILE = f"{PASSWORD_DIR}/password"
#: The pod's fsGroup when the password is mounted: the group of the project's images' user.
SECRET_GROUP = 10001


def _dns_label(text: str, max_len: int = 63) -> str:
    label = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")
    return label[:max_len].rstrip("-") or "node"


def job_name(node: str, run_id: str) -> str:
    """``energysched-bench-<node>-<run>``, a valid object name (at most 63 characters)."""
    suffix = f"-{_dns_label(run_id, 16)}"
    prefix = f"{APP_NAME}-"
    return prefix + _dns_label(node, 63 - len(prefix) - len(suffix)) + suffix


def build_bench_job(
    node: str,
    image: str,
    *,
    run_id: str,
    namespace: str = "energysched",
    args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    gpu: bool = False,
    runtime_class: str | None = None,
    tolerate_all_taints: bool = True,
    cpu_request: str = "100m",
    memory_limit: str = "512Mi",
    active_deadline_seconds: int = 1800,
    ttl_seconds_after_finished: int | None = 3600,
    service_account: str | None = None,
    password_secret: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """A batch/v1 Job that runs the benchmark on ``node`` and nowhere else.

    ``args`` are extra bench arguments (``--power shelly --shelly-url ...``).
    ``password_secret`` (Secret name, key in it): the plug's password, mounted
    read-only at :data:`PASSWORD_FILE` and passed as ``--shelly-password-file``.
    ``gpu`` requests one ``nvidia.com/gpu`` (and ``runtime_class``, e.g.
    ``nvidia`` on k3s). The default scheduler places the pod: nodeSelector
    pins it, tolerations let it onto a tainted control-plane node.
    """
    labels = {
        "app.kubernetes.io/name": APP_NAME,
        "app.kubernetes.io/component": "bench",
        "app.kubernetes.io/part-of": "energysched",
        BENCH_NODE_LABEL: _dns_label(node),
        BENCH_RUN_LABEL: _dns_label(run_id),
    }
    container: dict[str, Any] = {
        "name": "bench",
        "image": image,
        "command": [*COMMAND, *args],
        "env": [
            {"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
            {"name": "PYTHONUNBUFFERED", "value": "1"},
            *({"name": k, "value": v} for k, v in sorted((env or {}).items())),
        ],
        "resources": {
            "requests": {"cpu": cpu_request},
            "limits": {"memory": memory_limit},
        },
        "securityContext": {"allowPrivilegeEscalation": False},
    }
    if gpu:
        container["resources"]["limits"]["nvidia.com/gpu"] = 1
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "nodeSelector": {HOSTNAME_LABEL: node},
        "containers": [container],
    }
    if password_secret is not None:
        secret, key = password_secret
        container["command"].extend(["--shelly-password-file", PASSWORD_FILE])
        container["volumeMounts"] = [
            {"name": "plug-password", "mountPath": PASSWORD_DIR, "readOnly": True}
        ]
        pod_spec["volumes"] = [
            {
                "name": "plug-password",
                "secret": {
                    "secretName": secret,
                    "items": [{"key": key, "path": "password"}],
                    "defaultMode": 0o440,
                },
            }
        ]
        # The file is owner and group readable only; the image's user (any non-root uid)
        # reads it through the pod's fsGroup, which the kubelet gives the file and adds to
        # the container's groups (as the monitor's DaemonSet does).
        pod_spec["securityContext"] = {"fsGroup": SECRET_GROUP}
    if tolerate_all_taints:
        pod_spec["tolerations"] = [{"operator": "Exists"}]
    if runtime_class:
        pod_spec["runtimeClassName"] = runtime_class
    if service_account:
        pod_spec["serviceAccountName"] = service_account
    spec: dict[str, Any] = {
        "backoffLimit": 0,
        "activeDeadlineSeconds": active_deadline_seconds,
        "template": {"metadata": {"labels": dict(labels)}, "spec": pod_spec},
    }
    if ttl_seconds_after_finished is not None:
        spec["ttlSecondsAfterFinished"] = ttl_seconds_after_finished
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": job_name(node, run_id), "namespace": namespace, "labels": labels},
        "spec": spec,
    }
