"""Waking from the scheduler's side, and a wake that fails, on simulated (KWOK) nodes.

The session's local cluster (real API server, controller manager, KWOK), the energysched
scheduler as a process, and ``energysched power-manager`` as a process. Each test has its
own nodes, pinned by a label so that the session's other nodes never take its pods.
A KWOK node has no machine: its ``command`` sleep does nothing and its wake posts a fresh
Ready heartbeat (energysched_lab.kwok_power), which is what a real kubelet does on start.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from energysched.contract import (
    ASLEEP_TAINT_KEY,
    SCHEDULER_NAME,
    WAITING_FOR_NODE_WAKE_REASON,
    WAKE_REQUESTED_BY_ANNOTATION,
    WAKING_NODE_EVENT_REASON,
)
from energysched_lab.cluster.local import LocalCluster
from tests.support import Kubectl, SchedulerProcess

from .conftest import Manager, get_pod, kwok_control, node_annotations, running, state, taints, wait

Start = Callable[..., SchedulerProcess]


@pytest.fixture
def manager(local_cluster: LocalCluster, namespace: str, tmp_path: Path) -> Iterator[Manager]:
    with running(
        Manager(local_cluster, namespace, tmp_path / "power-manager.log", drainSettleSeconds=1)
    ) as m:
        yield m


def pod(name: str, group: str, cpu: str, scheduler: str = SCHEDULER_NAME) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "schedulerName": scheduler,
            "nodeSelector": {"power-test": group},
            "containers": [
                {
                    "name": "main",
                    "image": "registry.example/noop:1",
                    "resources": {"requests": {"cpu": cpu}},
                }
            ],
            "restartPolicy": "Never",
        },
    }


@pytest.mark.usefixtures("profile")
def test_an_energysched_pod_waits_for_its_node_and_is_bound_when_it_is_back(
    local_cluster: LocalCluster,
    kubectl: Kubectl,
    namespace: str,
    group: str,
    make_node: Callable[..., str],
    start_scheduler: Start,
    manager: Manager,
) -> None:
    make_node("small", "1")  # awake, not managed, too small for the pod
    big = make_node("big", "8", kwok_control(local_cluster, f"{group}-big"))
    start_scheduler()
    manager.start()
    wait("big asleep", lambda: state(kubectl, big) == "asleep", 120)
    assert ASLEEP_TAINT_KEY in taints(kubectl, big)

    kubectl("-n", namespace, "apply", "-f", "-", input=json.dumps(pod("job", group, "2")))

    def waiting() -> bool:
        conds = get_pod(kubectl, namespace, "job")["status"].get("conditions") or []
        return any(c.get("reason") == WAITING_FOR_NODE_WAKE_REASON for c in conds) or bool(
            get_pod(kubectl, namespace, "job")["spec"].get("nodeName")
        )

    wait("PodScheduled=False/WaitingForNodeWake (or already bound)", waiting, 60)
    assert node_annotations(kubectl, big).get(WAKE_REQUESTED_BY_ANNOTATION) == f"{namespace}/job"
    events = kubectl(
        "-n", namespace, "get", "events", "--field-selector", "involvedObject.name=job"
    )
    assert WAKING_NODE_EVENT_REASON in events, events

    bound = wait(
        "pod bound",
        lambda: get_pod(kubectl, namespace, "job")["spec"].get("nodeName"),
        120,
    )
    assert bound == big
    assert state(kubectl, big) == "awake" and ASLEEP_TAINT_KEY not in taints(kubectl, big)
    wait(
        "pod running",
        lambda: get_pod(kubectl, namespace, "job")["status"].get("phase") == "Running",
        60,
    )


@pytest.fixture
def plug() -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """A fake Shelly plug (Gen2, digest auth) as a process of its own, on loopback."""
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "energysched_lab.fake_shelly", "--gen", "2", "--port", "0",
            "--password-env", "FAKE_PLUG_PASSWORD",
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "FAKE_PLUG_PASSWORD": PLUG_PASSWORD},
    )  # fmt: skip
    assert proc.stdout is not None
    url = json.loads(proc.stdout.readline())["url"]
    yield url, proc
    if proc.poll() is None:
        proc.terminate()
        proc.wait(timeout=10)


PLUG_PASSWORD = "plug-Pa55word"


@pytest.mark.usefixtures("profile")
def test_unreachable_plug_then_the_pod_goes_elsewhere(
    local_cluster: LocalCluster,
    kubectl: Kubectl,
    namespace: str,
    group: str,
    make_node: Callable[..., str],
    manager: Manager,
    plug: tuple[str, subprocess.Popen[str]],
) -> None:
    """Two sleeping nodes fit the pod. The first sleeps by its plug's relay (the real fake
    plug, digest auth, the password in a Secret of the manager's namespace); then the plug
    goes away, so its wake fails: wake-failed, the taint stays on it, and the pod wakes the
    other node. kube-scheduler's pod: the manager wakes for other schedulers' pods too."""
    url, plug_proc = plug
    secret = f"--from-literal=password={PLUG_PASSWORD}"
    kubectl("-n", namespace, "create", "secret", "generic", "plug", secret)
    relay = json.dumps(
        {
            "method": "shelly-relay",
            "address": url,
            "credentialsSecret": f"{namespace}/plug",
            "haltFirst": False,
        }
    )
    first = make_node("a", "4", relay)  # ties are broken by name: "a" is tried first
    second = make_node("b", "4", kwok_control(local_cluster, f"{group}-b"))
    manager.start()
    wait("both asleep", lambda: state(kubectl, first) == "asleep" == state(kubectl, second), 120)
    state_of_plug = json.loads(urllib.request.urlopen(f"{url}/_fake/state", timeout=5).read())
    assert state_of_plug["relay_on"] is False  # the relay really went off
    plug_proc.terminate()  # the plug is gone (unplugged, Wi-Fi down)
    plug_proc.wait(timeout=10)

    kubectl(
        "-n", namespace, "apply", "-f", "-",
        input=json.dumps(pod("elsewhere", group, "2", scheduler="default-scheduler")),
    )  # fmt: skip
    wait("first wake-failed", lambda: state(kubectl, first) == "wake-failed", 120)
    assert ASLEEP_TAINT_KEY in taints(kubectl, first)
    bound = wait(
        "pod bound", lambda: get_pod(kubectl, namespace, "elsewhere")["spec"].get("nodeName"), 180
    )
    assert bound == second
    assert state(kubectl, second) == "awake" and ASLEEP_TAINT_KEY not in taints(kubectl, second)
    assert state(kubectl, first) == "wake-failed"  # retried with backoff when work asks again
