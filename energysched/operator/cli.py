"""``energysched operator``: the EnergyProfile operator (kopf), cluster-scoped."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "operator",
        help="validate EnergyProfiles and keep their status (matched nodes) current",
        description=(
            "Run the EnergyProfile operator (kopf). It watches EnergyProfiles and Nodes "
            "cluster-wide, sets each profile's Valid condition, bestEfficiency and "
            "matchedNodes, and posts Warning events (in the 'default' namespace, where events "
            "about cluster-scoped objects live) when two profiles match one node or when a "
            "Ready node has no profile. Stop with SIGINT/SIGTERM."
        ),
    )
    p.add_argument("--kubeconfig", help="kubeconfig (default: $KUBECONFIG, else in-cluster)")
    p.add_argument(
        "--liveness",
        metavar="URL",
        help="serve kopf's liveness probe, e.g. http://0.0.0.0:8080/healthz",
    )
    p.add_argument(
        "--debounce",
        type=float,
        default=0.2,
        metavar="SECONDS",
        help="coalesce changes for this long before writing statuses (default %(default)s)",
    )
    p.add_argument(
        "--metrics",
        default="",
        metavar="HOST:PORT",
        help="serve Prometheus metrics (learning, per-pod energy) here (default: none)",
    )
    p.add_argument(
        "--no-learning",
        action="store_true",
        help="do not learn from finished pods nor attribute their energy",
    )
    p.add_argument("--log-level", default="info")
    p.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from energysched import logs
    from energysched.kube.config import KubeConfigError
    from energysched.operator.login import connection_info
    from energysched.operator.main import run_operator
    from energysched.operator.runtime import OperatorOptions

    logs.configure(args.log_level)
    try:
        connection_info(args.kubeconfig)  # fail fast, with the file and field named
    except KubeConfigError as exc:
        print(f"energysched operator: {exc}", file=sys.stderr)
        return 2
    run_operator(
        OperatorOptions(
            kubeconfig=args.kubeconfig,
            liveness_endpoint=args.liveness,
            debounce_seconds=args.debounce,
            metrics_address=args.metrics,
            learning=not args.no_learning,
        )
    )
    return 0
