"""OpenStack's sushy-emulator (a Redfish server others wrote) on loopback, for tests.

Its fake driver (no libvirt), Basic auth from an htpasswd file (bcrypt), one system
whose ``ComputerSystem.Reset`` changes its ``PowerState`` after 1-11 s, as hardware
does. ``power_off_disabled`` makes it refuse GracefulShutdown/ForceOff with HTTP 400.
Started on a free port, stopped by its PID. Its state file (the fake driver keeps systems
in SQLite under $TMPDIR) lives in the emulator's own directory, so that two emulators
(parallel test workers) never share a system.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import bcrypt
import psutil

from energysched_lab.prometheus_lab import free_port

SYSTEM_UUID = "27946b59-9e44-4fa7-8e91-f3527a1ef094"


class SushyEmulator:
    def __init__(
        self,
        directory: Path,
        *,
        username: str = "admin",
        password: str,
        power_state: str = "On",
        power_off_disabled: bool = False,
    ) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.username, self.password = username, password
        self.power_state, self.power_off_disabled = power_state, power_off_disabled
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    @staticmethod
    def binary() -> str:
        beside = Path(sys.executable).parent / "sushy-emulator"  # the venv's console script
        found = str(beside) if beside.exists() else shutil.which("sushy-emulator")
        if found is None:
            raise FileNotFoundError("sushy-emulator not found: pip install sushy-tools==2.2.0")
        return found

    def start(self, timeout: float = 30.0) -> str:
        htpasswd = self.dir / "htpasswd"
        hashed = bcrypt.hashpw(self.password.encode(), bcrypt.gensalt()).decode()
        htpasswd.write_text(f"{self.username}:{hashed}\n")
        config = self.dir / "emulator.conf"
        system = {
            "uuid": SYSTEM_UUID,
            "name": "srv1",
            "power_state": self.power_state,
            "external_notifier": False,
            "nics": [],
        }
        config.write_text(
            f"SUSHY_EMULATOR_AUTH_FILE = {str(htpasswd)!r}\n"
            f"SUSHY_EMULATOR_DISABLE_POWER_OFF = {self.power_off_disabled!r}\n"
            f"SUSHY_EMULATOR_FAKE_SYSTEMS = [{system!r}]\n"
        )
        log = (self.dir / "emulator.log").open("wb")
        self.process = subprocess.Popen(
            [self.binary(), "--config", str(config), "-i", "127.0.0.1", "-p", str(self.port),
             "--fake"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "TMPDIR": str(self.dir)},
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.process.poll() is None:
            # Ours must be the listener: free_port() is only a guess, and another
            # emulator that took the same port would answer the URL just as well.
            if self._listening():
                try:
                    urllib.request.urlopen(f"{self.url}/redfish/v1/", timeout=1).close()
                    return self.url
                except OSError:
                    pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(
            f"sushy-emulator did not start: {(self.dir / 'emulator.log').read_text()}"
        )

    def _listening(self) -> bool:
        assert self.process is not None
        try:
            conns = psutil.Process(self.process.pid).net_connections(kind="tcp")
        except psutil.Error:
            return False
        return any(c.status == psutil.CONN_LISTEN and c.laddr.port == self.port for c in conns)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.process = None
