"""``energysched power-manager``: the leader-elected controller that sleeps and wakes nodes."""

from __future__ import annotations

import argparse
import os
import socket
from pathlib import Path
from typing import Any

# Only the standard library at module level (``energysched power-manager --help`` stays cheap).

HELP = "put idle opted-in nodes to sleep and wake them for pending pods"


def add_parser(sub: Any) -> None:
    p = sub.add_parser("power-manager", help=HELP)
    p.add_argument("--kubeconfig", help="kubeconfig (default: $KUBECONFIG, else in-cluster)")
    p.add_argument(
        "--namespace",
        default=os.environ.get("POD_NAMESPACE", "energysched"),
        help="its own namespace: the Lease, and the only Secrets it reads (plug credentials)",
    )
    p.add_argument("--identity", default=f"{socket.gethostname()}-{os.getpid()}")
    p.add_argument("--lease-name", default="energysched-power-manager")
    p.add_argument("--lease-duration", type=float, default=15.0)
    p.add_argument("--renew-deadline", type=float, default=10.0)
    p.add_argument("--retry-period", type=float, default=2.0)
    p.add_argument(
        "--config",
        type=Path,
        help="the config file (a mounted ConfigMap; reloaded on change): interval, keep-awake"
        " selector, hysteresis, headroom, wake backoff and timeouts; none: the defaults",
    )
    p.add_argument(
        "--config-map",
        default="",
        help="the ConfigMap (in --namespace) the config file comes from: a rejected edit is a"
        " Warning Event on it",
    )
    p.add_argument("--metrics-address", default=":10262", help="'' to serve none")
    p.add_argument("--log-level", default="info")
    p.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    import asyncio
    import contextlib
    import signal
    import sys

    from energysched import logs
    from energysched.kube.client import KubeClient
    from energysched.kube.config import KubeConfigError, load_access
    from energysched.powermanager.config import config_file
    from energysched.powermanager.manager import PowerManager
    from energysched.powermanager.metrics import PowerMetrics
    from energysched.probes import make_app, serve
    from energysched.scheduler.leader import LeaderElector
    from energysched.strict import DocumentError

    logs.configure(args.log_level)
    source = config_file(args.config)
    try:
        access = load_access(args.kubeconfig)
        source.load_initial()  # at start-up an invalid file is fatal: there is no last good
    except (KubeConfigError, DocumentError, OSError) as exc:
        print(f"energysched power-manager: {exc}", file=sys.stderr)
        return 2
    metrics = PowerMetrics()

    async def main() -> int:
        async with (
            KubeClient(access, qps=20, burst=40, user_agent=CONTROLLER) as kube,
            KubeClient(access, qps=5, burst=10, user_agent=f"{CONTROLLER}-events") as ev,
            KubeClient(access, qps=5, burst=10, user_agent=f"{CONTROLLER}-leader") as lease,
        ):
            manager = PowerManager(
                kube, ev, source, metrics, namespace=args.namespace, config_map=args.config_map
            )
            elector = LeaderElector(
                lease,
                args.namespace,
                args.lease_name,
                args.identity,
                args.lease_duration,
                args.renew_deadline,
                args.retry_period,
            )

            def health() -> list[tuple[str, bool, str]]:
                return [("watches", manager.healthy(), "nodes and pods watched")]

            def ready() -> list[tuple[str, bool, str]]:
                # A rejected config edit does not make the replica unready (the last good
                # config is in force), but /readyz?verbose says so.
                config = source.last_error or f"in force: {args.config or 'the defaults'}"
                return [
                    *health(),
                    ("leader", True, f"leading: {elector.is_leader()}"),
                    ("config", True, config),
                ]

            runner = None
            if args.metrics_address:
                runner = await serve(
                    args.metrics_address, make_app(health, ready, metrics.registry)
                )
            manager.start()
            work = asyncio.create_task(manager.run(elector.is_leader))
            leading = asyncio.create_task(elector.run())
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, stop.set)
            stopper = asyncio.create_task(stop.wait())
            try:
                done, _ = await asyncio.wait(
                    {work, leading, stopper}, return_when=asyncio.FIRST_COMPLETED
                )
            finally:
                for task in (work, leading, stopper):
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await task
                await elector.release()
                await manager.stop()
                if runner is not None:
                    await runner.cleanup()
            # Lost the lease (or a vital task ended): exit non-zero so that we restart clean.
            return 0 if stopper in done else 1

    try:
        return asyncio.run(main())
    except OSError as exc:
        print(f"energysched power-manager: {exc}", file=sys.stderr)
        return 2


CONTROLLER = "energysched-power-manager"


AGENT_HELP = "the node agent: suspend or power off this node when the power manager asks"


def add_agent_parser(sub: Any) -> None:
    p = sub.add_parser("power-agent", help=AGENT_HELP)
    p.add_argument("--kubeconfig", help="kubeconfig (default: $KUBECONFIG, else in-cluster)")
    p.add_argument("--node", default=os.environ.get("NODE_NAME", ""), help="this node's name")
    p.add_argument(
        "--bus",
        default="unix:path=/run/dbus/system_bus_socket",
        help="the host's system D-Bus address (logind)",
    )
    p.add_argument("--max-age", type=float, default=300.0, help="ignore older requests (s)")
    p.add_argument("--health-address", default=":10263", help="/healthz, /readyz; '' for none")
    p.add_argument("--log-level", default="info")
    p.set_defaults(handler=_run_agent)


def _run_agent(args: argparse.Namespace) -> int:
    import asyncio
    import sys

    from energysched import logs
    from energysched.kube.client import KubeClient
    from energysched.kube.config import KubeConfigError, load_access
    from energysched.powermanager import logind
    from energysched.powermanager.agent import NodeAgent

    logs.configure(args.log_level)
    if not args.node:
        print("energysched power-agent: --node (or $NODE_NAME) is required", file=sys.stderr)
        return 2
    try:
        access = load_access(args.kubeconfig)
    except (KubeConfigError, OSError) as exc:
        print(f"energysched power-agent: {exc}", file=sys.stderr)
        return 2

    async def act(action: logind.Action) -> None:
        await logind.request(action, args.bus)

    async def main() -> None:
        from prometheus_client import CollectorRegistry

        from energysched.probes import make_app, serve

        async with KubeClient(access, qps=5, burst=10, user_agent="energysched-power-agent") as k:
            agent = NodeAgent(k, args.node, act, args.max_age)

            def checks() -> list[tuple[str, bool, str]]:
                up = agent.reflector.up
                return [("node-watch", up, agent.reflector.last_error or "watching its node")]

            runner = None
            if args.health_address:
                app = make_app(checks, checks, CollectorRegistry())
                runner = await serve(args.health_address, app)
            try:
                await agent.run()
            finally:
                if runner is not None:
                    await runner.cleanup()

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        return 0
    return 0
