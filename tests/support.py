"""Helpers for tests (importable; conftest.py holds only fixtures)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from energysched.cluster.build import bin_dir
from energysched.kube.waiting import wait_for as wait_for  # re-exported for the tests

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


class SchedulerProcess:
    """``energysched scheduler`` as a real subprocess against the local cluster."""

    def __init__(self, kubeconfig: Path, config: dict[str, Any], workdir: Path, name: str) -> None:
        import sys

        import yaml

        self.config_path = workdir / f"{name}.yaml"
        self.config_path.write_text(yaml.safe_dump(config))
        self.log_path = workdir / f"{name}.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "energysched.cli",
                "scheduler",
                f"--kubeconfig={kubeconfig}",
                f"--config={self.config_path}",
                f"--identity={name}",
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_synced(self, timeout: float = 60) -> None:
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if "caches synced" in self.log():
                return
            if self.proc.poll() is not None:
                raise AssertionError(f"scheduler exited: {self.log()[-3000:]}")
            time.sleep(0.2)
        raise AssertionError(f"scheduler did not sync: {self.log()[-3000:]}")

    def update_config(self, config: dict[str, Any]) -> None:
        import yaml

        tmp = self.config_path.with_suffix(".tmp")
        tmp.write_text(yaml.safe_dump(config))
        tmp.replace(self.config_path)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
