"""``energysched scheduler`` and ``energysched explain``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Any

from energysched import contract  # names only: standard library imports

# Only the standard library (and the contract) at module level: ``energysched scheduler --help``
# must not pay for aiohttp, numpy or the core (each handler imports what it uses).


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("scheduler", help="run the energy-aware scheduler")
    p.add_argument("--kubeconfig", help="kubeconfig (default: $KUBECONFIG, else in-cluster)")
    p.add_argument("--config", type=Path, help="scheduler config YAML (reloaded on change)")
    p.add_argument(
        "--identity",
        default=f"{socket.gethostname()}-{os.getpid()}",
        help="leader-election identity (default: hostname-pid)",
    )
    p.add_argument("--log-level", default="info")
    p.set_defaults(handler=_run_scheduler)

    e = sub.add_parser("explain", help="show, per node, how the scheduler would place a pod")
    e.add_argument("pod", nargs="?", help="NAMESPACE/NAME of a pod in the cluster")
    e.add_argument("-f", "--file", type=Path, help="a pod manifest instead of a live pod")
    e.add_argument("--kubeconfig")
    e.add_argument("--config", type=Path, help="scheduler config (its profile for the pod)")
    e.add_argument(
        "--mode",
        choices=contract.SCORING_MODES,
        help="override the profile's scoring mode",
    )
    e.set_defaults(handler=_run_explain)


def _run_scheduler(args: argparse.Namespace) -> int:
    """Exit codes: 0 stopped by a signal, 1 a vital task ended (restart me), 2 bad input."""
    from energysched import logs
    from energysched.kube.client import KubeClient
    from energysched.kube.config import KubeConfigError, load_access
    from energysched.probes import make_app, serve
    from energysched.scheduler.config import ConfigError, ConfigSource
    from energysched.scheduler.controller import EnergyScheduler, SchedulerStopped
    from energysched.scheduler.metrics import SchedulerMetrics

    logs.configure(args.log_level)
    try:
        access = load_access(args.kubeconfig)
        source = ConfigSource(args.config)
        cfg = source.load_initial()
    except (KubeConfigError, ConfigError, OSError) as exc:
        print(f"energysched scheduler: {exc}", file=sys.stderr)
        return 2
    metrics = SchedulerMetrics()

    async def main() -> None:
        async with (
            KubeClient(access, qps=cfg.qps, burst=cfg.burst, user_agent="energysched") as kube,
            KubeClient(access, qps=cfg.qps, burst=cfg.burst, user_agent="energysched-events") as ev,
            KubeClient(access, qps=5, burst=10, user_agent="energysched-leader") as lease,
        ):
            sched = EnergyScheduler(kube, ev, source, args.identity, metrics, lease_kube=lease)
            runner = None
            if cfg.metrics_address:
                app = make_app(sched.health_checks, sched.ready_checks, metrics.registry)
                runner = await serve(cfg.metrics_address, app)
            task = asyncio.create_task(sched.run())
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, task.cancel)
            try:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            finally:
                if runner is not None:
                    await runner.cleanup()

    try:
        asyncio.run(main())
    except SchedulerStopped as exc:
        print(f"energysched scheduler: stopped: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # e.g. the health/metrics port is taken
        print(f"energysched scheduler: {exc}", file=sys.stderr)
        return 2
    return 0


def _run_explain(args: argparse.Namespace) -> int:
    import yaml

    from energysched.kube.client import ApiError, KubeClient, api_path
    from energysched.kube.config import KubeConfigError, load_access
    from energysched.scheduler.config import ConfigError, ConfigSource
    from energysched.scheduler.explain import explain

    try:
        access = load_access(args.kubeconfig)
        cfg = ConfigSource(args.config).load_initial()
        if args.file:
            pod = yaml.safe_load(args.file.read_text())
        elif args.pod and "/" in args.pod:
            pod = None
        else:
            print("energysched explain: give NAMESPACE/POD or -f pod.yaml", file=sys.stderr)
            return 2
    except (KubeConfigError, ConfigError, OSError, yaml.YAMLError) as exc:
        print(f"energysched explain: {exc}", file=sys.stderr)
        return 2

    async def main() -> str:
        async with KubeClient(access, qps=0) as kube:
            target = pod
            if target is None:
                ns, name = args.pod.split("/", 1)
                target = await kube.get(api_path("v1", "pods", ns, name))
            return await explain(kube, target, cfg, args.mode)

    try:
        print(asyncio.run(main()))
    except ApiError as exc:
        print(f"energysched explain: {exc}", file=sys.stderr)
        return 1
    return 0
