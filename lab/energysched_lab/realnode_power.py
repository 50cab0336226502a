"""Put the local cluster's real node to sleep and wake it, by stopping and restarting kubelet.

The ``command`` power-control method's hook in the tests::

    python -m energysched_lab.realnode_power sleep --cluster NAME
    python -m energysched_lab.realnode_power wake --cluster NAME

``sleep`` records kubelet's command line (``/proc/PID/cmdline``) beside the cluster's state and
stops it by its PID (SIGTERM): the node stops posting status and renewing its Lease, so the
node lifecycle controller marks it NotReady after its grace period. Its containers keep
running under containerd (as a suspended machine's would resume). ``wake`` starts kubelet
again inside the node's network namespace with the recorded arguments and records the new PID
in the cluster's state, so that teardown stops it. Both are idempotent.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from energysched_lab.cluster import realnode
from energysched_lab.cluster.local import ClusterState, LocalCluster
from energysched_lab.cluster.processes import ManagedProcess


def _saved(cluster: LocalCluster) -> Path:
    return cluster.dir / "kubelet.cmdline.json"


def _kubelet(cluster: LocalCluster) -> tuple[ClusterState, int, ManagedProcess]:
    state = cluster.load_state()
    if state is None or not state.real_node:
        raise SystemExit(f"cluster {cluster.name!r} has no real node")
    for i, proc in enumerate(state.processes):
        if proc.name == "kubelet":
            return state, i, proc
    raise SystemExit(f"cluster {cluster.name!r} has no kubelet")


def sleep(cluster: LocalCluster) -> str:
    _, _, proc = _kubelet(cluster)
    if not proc.alive():
        return "kubelet already stopped"
    argv = Path(f"/proc/{proc.pid}/cmdline").read_bytes().split(b"\0")
    _saved(cluster).write_text(json.dumps([a.decode() for a in argv if a]))
    proc.stop()
    return f"kubelet {proc.pid} stopped"


def wake(cluster: LocalCluster) -> str:
    state, i, proc = _kubelet(cluster)
    if proc.alive():
        return f"kubelet {proc.pid} already running"
    argv = json.loads(_saved(cluster).read_text())
    assert state.real_node is not None
    net = realnode.NodeState(**state.real_node).net
    new = realnode._start_in_netns("kubelet", net.netns, Path(argv[0]), argv[1:], cluster.log_dir)
    state.processes[i] = new
    cluster._save(state)
    return f"kubelet started again: pid {new.pid}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m energysched_lab.realnode_power")
    parser.add_argument("step", choices=("sleep", "wake"))
    parser.add_argument("--cluster", required=True)
    parser.add_argument(
        "--delay", type=float, default=0.0, help="seconds to wait first (a slow machine, in tests)"
    )
    args = parser.parse_args(argv)
    time.sleep(args.delay)
    cluster = LocalCluster(args.cluster)
    print(sleep(cluster) if args.step == "sleep" else wake(cluster))
    return 0


if __name__ == "__main__":
    sys.exit(main())
