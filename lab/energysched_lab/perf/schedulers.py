"""The schedulers under test, and the monitor's model mode, as processes the harness
starts and stops."""

from __future__ import annotations

import contextlib
import re
import time
from pathlib import Path
from typing import Any

import yaml

from energysched import contract
from energysched_lab.cluster.processes import free_port
from energysched_lab.perf.watch import fetch
from energysched_lab.scheduler_process import ChildProcess, SchedulerProcess


class EnergyschedProcess(SchedulerProcess):
    """energysched with a metrics port, optionally under cProfile."""

    def __init__(
        self,
        kubeconfig: Path,
        workdir: Path,
        qps: float,
        burst: int,
        log_level: str,
        profile: Path | None,
        leader_election: bool = True,
        tag: str = "perf",
        mode: str = "normalized",
        staleness_seconds: float = 300.0,
    ) -> None:
        self.port = free_port()
        self.metrics_url = f"http://127.0.0.1:{self.port}/metrics"
        self.profile = profile
        self.leader_election = leader_election
        profile_cfg: dict[str, Any] = {"schedulerName": contract.SCHEDULER_NAME, "mode": mode}
        if mode == "hybrid":
            # Readings older than this are ignored; the monitor's heartbeat is well inside it.
            profile_cfg["hybrid"] = {"stalenessSeconds": staleness_seconds}
        config = {
            "profiles": [profile_cfg],
            "leaderElection": {"enabled": leader_election, "name": "energy-scheduler-perf"},
            "metricsAddress": f"127.0.0.1:{self.port}",
            "clientConnection": {"qps": qps, "burst": burst},
        }
        super().__init__(
            kubeconfig,
            config,
            workdir,
            f"energysched-{tag}",
            log_level=log_level,
            python_args=("-m", "cProfile", "-o", str(profile)) if profile else (),
        )

    def metrics(self) -> str:
        return fetch(self.metrics_url)

    def wait_leader(self, timeout: float) -> float:
        """Seconds from start until it holds the lease (caches synced), or until its
        caches are synced when it runs without leader election."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"energysched exited: {self.tail()}")
            with contextlib.suppress(OSError):
                ready = (
                    re.search(r"^energysched_leader 1(\.0)?$", self.metrics(), re.MULTILINE)
                    if self.leader_election
                    else "caches synced" in self.log()
                )
                if ready:
                    return time.monotonic() - self.started
            time.sleep(0.25)
        raise RuntimeError(f"energysched not leader after {timeout:.0f} s: {self.tail()}")

    def stop(self, timeout: float = 60) -> int | None:
        return super().stop(timeout)


class MonitorProcess(ChildProcess):
    """The monitor's model mode: live readings for every KWOK node, as in a cluster where
    the hybrid mode runs (its writes are node updates every scheduler has to absorb)."""

    def __init__(
        self, kubeconfig: Path, workdir: Path, writes_per_second: float, heartbeat: float
    ) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.config_path = workdir / "monitor-model.yaml"
        self.config_path.write_text(
            yaml.safe_dump(
                {
                    "publish": {
                        "heartbeatSeconds": heartbeat,
                        "maxWritesPerSecond": writes_per_second,
                        "burst": max(10, int(writes_per_second)),
                    }
                }
            )
        )
        super().__init__(
            [
                "-m",
                "energysched_monitor",
                "--model",
                f"--kubeconfig={kubeconfig}",
                f"--config={self.config_path}",
                "--metrics-port=0",
                f"--kube-qps={writes_per_second}",
                f"--kube-burst={max(10, int(writes_per_second))}",
                "--log-level=warning",
            ],
            workdir / "monitor-model.log",
        )
