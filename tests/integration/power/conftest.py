"""A local cluster of its own with the real kubelet node and no KWOK nodes, for power tests.

Why its own: the session's clusters run kube-controller-manager with
``--node-monitor-grace-period=900s`` (KWOK renews node leases rarely, to scale to thousands of
nodes), so a node whose kubelet stopped would stay "Ready" for 15 minutes. This cluster has
no KWOK nodes (deleted once it is up) and a 20 s grace period, like a real cluster's 40 s
default: a sleeping node really goes NotReady and gets the node lifecycle controller's
unreachable taints, which is what these tests must survive.

Use the real node one engineer at a time: ``flock /tmp/realnode.lock .venv/bin/pytest
tests/integration/power``. Without root or Debian's containerd, runc and CNI plugins the tests
are skipped (ENERGYSCHED_REQUIRE_REAL_NODE=1 fails them instead).
"""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from energysched_lab.cluster import local, realnode
from energysched_lab.cluster.local import LocalCluster
from tests.integration.deploy.conftest import unavailable
from tests.support import ROOT, Kubectl

GRACE_PERIOD = "20s"


@pytest.fixture(scope="session")
def power_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    try:
        realnode.check_prerequisites()
    except realnode.RealNodeError as exc:
        unavailable(str(exc))
    saved = local.NODE_MONITOR_GRACE_PERIOD
    local.NODE_MONITOR_GRACE_PERIOD = GRACE_PERIOD  # read when kcm's arguments are built
    cluster = LocalCluster(f"power-{os.getpid()}")
    try:
        cluster.up(real_node=True)
    finally:
        local.NODE_MONITOR_GRACE_PERIOD = saved
    try:
        kubectl = Kubectl(cluster.kubeconfig)
        # Only the real node: the KWOK nodes would go NotReady with this grace period.
        names = kubectl("get", "nodes", "-o", "name").split()
        kubectl("delete", *[n for n in names if n != f"node/{realnode.NODE_NAME}"])
        kubectl("apply", "-f", str(ROOT / "manifests" / "crd" / "energyprofiles.yaml"))
        kubectl(
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            "crd/energyprofiles.energy.thesis.io",
        )
        yield cluster
    finally:
        cluster.purge()


@pytest.fixture(scope="session")
def pk(power_cluster: LocalCluster) -> Kubectl:
    return Kubectl(power_cluster.kubeconfig)


@pytest.fixture(scope="session")
def power_net(power_cluster: LocalCluster) -> realnode.NodeNet:
    state = power_cluster.load_state()
    assert state is not None and state.real_node
    return realnode.NodeState(**state.real_node).net


def node_mac(net: realnode.NodeNet) -> str:
    path = Path(f"/sys/class/net/{net.node_veth}/address")
    return subprocess.run(
        ["ip", "netns", "exec", net.netns, "cat", str(path)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


class Manager:
    """``energysched power-manager`` as a process of its own (leader-elected, in ``ns``),
    restarted when it exits, as its Deployment's pod would be: it exits on purpose when it
    loses its Lease (e.g. the API server was unreachable for longer than the renew deadline).
    """

    def __init__(self, cluster: LocalCluster, ns: str, log: Path, *extra: str) -> None:
        self.cluster, self.ns, self.log, self.extra = cluster, ns, log, extra
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self._stopping = threading.Event()
        self._supervisor: threading.Thread | None = None

    def _spawn(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [
                    str(ROOT / ".venv" / "bin" / "energysched"),
                    "power-manager",
                    f"--kubeconfig={self.cluster.kubeconfig}",
                    f"--namespace={self.ns}",
                    "--interval=1",
                    "--hysteresis=1",
                    "--min-awake-nodes=0",
                    "--min-free-fraction=0",
                    "--wake-backoff=5",
                    "--wake-timeout-margin=10",
                    "--lease-duration=6",
                    "--renew-deadline=4",
                    "--retry-period=1",
                    "--metrics-address=",
                    *self.extra,
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.starts += 1

    def _supervise(self) -> None:
        while not self._stopping.is_set():
            proc = self.proc
            if proc is not None and proc.poll() is not None and not self._stopping.is_set():
                self._stopping.wait(1.0)  # a restart's back-off
                if not self._stopping.is_set():
                    self._spawn()
            self._stopping.wait(0.2)

    def start(self) -> None:
        self._spawn()
        self._supervisor = threading.Thread(target=self._supervise, daemon=True)
        self._supervisor.start()

    def kill(self) -> None:
        """SIGKILL the running process (the supervisor starts a new one, as a Deployment)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self) -> None:
        self._stopping.set()
        if self._supervisor is not None:
            self._supervisor.join(timeout=5)
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
