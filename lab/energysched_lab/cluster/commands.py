"""``energysched cluster ...`` subcommands."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from energysched_lab.cluster import build, realnode
from energysched_lab.cluster.local import ClusterError, LocalCluster
from energysched_lab.cluster.nodes import NodeClassError
from energysched_lab.cluster.realnode import RealNodeError


def add_cluster_parser(sub: Any) -> None:
    p = sub.add_parser("cluster", help="the local control plane (etcd, apiserver, KWOK, ...)")
    p.add_argument("--name", default="default", help="cluster name (state dir per name)")
    # --name is accepted before or after the action ("cluster up --name x").
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--name", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    csub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    up = csub.add_parser("up", parents=[common], help="build (cached) and start the local cluster")
    up.add_argument(
        "--nodes",
        type=int,
        default=0,
        metavar="N",
        help="add N generated nodes of the kb/nodes classes (for scale runs)",
    )
    up.add_argument(
        "--scheduler-qps",
        type=float,
        default=50.0,
        help="kube-scheduler client QPS (default 50, its upstream default)",
    )
    up.add_argument("--scheduler-burst", type=int, default=100)
    up.add_argument(
        "--real-node",
        action="store_true",
        help="add one node that runs containers (kubelet, containerd, runc, CNI, kube-proxy); "
        "needs root and Debian's containerd, runc, containernetworking-plugins",
    )
    up.set_defaults(handler=_up)
    imp = csub.add_parser(
        "import-image",
        parents=[common],
        help="import image archives (docker-archive or OCI tar, .gz too) into the real node",
    )
    imp.add_argument("archives", nargs="+", type=Path, metavar="ARCHIVE")
    imp.set_defaults(handler=_import_image)
    csub.add_parser(
        "down", parents=[common], help="stop every process of the cluster"
    ).set_defaults(handler=_down)
    csub.add_parser("status", parents=[common], help="components, PIDs, health").set_defaults(
        handler=_status
    )
    csub.add_parser(
        "kubeconfig", parents=[common], help="print the admin kubeconfig path"
    ).set_defaults(handler=_kubeconfig)
    b = csub.add_parser("build", parents=[common], help="only build the binaries (cached)")
    b.add_argument(
        "--real-node", action="store_true", help="also kubelet, kube-proxy, pause (own cache)"
    )
    b.set_defaults(handler=_build)
    csub.add_parser(
        "regenerate-gomod",
        parents=[common],
        help="rewrite the pinned Go module from kubernetes' go.mod",
    ).set_defaults(handler=_regenerate)


def _fail(msg: str) -> int:
    print(f"energysched cluster: {msg}", file=sys.stderr)
    return 1


def _up(args: argparse.Namespace) -> int:
    try:
        LocalCluster(args.name).up(
            generated_nodes=args.nodes,
            scheduler_qps=args.scheduler_qps,
            scheduler_burst=args.scheduler_burst,
            real_node=args.real_node,
        )
    except (ClusterError, build.BuildError, NodeClassError, RealNodeError) as exc:
        return _fail(str(exc))
    return 0


def _import_image(args: argparse.Namespace) -> int:
    try:
        for archive in args.archives:
            print(LocalCluster(args.name).import_image(archive))
    except (ClusterError, RealNodeError) as exc:
        return _fail(str(exc))
    return 0


def _down(args: argparse.Namespace) -> int:
    try:
        stopped = LocalCluster(args.name).down()
    except ClusterError as exc:
        return _fail(str(exc))
    print("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))
    return 0


def _status(args: argparse.Namespace) -> int:
    status = LocalCluster(args.name).status()
    json.dump(status, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0 if status["running"] else 3


def _kubeconfig(args: argparse.Namespace) -> int:
    cluster = LocalCluster(args.name)
    if not cluster.kubeconfig.exists():
        return _fail(f"cluster {args.name!r} has no kubeconfig; run 'energysched cluster up'")
    print(cluster.kubeconfig)
    return 0


def _build(args: argparse.Namespace) -> int:
    try:
        print(build.ensure_binaries())
        if args.real_node:
            bins = realnode.ensure_node_binaries()
            print(bins.kube)
            print(bins.tools)
    except build.BuildError as exc:
        return _fail(str(exc))
    return 0


def _regenerate(args: argparse.Namespace) -> int:
    build.regenerate_gomod()
    return 0
