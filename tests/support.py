"""Helpers for tests (importable; conftest.py holds only fixtures)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from energysched_lab.cluster.build import bin_dir
from energysched_lab.scheduler_process import SchedulerProcess as SchedulerProcess
from energysched_lab.waiting import wait_for as wait_for  # re-exported for the tests

ROOT = Path(__file__).resolve().parents[1]


class Kubectl:
    """The kubectl built with the control plane, bound to the local cluster."""

    def __init__(self, kubeconfig: Path) -> None:
        self.binary = bin_dir() / "kubectl"
        self.kubeconfig = kubeconfig

    def __call__(self, *args: str, input: str | None = None, check: bool = True) -> str:
        proc = subprocess.run(
            [str(self.binary), f"--kubeconfig={self.kubeconfig}", *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {proc.stderr}")
        return proc.stdout + (proc.stderr if not check else "")


def pod_manifest(name: str, **spec: Any) -> dict[str, Any]:
    """A minimal pod; ``spec`` keys override or extend the spec."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, **spec.pop("metadata", {})},
        "spec": {
            "containers": [
                {
                    "name": "main",
                    "image": "registry.example/energysched/noop:1",
                    "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}},
                }
            ],
            "restartPolicy": "Never",
            **spec,
        },
    }
