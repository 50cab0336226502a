"""Fixtures of the power tests. `power_cluster`: a local cluster of its own with the real
kubelet node and no KWOK nodes; `make_node`, `profile`: KWOK nodes of a test's own in the
session's local cluster; `Manager`: the power manager as a process, with its config file.

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

import contextlib
import json
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from energysched.contract import (
    API_VERSION,
    KWOK_NODE_ANNOTATION,
    POWER_CONTROL_ANNOTATION,
    POWER_MANAGEMENT_LABEL,
    POWER_STATE_ANNOTATION,
    PROFILE_KIND,
)
from energysched_lab.cluster import local, realnode
from energysched_lab.cluster.local import LocalCluster
from energysched_lab.cluster.processes import free_port
from tests.eventually import eventually_sync
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


#: The tests' tunables: fast passes, no hysteresis, no headroom (each test has its own nodes).
TEST_CONFIG: dict[str, object] = {
    "intervalSeconds": 1,
    "hysteresisSeconds": 1,
    "minAwakeNodes": 0,
    "minFreeFraction": 0,
    "wakeBackoffSeconds": 5,
    "wakeTimeoutMarginSeconds": 10,
}


class Manager:
    """``energysched power-manager`` as a process of its own (leader-elected, in ``ns``),
    restarted when it exits, as its Deployment's pod would be: it exits on purpose when it
    loses its Lease (e.g. the API server was unreachable for longer than the renew deadline).

    Its config file (``config``: TEST_CONFIG with ``settings`` over it) lives beside the
    log; :meth:`configure` rewrites it, as an edit of the ConfigMap would (no restart).
    """

    def __init__(
        self, cluster: LocalCluster, ns: str, log: Path, *extra: str, **settings: object
    ) -> None:
        self.cluster, self.ns, self.log, self.extra = cluster, ns, log, extra
        self.config = log.with_name(f"{log.stem}-config.yaml")
        self.configure(**settings)
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self._stopping = threading.Event()
        self._supervisor: threading.Thread | None = None

    def configure(self, **settings: object) -> None:
        """Write the config file: TEST_CONFIG, then ``settings`` (camelCase keys) over it.
        Written aside and renamed into place, as the kubelet swaps a ConfigMap volume."""
        aside = self.config.with_suffix(".tmp")
        aside.write_text(json.dumps({**TEST_CONFIG, **settings}))
        aside.replace(self.config)

    def _spawn(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [
                    str(ROOT / ".venv" / "bin" / "energysched"),
                    "power-manager",
                    f"--kubeconfig={self.cluster.kubeconfig}",
                    f"--namespace={self.ns}",
                    f"--config={self.config}",
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


@contextlib.contextmanager
def running(manager: Manager, tail: int = 6000) -> Iterator[Manager]:
    """A test's manager: stopped at the end, the tail of its log printed for a failure."""
    try:
        yield manager
    finally:
        manager.stop()
        print(manager.log.read_text()[-tail:])


@pytest.fixture
def port() -> int:
    return free_port()


# -- KWOK nodes of a test's own (the session's local cluster) --------------------------------


@pytest.fixture
def group() -> str:
    return f"pw-{uuid.uuid4().hex[:6]}"


@pytest.fixture
def make_node(kubectl: Kubectl, group: str) -> Iterator[Callable[..., str]]:
    created: list[str] = []

    def make(
        suffix: str,
        cpu: str,
        power_control: str | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> str:
        """A KWOK node ``<group>-<suffix>`` with ``cpu`` CPUs; ``power_control``: managed."""
        name = f"{group}-{suffix}"
        labels = {
            **(labels or {}),
            "kubernetes.io/hostname": name,
            "power-test": group,
            "type": "kwok",
        }
        # Its Ready heartbeat is posted by the wake hook, as a kubelet's on start (KWOK's
        # node-asleep stage, for the simulation, leaves such nodes alone).
        labels["kwok.energysched.local/liveness"] = "posted"
        annotations = {KWOK_NODE_ANNOTATION: "fake"}
        if power_control is not None:
            labels[POWER_MANAGEMENT_LABEL] = "enabled"
            annotations[POWER_CONTROL_ANNOTATION] = power_control
        node = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": name, "labels": labels, "annotations": annotations},
            "status": {
                "capacity": {"cpu": cpu, "memory": "8Gi", "pods": "110"},
                "allocatable": {"cpu": cpu, "memory": "8Gi", "pods": "110"},
            },
        }
        kubectl("apply", "-f", "-", input=json.dumps(node))
        created.append(name)
        return name

    yield make
    for name in created:
        kubectl("delete", "node", name, "--wait=false", check=False)


@pytest.fixture
def profile(kubectl: Kubectl, knowledge_base: None, group: str) -> Iterator[None]:
    body = {
        "apiVersion": API_VERSION,
        "kind": PROFILE_KIND,
        "metadata": {"name": group},
        "spec": {
            "nodeSelector": {"power-test": group},
            "idlePowerWatts": 40.0,
            "workloads": {
                "training": {"performance": 10.0, "powerWatts": 80.0},
                "inference": {"performance": 30.0, "powerWatts": 60.0},
                "sequential": {"performance": 2.0, "powerWatts": 50.0},
            },
            # simulated figures: break-even 36 J / 36 W + 1 s = 2 s
            "powerStates": {
                "sleepWatts": 4.0,
                "sleepKind": "suspend",
                "suspendSeconds": 1,
                "wakeSeconds": 5,
                "wakeJoules": 36,
            },
        },
    }
    kubectl("apply", "-f", "-", input=json.dumps(body))
    yield
    kubectl("delete", "energyprofile", group, "--wait=false", check=False)


def kwok_control(cluster: LocalCluster, node: str) -> str:
    wake = [
        sys.executable, "-m", "energysched_lab.kwok_power", "wake",
        f"--kubeconfig={cluster.kubeconfig}", f"--node={node}",
    ]  # fmt: skip
    return json.dumps({"method": "command", "sleep": ["true"], "wake": wake})


def node_annotations(kubectl: Kubectl, node: str) -> dict[str, str]:
    obj = json.loads(kubectl("get", "node", node, "-o", "json"))
    result: dict[str, str] = obj["metadata"].get("annotations", {})
    return result


def state(kubectl: Kubectl, node: str) -> str:
    return node_annotations(kubectl, node).get(POWER_STATE_ANNOTATION, "awake")


def taints(kubectl: Kubectl, node: str) -> list[str]:
    obj = json.loads(kubectl("get", "node", node, "-o", "json"))
    return [t["key"] for t in obj["spec"].get("taints") or []]


def get_pod(kubectl: Kubectl, ns: str, name: str) -> dict[str, Any]:
    obj: dict[str, Any] = json.loads(kubectl("-n", ns, "get", "pod", name, "-o", "json"))
    return obj


def wait(what: str, check: Callable[[], Any], timeout: float) -> Any:
    """The suite's one "eventually", in these tests' argument order."""
    return eventually_sync(check, timeout=timeout, what=what)
