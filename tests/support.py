"""Helpers for tests (importable; conftest.py holds only fixtures)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from energysched_lab.cluster.build import bin_dir
from energysched_lab.scheduler_process import SchedulerProcess as SchedulerProcess
from tests.eventually import eventually as eventually  # re-exported for the tests
from tests.eventually import eventually_sync as eventually_sync
from tests.eventually import wait_for as wait_for

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


class Metrics(dict[tuple[str, tuple[tuple[str, str], ...]], float]):
    """One scrape of a Prometheus endpoint: (sample name, sorted labels) -> value."""

    def get_sample(self, name: str, **labels: str) -> float:
        """The sample's value; 0.0 when it was never set (a counter nobody incremented)."""
        return self.get((name, tuple(sorted(labels.items()))), 0.0)


async def scrape(port: int, host: str = "127.0.0.1") -> Metrics:
    """GET /metrics of a component serving on loopback (e.g. a scheduler's metricsAddress)."""
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"http://{host}:{port}/metrics", timeout=aiohttp.ClientTimeout(10)) as resp,
    ):
        resp.raise_for_status()
        text = await resp.text()
    metrics = Metrics()
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            metrics[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return metrics
