"""The whole cycle on the real kubelet node, driven by the real ``energysched power-manager``.

The node's power-control is the ``command`` method with energysched_lab.realnode_power as its
hook: "sleep" stops kubelet (the node goes NotReady after the cluster's 20 s grace period and
gets the unreachable taints), "wake" starts it again. Pods are kube-scheduler's: they are
Unschedulable while the node sleeps, and the manager wakes the node for them, as it does for
any scheduler's pods. Each test ends with every pod run exactly once and the node awake,
Ready and without our taint.

Faults: the manager killed mid-drain (SIGKILL while the node is ``draining``), the API server
down during a wake (SIGSTOP kube-apiserver while the node is ``waking``, SIGCONT in
``finally``), a node that never wakes (a wake hook that does nothing, then the right one: the
retry after the backoff wakes it).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from energysched.contract import (
    ASLEEP_TAINT_KEY,
    POWER_CONTROL_ANNOTATION,
    POWER_MANAGEMENT_LABEL,
    POWER_STATE_ANNOTATION,
    POWER_STATE_SINCE_ANNOTATION,
    WAKE_FAILURES_ANNOTATION,
    WAKE_REQUESTED_ANNOTATION,
    WAKE_REQUESTED_BY_ANNOTATION,
)
from energysched_lab.cluster import realnode
from energysched_lab.cluster.local import LocalCluster
from tests.eventually import eventually_sync
from tests.support import Kubectl

from .conftest import Manager, wait

NODE = realnode.NODE_NAME
PROFILE = {
    "apiVersion": "energy.thesis.io/v1alpha1",
    "kind": "EnergyProfile",
    "metadata": {"name": "realnode-power"},
    "spec": {
        "nodeSelector": {realnode.REAL_NODE_LABEL: "true"},
        "idlePowerWatts": 40,
        "workloads": {"training": {"performance": 10, "powerWatts": 80, "unit": "steps/s"}},
        # Simulated figures for the test: break-even 36 J / 36 W + 1 s = 2 s.
        "powerStates": {
            "sleepWatts": 4,
            "sleepKind": "suspend",
            "suspendSeconds": 1,
            "wakeSeconds": 10,
            "wakeJoules": 36,
        },
    },
}


def hook(cluster: LocalCluster, step: str, delay: float = 0) -> list[str]:
    module = "energysched_lab.realnode_power"
    return [sys.executable, "-m", module, step, "--cluster", cluster.name, f"--delay={delay}"]


def control(
    cluster: LocalCluster,
    wake: list[str] | None = None,
    sleep_delay: float = 0,
    wake_delay: float = 0,
) -> str:
    wake_argv = wake or hook(cluster, "wake", wake_delay)
    sleep_argv = hook(cluster, "sleep", sleep_delay)
    return json.dumps({"method": "command", "sleep": sleep_argv, "wake": wake_argv})


def annotate(pk: Kubectl, power_control: str) -> None:
    pk("annotate", "--overwrite", "node", NODE, f"{POWER_CONTROL_ANNOTATION}={power_control}")


@pytest.fixture
def ns(pk: Kubectl) -> Iterator[str]:
    name = f"p-{uuid.uuid4().hex[:8]}"
    pk("create", "namespace", name)
    yield name
    pk("delete", "namespace", name, "--wait=false")


@pytest.fixture
def opted_in(power_cluster: LocalCluster, pk: Kubectl) -> Iterator[None]:
    pk("apply", "-f", "-", input=json.dumps(PROFILE))
    pk(
        "annotate",
        "--overwrite",
        "node",
        NODE,
        f"{POWER_CONTROL_ANNOTATION}={control(power_cluster)}",
    )
    pk("label", "--overwrite", "node", NODE, f"{POWER_MANAGEMENT_LABEL}=enabled")
    yield
    # Whatever happened: the node opted out, kubelet running, our taint and state gone.
    pk("label", "node", NODE, f"{POWER_MANAGEMENT_LABEL}-")
    subprocess.run(hook(power_cluster, "wake"), check=False)
    wait("node Ready", lambda: ready(pk), 120)
    pk("taint", "node", NODE, f"{ASLEEP_TAINT_KEY}:NoSchedule-", check=False)
    for key in (
        POWER_STATE_ANNOTATION,
        POWER_STATE_SINCE_ANNOTATION,
        WAKE_REQUESTED_ANNOTATION,
        WAKE_REQUESTED_BY_ANNOTATION,
        WAKE_FAILURES_ANNOTATION,
    ):
        pk("annotate", "node", NODE, f"{key}-", check=False)


@pytest.fixture
def manager(power_cluster: LocalCluster, ns: str, tmp_path: Path) -> Iterator[Manager]:
    m = Manager(power_cluster, ns, tmp_path / "power-manager.log")
    yield m  # each test starts it once its node is set up
    m.stop()
    print(m.log.read_text()[-6000:])


def node(pk: Kubectl) -> dict[str, Any]:
    obj: dict[str, Any] = json.loads(pk("get", "node", NODE, "-o", "json"))
    return obj


def state(pk: Kubectl) -> str:
    return str(node(pk)["metadata"].get("annotations", {}).get(POWER_STATE_ANNOTATION, "awake"))


def taints(pk: Kubectl) -> list[str]:
    return [t["key"] for t in node(pk)["spec"].get("taints") or []]


def ready(pk: Kubectl) -> bool:
    conds = node(pk)["status"].get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conds)


def kubelet_alive(cluster: LocalCluster) -> bool:
    state_ = cluster.load_state()
    assert state_ is not None
    return any(p.name == "kubelet" and p.alive() for p in state_.processes)


def submit(pk: Kubectl, ns: str, name: str) -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "nodeSelector": {realnode.REAL_NODE_LABEL: "true"},
            "restartPolicy": "Never",
            "containers": [
                {
                    "name": "main",
                    "image": realnode.TOOL_IMAGE,
                    "imagePullPolicy": "Never",
                    "args": ["print", f"ran {name}"],
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": 65532,
                        "readOnlyRootFilesystem": True,
                        "allowPrivilegeEscalation": False,
                        "capabilities": {"drop": ["ALL"]},
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                }
            ],
        },
    }
    pk("apply", "-f", "-", input=json.dumps(pod))


def ran_once(pk: Kubectl, ns: str, name: str, timeout: float) -> None:
    def done() -> dict[str, Any] | None:
        obj = json.loads(pk("-n", ns, "get", "pod", name, "-o", "json"))
        return obj if obj["status"].get("phase") in ("Succeeded", "Failed") else None

    obj = wait(f"pod {name} finished", done, timeout)
    assert obj["status"]["phase"] == "Succeeded", obj["status"]
    assert [c["restartCount"] for c in obj["status"]["containerStatuses"]] == [0]
    assert pk("-n", ns, "logs", name).strip() == f"ran {name}"


def asleep_and_not_ready(pk: Kubectl, cluster: LocalCluster) -> None:
    wait("node asleep", lambda: state(pk) == "asleep", 90)
    assert ASLEEP_TAINT_KEY in taints(pk)
    assert not kubelet_alive(cluster)
    # The node lifecycle controller notices (20 s grace period in this cluster).
    wait("node NotReady", lambda: not ready(pk), 90)


def back_clean(pk: Kubectl) -> None:
    wait("node awake", lambda: state(pk) == "awake", 60)
    wait("unreachable taints gone", lambda: not taints(pk), 60)
    assert ready(pk)


def apiserver_pid(cluster: LocalCluster) -> int:
    state_ = cluster.load_state()
    assert state_ is not None
    return next(p.pid for p in state_.processes if p.name == "kube-apiserver")


@pytest.mark.usefixtures("opted_in")
def test_sleep_then_wake_for_a_pod(
    power_cluster: LocalCluster, pk: Kubectl, ns: str, manager: Manager
) -> None:
    manager.start()
    asleep_and_not_ready(pk, power_cluster)
    submit(pk, ns, "needs-the-node")
    ran_once(pk, ns, "needs-the-node", 240)
    back_clean(pk)
    events = pk("get", "events", "-n", "default", "--field-selector", f"involvedObject.name={NODE}")
    for reason in ("Draining", "Asleep", "Waking", "Awake"):
        assert reason in events, events


@pytest.mark.usefixtures("opted_in")
def test_api_server_down_during_a_wake(
    power_cluster: LocalCluster, pk: Kubectl, ns: str, manager: Manager
) -> None:
    annotate(pk, control(power_cluster, wake_delay=5))  # the wake hook takes 5 s
    manager.start()
    asleep_and_not_ready(pk, power_cluster)
    submit(pk, ns, "during-outage")

    def requested() -> bool:
        return WAKE_REQUESTED_BY_ANNOTATION in node(pk)["metadata"].get("annotations", {})

    wait("wake requested", requested, 120)
    # The manager is now running the wake hook; its next writes meet a stopped API server.
    pid = apiserver_pid(power_cluster)
    os.kill(pid, signal.SIGSTOP)
    try:
        # The outage lasts until it has hit the manager: it cannot renew its Lease and
        # exits (kubelet retries meanwhile too).
        eventually_sync(
            lambda: (
                manager.starts >= 2
                or (manager.proc is not None and manager.proc.poll() is not None)
            ),
            timeout=90,
            what="the manager to lose its Lease while the API server is stopped",
        )
    finally:
        os.kill(pid, signal.SIGCONT)
    ran_once(pk, ns, "during-outage", 240)
    back_clean(pk)
    # It lost its Lease during the outage and exited; its replacement finished the wake.
    assert manager.starts >= 2


@pytest.mark.usefixtures("opted_in")
def test_manager_killed_mid_drain(
    power_cluster: LocalCluster, pk: Kubectl, ns: str, manager: Manager
) -> None:
    annotate(pk, control(power_cluster, sleep_delay=8))  # `draining` for 8 s at least
    manager.start()
    wait("node draining", lambda: state(pk) == "draining", 90)
    manager.kill()  # SIGKILL: no release of the Lease, no clean-up
    assert state(pk) in ("draining", "asleep") and ASLEEP_TAINT_KEY in taints(pk)
    # Its replacement (started by the supervisor, as by the Deployment) takes the Lease
    # once it expires and continues from the node's state.
    asleep_and_not_ready(pk, power_cluster)
    submit(pk, ns, "after-restart")
    ran_once(pk, ns, "after-restart", 240)
    back_clean(pk)


@pytest.mark.usefixtures("opted_in")
def test_a_node_that_never_wakes_then_does(
    power_cluster: LocalCluster, pk: Kubectl, ns: str, manager: Manager
) -> None:
    manager.start()
    asleep_and_not_ready(pk, power_cluster)
    dud = control(power_cluster, wake=["true"])  # "wakes" without doing anything
    annotate(pk, dud)
    submit(pk, ns, "patient")
    # wakeSeconds 10 x 2 + 10 s margin: wake-failed after 30 s; the taint stays on.
    wait("wake-failed", lambda: state(pk) == "wake-failed", 120)
    assert ASLEEP_TAINT_KEY in taints(pk)
    phase = json.loads(pk("-n", ns, "get", "pod", "patient", "-o", "json"))["status"]["phase"]
    assert phase == "Pending"
    pk(
        "annotate",
        "--overwrite",
        "node",
        NODE,
        f"{POWER_CONTROL_ANNOTATION}={control(power_cluster)}",
    )
    ran_once(pk, ns, "patient", 240)  # retried after the backoff (5 s): wakes for real
    back_clean(pk)
