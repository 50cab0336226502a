"""``energysched scheduler`` as a child process: for the experiment, ``make perf`` and tests.

One place starts it, reads its log, swaps its config file atomically (as a
ConfigMap update would) and stops it by PID, so the three users cannot drift.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml


class ChildProcess:
    """A Python child process whose output goes to one log file; stopped by its PID."""

    def __init__(self, args: list[str], log_path: Path) -> None:
        self.log_path = log_path
        self._log = self.log_path.open("wb")
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, *args], stdout=self._log, stderr=subprocess.STDOUT
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log().splitlines()[-lines:])

    def stop(self, timeout: float = 15) -> int | None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode


class SchedulerProcess(ChildProcess):
    def __init__(
        self,
        kubeconfig: Path,
        config: dict[str, Any],
        workdir: Path,
        name: str,
        *,
        log_level: str = "info",
        python_args: tuple[str, ...] = (),
    ) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.config_path = workdir / f"{name}.yaml"
        self.config_path.write_text(yaml.safe_dump(config))
        super().__init__(
            [
                *python_args,  # e.g. -m cProfile -o FILE
                "-m",
                "energysched.cli",
                "scheduler",
                f"--kubeconfig={kubeconfig}",
                f"--config={self.config_path}",
                f"--identity={name}",
                f"--log-level={log_level}",
            ],
            workdir / f"{name}.log",
        )

    def wait_synced(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if "caches synced" in self.log():
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"scheduler exited: {self.tail()}")
            time.sleep(0.2)
        raise RuntimeError(f"scheduler did not sync in {timeout:.0f} s: {self.tail()}")

    def update_config(self, config: dict[str, Any]) -> None:
        tmp = self.config_path.with_suffix(".tmp")
        tmp.write_text(yaml.safe_dump(config))
        tmp.replace(self.config_path)
