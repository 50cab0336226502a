"""The kube-scheduler baselines: the real binary, configured by a KubeSchedulerConfiguration.

- ``default``: the local cluster's own kube-scheduler (``default-scheduler``, the
  default plugins: NodeResourcesFit scores LeastAllocated, spreading pods);
- ``most-allocated``: NodeResourcesFit with the ``MostAllocated`` scoring strategy
  (bin packing; the baseline Joulie's placement result is measured against);
- ``rtc``: NodeResourcesFit with ``RequestedToCapacityRatio``, the shape of
  upstream's documented bin-packing example (utilization 0 -> score 0, 100 -> 10).

Both packing profiles weigh resources as upstream's example does (cpu 1, memory 1,
the extended resources 3), with the trace's GPU share as the extended resource.
They run as two profiles (two schedulerNames) of one extra kube-scheduler process,
started beside the cluster's default one for the batch and stopped by its PID.
"""

from __future__ import annotations

import ssl
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from energysched_lab.cluster.processes import ManagedProcess, free_port, start
from energysched_lab.experiment.tracelist import GPU_MILLI

DEFAULT = "default"
MOST_ALLOCATED = "most-allocated"
RTC = "rtc"
BASELINES = (DEFAULT, MOST_ALLOCATED, RTC)
#: schedulerName per baseline (the default one is the cluster's own kube-scheduler).
SCHEDULER_NAMES = {
    DEFAULT: "default-scheduler",
    MOST_ALLOCATED: "baseline-most-allocated",
    RTC: "baseline-requested-to-capacity-ratio",
}
LABELS = {
    DEFAULT: "kube-scheduler default (LeastAllocated)",
    MOST_ALLOCATED: "kube-scheduler MostAllocated",
    RTC: "kube-scheduler RequestedToCapacityRatio",
}
#: Upstream's example weights: cpu 1, memory 1, extended resources 3.
RESOURCES = (
    {"name": "cpu", "weight": 1},
    {"name": "memory", "weight": 1},
    {"name": GPU_MILLI, "weight": 3},
    {"name": "nvidia.com/gpu", "weight": 3},
)


def label(variant: str) -> str:
    return LABELS.get(variant or DEFAULT, f"kube-scheduler {variant}")


def scheduler_config(kubeconfig: Path, qps: float = 50, burst: int = 100) -> dict[str, Any]:
    """The packing baselines' KubeSchedulerConfiguration (two profiles)."""

    def fit(strategy: dict[str, Any]) -> list[dict[str, Any]]:
        return [{"name": "NodeResourcesFit", "args": {"scoringStrategy": strategy}}]

    return {
        "apiVersion": "kubescheduler.config.k8s.io/v1",
        "kind": "KubeSchedulerConfiguration",
        # The same client limits energysched and the default kube-scheduler get.
        "clientConnection": {"kubeconfig": str(kubeconfig), "qps": qps, "burst": burst},
        "leaderElection": {"leaderElect": False},
        "profiles": [
            {
                "schedulerName": SCHEDULER_NAMES[MOST_ALLOCATED],
                "pluginConfig": fit({"type": "MostAllocated", "resources": list(RESOURCES)}),
            },
            {
                "schedulerName": SCHEDULER_NAMES[RTC],
                "pluginConfig": fit(
                    {
                        "type": "RequestedToCapacityRatio",
                        "resources": list(RESOURCES),
                        "requestedToCapacityRatio": {
                            "shape": [
                                {"utilization": 0, "score": 0},
                                {"utilization": 100, "score": 10},
                            ]
                        },
                    }
                ),
            },
        ],
    }


class BaselineScheduler:
    """The packing profiles' kube-scheduler for one batch; stopped by its own PID."""

    def __init__(self, binary: Path, cluster_dir: Path, log_dir: Path) -> None:
        self.binary = binary
        self.cluster_dir = cluster_dir
        self.log_dir = log_dir
        self.proc: ManagedProcess | None = None
        self.port = 0

    def start(self, timeout: float = 90.0) -> None:
        kubeconfig = self.cluster_dir / "scheduler.kubeconfig"
        conf = self.log_dir / "kube-scheduler-baselines.yaml"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        conf.write_text(yaml.safe_dump(scheduler_config(kubeconfig)))
        self.port = free_port()
        self.proc = start(
            "kube-scheduler-baselines",
            self.binary,
            [
                f"--config={conf}",
                f"--authentication-kubeconfig={kubeconfig}",
                f"--authorization-kubeconfig={kubeconfig}",
                "--bind-address=127.0.0.1",
                f"--secure-port={self.port}",
                "--v=1",
            ],
            self.log_dir,
        )
        insecure = ssl.create_default_context()
        insecure.check_hostname = False
        insecure.verify_mode = ssl.CERT_NONE  # its self-signed serving cert, loopback only
        deadline = time.monotonic() + timeout
        url = f"https://127.0.0.1:{self.port}/healthz"
        while True:
            if not self.proc.alive():
                raise RuntimeError(
                    f"the baselines' kube-scheduler exited; see {self.proc.log} (config {conf})"
                )
            try:
                with urllib.request.urlopen(url, context=insecure, timeout=2) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the baselines' kube-scheduler not healthy in {timeout:g} s")
            time.sleep(0.3)

    def stop(self) -> None:
        if self.proc is not None and self.proc.alive():
            self.proc.stop()
        self.proc = None
