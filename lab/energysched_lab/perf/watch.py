"""Watching processes and the machine: CPU seconds, peak RSS, CPU busy, scraped metrics."""

from __future__ import annotations

import contextlib
import os
import ssl
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import psutil
import yaml

from energysched_lab.perf.common import MIB
from energysched_lab.perf.stats import Buckets, parse_histogram


def _cpu_seconds(proc: psutil.Process) -> float:
    t = proc.cpu_times()
    return float(t.user + t.system)


def _vm_hwm(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _runqueue_wait(pid: int) -> float | None:
    """Seconds the process's threads were runnable but waiting for a CPU (the second field
    of ``/proc/PID/task/*/schedstat``): what a saturated machine adds to every latency."""
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return None
    total, found = 0, False
    for task in tasks:
        try:
            total += int(Path(f"/proc/{pid}/task/{task}/schedstat").read_text().split()[1])
            found = True
        except (OSError, ValueError, IndexError):
            continue  # a thread that ended meanwhile
    return total / 1e9 if found else None


class ProcessWatch:
    """CPU seconds and peak RSS of one process over a window (both sampled every 0.5 s,
    so that the CPU of a part of the window can be told apart: ``stats.cpu_between``)."""

    def __init__(self, pid: int, interval: float = 0.5) -> None:
        self.pid = pid
        self.proc = psutil.Process(pid)
        self.interval = interval
        self.peak_rss = 0
        self.cpu_samples: list[tuple[float, float]] = []  # (monotonic time, CPU seconds)
        self._cpu0 = 0.0
        self._wait0: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self) -> None:
        with contextlib.suppress(psutil.Error):
            self.peak_rss = max(self.peak_rss, int(self.proc.memory_info().rss))
            self.cpu_samples.append((time.monotonic(), _cpu_seconds(self.proc)))

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def start(self) -> None:
        self._cpu0 = _cpu_seconds(self.proc)
        self._wait0 = _runqueue_wait(self.pid)
        self._sample()
        self._thread = threading.Thread(target=self._loop, name=f"rss-{self.pid}", daemon=True)
        self._thread.start()

    def stop(self) -> dict[str, Any]:
        self._sample()
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        try:
            cpu: float | None = _cpu_seconds(self.proc) - self._cpu0
            cpu_total: float | None = _cpu_seconds(self.proc)
        except psutil.Error:
            cpu = cpu_total = None
        wait1 = _runqueue_wait(self.pid)
        wait = None if wait1 is None or self._wait0 is None else wait1 - self._wait0
        return {
            "runqueue_wait_seconds": wait,
            "pid": self.pid,
            "cpu_seconds": cpu,
            "cpu_seconds_since_start": cpu_total,
            "peak_rss_mib": self.peak_rss / MIB,
            "vm_hwm_mib": (h / MIB) if (h := _vm_hwm(self.pid)) is not None else None,
        }


def cpu_by_process(pids: Mapping[str, int]) -> dict[str, float]:
    out = {}
    for name, pid in pids.items():
        with contextlib.suppress(psutil.Error):
            out[name] = _cpu_seconds(psutil.Process(pid))
    return out


def machine_busy(t0: Any, t1: Any) -> float:
    """Share of all CPUs busy between two ``psutil.cpu_times()`` readings."""
    total0, total1 = sum(t0), sum(t1)
    idle0 = t0.idle + getattr(t0, "iowait", 0.0)
    idle1 = t1.idle + getattr(t1, "iowait", 0.0)
    span = total1 - total0
    return 1.0 - (idle1 - idle0) / span if span > 0 else 0.0


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def fetch(url: str, ctx: ssl.SSLContext | None = None) -> str:
    with urllib.request.urlopen(url, timeout=10, context=ctx) as resp:
        body: bytes = resp.read()
        return body.decode()


def kube_scheduler_ctx(kubeconfig: Path) -> ssl.SSLContext:
    """Client-certificate TLS to kube-scheduler's self-signed secure port (loopback)."""
    doc = yaml.safe_load(kubeconfig.read_text())
    user = doc["users"][0]["user"]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.load_cert_chain(user["client-certificate"], user["client-key"])
    return ctx


def alive(pid: int) -> bool:
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


class MetricsPoller:
    """Scrapes a metrics endpoint every few seconds and keeps the last good text, so that
    the figures survive a scheduler that exits before its run is over. Errors while the
    endpoint is not up yet are expected; only the last one is kept."""

    def __init__(self, fetch: Callable[[], str], interval: float = 5.0) -> None:
        self.fetch = fetch
        self.interval = interval
        self.last: str | None = None
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="metrics", daemon=True)

    def _poll(self) -> None:
        try:
            self.last = self.fetch()
            self.last_error = None
        except Exception as exc:  # a benchmark keeps going without one figure
            self.last_error = f"{type(exc).__name__}: {exc}"

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._poll()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> str | None:
        self._stop.set()
        self._thread.join()
        self._poll()
        return self.last


def histogram_from(text: str | None, name: str) -> tuple[Buckets, float, float] | None:
    return parse_histogram(text, name) if text else None
