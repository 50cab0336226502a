"""Start local processes detached, record their PIDs, stop them by PID.

A PID file alone is not proof: before signalling, we check that the PID still
runs the binary we started (``/proc/<pid>/exe``), so a recycled PID of some
unrelated process is never killed.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class ManagedProcess:
    name: str
    pid: int
    binary: str
    log: str
    #: The arguments it was started with, so that it can be started again (fault tests).
    args: list[str] = field(default_factory=list)

    def alive(self) -> bool:
        try:
            exe = os.readlink(f"/proc/{self.pid}/exe")
        except OSError:
            return False
        # A zombie (already exited, not yet reaped) has no exe link; a reused PID
        # runs another binary.
        return os.path.realpath(exe).removesuffix(" (deleted)") == os.path.realpath(self.binary)

    def stop(self, timeout: float = 15.0) -> None:
        if not self.alive():
            return
        os.kill(self.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                return
            time.sleep(0.1)
        if self.alive():
            os.kill(self.pid, signal.SIGKILL)


def start(name: str, binary: Path, args: list[str], log_dir: Path) -> ManagedProcess:
    """Start ``binary`` in its own session (it outlives ``cluster up``), logging to a file."""
    log = log_dir / f"{name}.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [str(binary), *args],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
    return ManagedProcess(name, proc.pid, str(binary), str(log), list(args))
