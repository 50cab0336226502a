"""``python -m energysched_monitor``: the DaemonSet process, or the model mode.

DaemonSet (one per node)::

    python -m energysched_monitor --node-name "$NODE_NAME" \\
        --config /etc/energysched-monitor/config.yaml --metrics-port 9101

Model mode (one process for all simulated KWOK nodes)::

    python -m energysched_monitor --model --kubeconfig ~/.kube/config

Prometheus mode (one process, one query per poll for every ``kind: prometheus`` node)::

    python -m energysched_monitor --prometheus --config /etc/energysched-monitor/config.yaml

``--dry-run`` logs the patches instead of sending them (with a fake plug, no cluster
is needed at all in the DaemonSet mode).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any

import structlog

from energysched import probes
from energysched.kube import KubeClient, KubeConfigError, load_access
from energysched_monitor.config import ConfigStore
from energysched_monitor.interfaces import NodeAnnotator, NodeReader
from energysched_monitor.kubeio import KubeNodeAnnotator, KubeNodeReader, ReflectorClusterView
from energysched_monitor.metrics import Metrics
from energysched_monitor.node_monitor import NodeMonitor
from energysched_monitor.power_model_monitor import ModelMonitor
from energysched_monitor.prometheus_monitor import PrometheusMonitor
from energysched_monitor.tracker import Reporter

DEFAULT_METRICS_PORT = 9101
LEVELS = ("debug", "info", "warning", "error")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="energysched-monitor",
        description="Publish live node power as energy.thesis.io annotations.",
    )
    parser.add_argument(
        "--node-name",
        default=os.environ.get("NODE_NAME"),
        help="the node to monitor (default: $NODE_NAME, set from the downward API)",
    )
    parser.add_argument(
        "--config",
        default=os.environ.get("ENERGYSCHED_MONITOR_CONFIG"),
        help="YAML/JSON config file (mounted ConfigMap); re-read when it changes",
    )
    parser.add_argument("--kubeconfig", default=None, help="default: $KUBECONFIG, else in-cluster")
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=DEFAULT_METRICS_PORT,
        help=f"/metrics, /healthz and /readyz (default {DEFAULT_METRICS_PORT}; 0 = off)",
    )
    parser.add_argument("--metrics-host", default="0.0.0.0")
    parser.add_argument(
        "--model",
        action="store_true",
        help="serve every simulated (KWOK) node from its EnergyProfile and its pods",
    )
    parser.add_argument(
        "--prometheus",
        action="store_true",
        help="serve every node whose source is kind prometheus: one query per poll for all",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="log the patches instead of sending them"
    )
    parser.add_argument("--kube-qps", type=float, default=50.0, help="client rate limit")
    parser.add_argument("--kube-burst", type=int, default=100)
    parser.add_argument("--log-level", choices=LEVELS, default="info")
    return parser


def configure_logging(level: str = "info") -> None:
    """JSON lines on stdout, one event each, UTC timestamps."""
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            getattr(logging, level.upper(), logging.INFO)
        ),
        logger_factory=structlog.PrintLoggerFactory(sys.stdout),
        cache_logger_on_first_use=False,
    )


class LogAnnotator:
    """``--dry-run``: a NodeAnnotator that only logs."""

    def __init__(self, log: Any) -> None:
        self.log = log

    async def patch_node_annotations(
        self, node: str, annotations: Mapping[str, str | None]
    ) -> None:
        self.log.info("dry-run: would patch node", node=node, annotations=dict(annotations))


async def run(args: argparse.Namespace, stop: asyncio.Event | None = None) -> int:
    log = structlog.get_logger("energysched_monitor")
    stop = stop or asyncio.Event()
    store = ConfigStore(args.config)
    changed, error = store.refresh()
    if error is not None:
        log.error("config invalid at start; running with defaults until fixed", error=str(error))
    elif changed:
        log.info("config loaded", path=args.config)
    metrics = Metrics()
    metrics.config_valid.set(1 if store.valid else 0)
    cluster_wide = args.model or args.prometheus
    reporter = Reporter(metrics, log, quiet_ready=cluster_wide)

    client: KubeClient | None = None
    if cluster_wide or not args.dry_run:
        try:
            access = load_access(args.kubeconfig)
        except KubeConfigError as exc:
            log.error("no cluster access", error=str(exc))
            return 2
        client = KubeClient(
            access, qps=args.kube_qps, burst=args.kube_burst, user_agent="energysched-monitor"
        )
        await client.open()

    annotator: NodeAnnotator = LogAnnotator(log)
    reader: NodeReader | None = None
    if client is not None and not args.dry_run:
        annotator, reader = KubeNodeAnnotator(client), KubeNodeReader(client)

    loops: list[Callable[[asyncio.Event], Coroutine[Any, Any, None]]] = []
    monitor: NodeMonitor | ModelMonitor
    if cluster_wide:
        assert client is not None
        view = ReflectorClusterView(client, log)
        mode = PrometheusMonitor if args.prometheus else ModelMonitor
        monitor = mode(view, annotator, store, reporter, log)
        loops.append(view.run)
    else:
        monitor = NodeMonitor(args.node_name, store, annotator, metrics, log, reader=reader)
    loops.append(monitor.run)

    def health_checks() -> list[probes.Check]:
        """Liveness (and readiness): the loop went round recently (a wedged loop gets
        restarted)."""
        config = store.config
        limit = 3 * max(config.max_backoff_seconds, config.poll_interval_seconds) + 30
        age = time.monotonic() - monitor.last_loop
        ok = age < limit
        return [("loop", ok, "ok" if ok else f"last round {age:.0f} s ago (limit {limit:.0f} s)")]

    runner = None
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
    try:
        if args.metrics_port:
            app = probes.make_app(health_checks, None, metrics.registry)
            runner = await probes.listen(app, args.metrics_host, args.metrics_port)
        log.info(
            "monitor starting",
            mode="prometheus" if args.prometheus else "model" if args.model else "node",
            node=args.node_name,
            config=args.config,
            metrics_port=args.metrics_port,
            dry_run=args.dry_run,
        )
        await asyncio.gather(*(run_loop(stop) for run_loop in loops))
    finally:
        if runner is not None:
            await runner.cleanup()
        if client is not None:
            await client.close()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.remove_signal_handler(sig)
    log.info("monitor stopped")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.model and args.prometheus:
        parser.error("--model and --prometheus are two processes: give one")
    if not args.model and not args.prometheus and not args.node_name:
        parser.error(
            "--node-name (or $NODE_NAME) is required unless --model or --prometheus is given"
        )
    configure_logging(args.log_level)
    try:
        return asyncio.run(run(args))
    except KeyboardInterrupt:
        return 130
