"""Benchmark: the cluster-wide prometheus mode for N nodes against a real Prometheus.

    python -m energysched_lab.prometheus_bench --nodes 1000 --polls 10

Starts an exporter of N nodes' ``ipmi_dcmi_power_consumption_watts`` and Debian's
``prometheus`` scraping it every second (both on loopback, stopped by PID at the end),
then runs the monitor's poll (:class:`PrometheusMonitor`, node writes recorded, not sent
to an API server) ``--polls`` times and prints, per poll, the requests the monitor sent,
the requests Prometheus counted on ``/api/v1/query`` (its own
``prometheus_http_requests_total`` on its ``/metrics``), the nodes with a reading, the
query's time and the whole poll's (query, 1,000 trackers, the recorded writes).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import structlog

from energysched.kb.profiles import KnowledgeBase
from energysched_lab.prometheus_lab import PowerExporter, PrometheusServer
from energysched_monitor.config import ConfigStore, MonitorConfig
from energysched_monitor.interfaces import NodeInfo, PodInfo
from energysched_monitor.metrics import Metrics
from energysched_monitor.prometheus_monitor import PrometheusMonitor
from energysched_monitor.readings import ReadError, Reading
from energysched_monitor.tracker import Reporter

QUERY = "ipmi_dcmi_power_consumption_watts"


class _View:
    def __init__(self, nodes: Iterable[NodeInfo]) -> None:
        self._nodes = list(nodes)

    def has_synced(self) -> bool:
        return True

    def nodes(self) -> Iterable[NodeInfo]:
        return self._nodes

    def pods_on_node(self, node: str) -> Iterable[PodInfo]:
        return ()

    def knowledge_base(self) -> KnowledgeBase:
        raise RuntimeError("not used")


class _CountingAnnotator:
    def __init__(self) -> None:
        self.writes = 0

    async def patch_node_annotations(
        self, node: str, annotations: Mapping[str, str | None]
    ) -> None:
        self.writes += 1


def _server_query_count(server: PrometheusServer) -> float:
    """``/api/v1/query`` requests Prometheus itself counted (its own /metrics)."""
    with urllib.request.urlopen(f"{server.url}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith("prometheus_http_requests_total{") and (
            'handler="/api/v1/query"' in line
        ):
            total += float(line.rsplit(" ", 1)[1])
    return total


class _Timed(PrometheusMonitor):
    """Records each poll's outcomes and the time its query took."""

    last: dict[str, Reading | ReadError] = {}
    query_seconds = 0.0

    async def read_all(
        self, nodes: dict[str, NodeInfo], config: MonitorConfig
    ) -> dict[str, Reading | ReadError]:
        t0 = time.perf_counter()
        self.last = await super().read_all(nodes, config)
        self.query_seconds = time.perf_counter() - t0
        return self.last


async def run(nodes: int, polls: int) -> dict[str, object]:
    names = [f"node-{i:04d}" for i in range(nodes)]
    exporter = PowerExporter({n: 100.0 + (i % 400) for i, n in enumerate(names)})
    exporter.start()
    server = PrometheusServer([exporter.url], scrape_seconds=1.0)
    try:
        server.start()
        await server.wait_for_series(QUERY, nodes, timeout=120)
        with tempfile.TemporaryDirectory() as tmp:
            config = Path(tmp) / "config.yaml"
            config.write_text(
                "publish: {maxWritesPerSecond: 0}\n"
                "selectors:\n  - matchLabels: {rack: a}\n"
                f'    source: {{kind: prometheus, address: "{server.url}", query: {QUERY}}}\n'
            )
            log = structlog.get_logger("bench")
            structlog.configure(
                wrapper_class=structlog.make_filtering_bound_logger(40)  # errors only
            )
            annotator = _CountingAnnotator()
            view = _View(NodeInfo(n, labels={"rack": "a"}) for n in names)
            monitor = _Timed(
                view, annotator, ConfigStore(str(config)), Reporter(Metrics(), log), log
            )
            monitor.reconfigure()
            rows = []
            try:
                for _ in range(polls):
                    before_server = await asyncio.to_thread(_server_query_count, server)
                    sent_before = sum(c.requests for c in monitor.clients.values())
                    t1 = time.perf_counter()
                    await monitor.tick()
                    t2 = time.perf_counter()
                    outcomes = monitor.last
                    sent = sum(c.requests for c in monitor.clients.values()) - sent_before
                    after_server = await asyncio.to_thread(_server_query_count, server)
                    rows.append(
                        {
                            "monitor_requests": sent,
                            "prometheus_counted": int(after_server - before_server),
                            "readings": sum(isinstance(o, Reading) for o in outcomes.values()),
                            "query_ms": round(monitor.query_seconds * 1000, 1),
                            "poll_ms": round((t2 - t1) * 1000, 1),
                        }
                    )
                    await asyncio.sleep(1.0)
            finally:
                await monitor.close()
            return {
                "nodes": nodes,
                "polls": rows,
                "writes_recorded": annotator.writes,
                "median_query_ms": statistics.median(float(str(r["query_ms"])) for r in rows),
                "median_poll_ms": statistics.median(float(str(r["poll_ms"])) for r in rows),
            }
    finally:
        server.stop()
        exporter.stop()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m energysched_lab.prometheus_bench")
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--polls", type=int, default=10)
    args = parser.parse_args(argv)
    result = asyncio.run(run(args.nodes, args.polls))
    for row in result["polls"]:  # type: ignore[attr-defined]
        print(json.dumps(row))
    summary = {k: v for k, v in result.items() if k != "polls"}
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
