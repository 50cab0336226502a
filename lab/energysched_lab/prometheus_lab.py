"""A real Prometheus on loopback scraping a power exporter we serve, for tests and benchmarks.

:class:`PowerExporter` serves, in the Prometheus text format (prometheus_client's
exposition), the series the monitor's documented queries read, for any number of nodes,
each series labelled with its node (``node="..."``: one exporter standing in for a
cluster's many, which Prometheus scrapes with ``honor_labels``):

* ``ipmi_dcmi_power_consumption_watts`` (the IPMI exporter),
* ``kepler_node_platform_joules_total`` (Kepler; a counter that grows at the set watts),
* ``node_hwmon_power_average_watt{chip, sensor}`` (node_exporter's hwmon).

:class:`PrometheusServer` runs Debian's ``prometheus`` binary (pinned in ``.ci/run``) on a
free loopback port with a 1 s scrape interval, and is stopped by its PID.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PowerExporter(Collector):
    """Per-node watts (settable), exposed as the three exporters' series, served by
    prometheus_client's own HTTP server (a thread: independent of any event loop)."""

    def __init__(self, watts: Mapping[str, float] | None = None) -> None:
        self.watts: dict[str, float] = dict(watts or {})
        #: nodes whose hwmon shows two power sensors (the "several series" case)
        self.two_sensors: set[str] = set()
        self.scrapes = 0
        self.url = ""
        self._joules: dict[str, float] = {}
        self._clock = time.monotonic()
        self._lock = threading.Lock()
        self._server: Any = None

    def set_watts(self, node: str, watts: float | None) -> None:
        """``None`` removes the node's series (its exporter is gone)."""
        with self._lock:
            self._advance()
            if watts is None:
                self.watts.pop(node, None)
            else:
                self.watts[node] = watts

    def _advance(self) -> None:
        now = time.monotonic()
        dt, self._clock = now - self._clock, now
        for node, w in self.watts.items():
            self._joules[node] = self._joules.get(node, 0.0) + w * dt

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            self.scrapes += 1
            self._advance()
            ipmi = GaugeMetricFamily(
                "ipmi_dcmi_power_consumption_watts", "Current power (DCMI)", labels=["node"]
            )
            kepler = CounterMetricFamily(
                "kepler_node_platform_joules", "Platform energy", labels=["node"]
            )
            hwmon = GaugeMetricFamily(
                "node_hwmon_power_average_watt", "hwmon power", labels=["node", "chip", "sensor"]
            )
            for node, w in self.watts.items():
                ipmi.add_metric([node], w)
                kepler.add_metric([node], self._joules.get(node, 0.0))
                hwmon.add_metric([node, "platform_acpi", "power1"], w)
                if node in self.two_sensors:
                    hwmon.add_metric([node, "platform_acpi", "power2"], w / 2)
        yield ipmi
        yield kepler
        yield hwmon

    def start(self) -> str:
        registry = CollectorRegistry()
        registry.register(self)
        port = free_port()
        self._server, _ = start_http_server(port, "127.0.0.1", registry)
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


class PrometheusServer:
    """``prometheus`` on 127.0.0.1, scraping ``targets`` every ``scrape_seconds``."""

    def __init__(self, targets: list[str], scrape_seconds: float = 1.0) -> None:
        self.binary = shutil.which("prometheus")
        if self.binary is None:
            raise FileNotFoundError("prometheus not found: install Debian's package (see .ci/run)")
        self.targets = targets
        self.scrape_seconds = scrape_seconds
        self.dir = Path(tempfile.mkdtemp(prefix="energysched-prometheus-"))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> str:
        config = {
            "global": {
                "scrape_interval": f"{self.scrape_seconds:g}s",
                "scrape_timeout": f"{self.scrape_seconds:g}s",
            },
            "scrape_configs": [
                {
                    "job_name": "power",
                    "honor_labels": True,
                    "static_configs": [{"targets": [t.split("://", 1)[-1] for t in self.targets]}],
                }
            ],
        }
        (self.dir / "prometheus.yml").write_text(json.dumps(config))  # JSON is YAML
        log = (self.dir / "prometheus.log").open("wb")
        self.process = subprocess.Popen(
            [
                str(self.binary),
                f"--config.file={self.dir / 'prometheus.yml'}",
                f"--storage.tsdb.path={self.dir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--log.level=warn",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        return self.url

    def query(self, promql: str) -> Mapping[str, object]:
        data = urllib.parse.urlencode({"query": promql}).encode()
        with urllib.request.urlopen(f"{self.url}/api/v1/query", data, timeout=5) as resp:
            doc: Mapping[str, object] = json.loads(resp.read())
            return doc

    async def wait_for_series(self, promql: str, count: int, timeout: float = 60.0) -> None:
        """Until ``promql`` returns at least ``count`` series (scrapes have landed)."""
        deadline = time.monotonic() + timeout
        last: object = None
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"prometheus exited: {self.log_tail()}")
            try:
                doc = await asyncio.to_thread(self.query, promql)
                data = doc.get("data")
                result = data.get("result") if isinstance(data, dict) else None
                last = len(result) if isinstance(result, list) else doc
                if isinstance(result, list) and len(result) >= count:
                    return
            except OSError as exc:
                last = exc
            await asyncio.sleep(0.25)
        raise TimeoutError(f"{promql}: {count} series not there after {timeout} s: {last}")

    def log_tail(self) -> str:
        path = self.dir / "prometheus.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.process = None
        with contextlib.suppress(OSError):
            shutil.rmtree(self.dir)
