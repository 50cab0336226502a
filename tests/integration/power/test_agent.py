"""The node agent as a process against the real API server, with a fake logind on a private
D-Bus daemon (nothing is suspended): it suspends only a node that the manager asked to sleep,
that carries our taint, and that runs no workload pod."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from energysched.contract import (
    ASLEEP_TAINT_KEY,
    KWOK_NODE_ANNOTATION,
    POWER_STATE_ANNOTATION,
    SLEEP_REQUESTED_ANNOTATION,
)
from energysched_lab.cluster.local import LocalCluster
from energysched_lab.fake_logind import FakeLogind
from tests.eventually import eventually_sync
from tests.support import ROOT, Kubectl


@pytest.fixture
def logind(tmp_path: Path) -> Iterator[FakeLogind]:
    # A component CI installs (.ci/run): missing, the test fails and says so.
    assert shutil.which("dbus-daemon"), "dbus-daemon is not installed (Debian: dbus-daemon)"
    bus = FakeLogind(tmp_path)
    bus.start()
    yield bus
    bus.stop()


@pytest.fixture
def node(kubectl: Kubectl) -> Iterator[str]:
    name = f"agent-{uuid.uuid4().hex[:6]}"
    body = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {"kubernetes.io/hostname": name, "type": "kwok"},
            "annotations": {KWOK_NODE_ANNOTATION: "fake"},
        },
        "status": {"allocatable": {"cpu": "2", "memory": "2Gi", "pods": "10"}},
    }
    kubectl("apply", "-f", "-", input=json.dumps(body))
    yield name
    kubectl("delete", "node", name, "--wait=false", check=False)


@pytest.fixture
def agent(
    local_cluster: LocalCluster, node: str, logind: FakeLogind, tmp_path: Path
) -> Iterator[None]:
    log = tmp_path / "agent.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                str(ROOT / ".venv" / "bin" / "energysched"), "power-agent",
                f"--kubeconfig={local_cluster.kubeconfig}", f"--node={node}",
                f"--bus={logind.address}", "--health-address=",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    yield
    proc.terminate()
    proc.wait(timeout=15)
    print(log.read_text()[-4000:])


def now() -> str:
    # Microseconds: two requests in one second must differ, or the second is no node update
    # and the agent (which acts on node events) never sees it.
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def request(kubectl: Kubectl, node: str, action: str = "suspend") -> None:
    kubectl(
        "annotate", "--overwrite", "node", node,
        f"{POWER_STATE_ANNOTATION}=draining", f"{SLEEP_REQUESTED_ANNOTATION}={now()} {action}",
    )  # fmt: skip


def calls_after(logind: FakeLogind, count: int) -> list[tuple[str, bool]]:
    """The calls, once there are ``count`` of them (a condition, not a wait for time)."""
    return eventually_sync(
        lambda: list(logind.calls),
        until=lambda calls: len(calls) >= count,
        timeout=30,
        what=f"{count} call(s) on the fake logind",
    )


def refused(log: Path, why: str) -> None:
    """The positive witness of a negative check: the agent looked and logged why not."""
    eventually_sync(
        lambda: log.read_text().count(why),
        timeout=30,
        what=f"the agent to log {why!r}",
    )


@pytest.mark.usefixtures("agent")
def test_suspends_a_tainted_empty_node_once(
    kubectl: Kubectl, node: str, logind: FakeLogind, tmp_path: Path
) -> None:
    kubectl("taint", "node", node, f"{ASLEEP_TAINT_KEY}=:NoSchedule")
    request(kubectl, node)
    assert calls_after(logind, 1) == [("Suspend", False)]
    kubectl("label", "--overwrite", "node", node, "touched=yes")  # an update: no second call
    # The witness that the agent looked after that update: a later, new request that it
    # refuses (no taint) is logged; node events are handled in order.
    kubectl("taint", "node", node, f"{ASLEEP_TAINT_KEY}:NoSchedule-")
    request(kubectl, node, "poweroff")
    refused(tmp_path / "agent.log", "the node lacks the asleep taint")
    assert logind.calls == [("Suspend", False)]


@pytest.mark.usefixtures("agent")
def test_refuses_without_the_taint_and_with_a_pod(
    kubectl: Kubectl, node: str, logind: FakeLogind, namespace: str, tmp_path: Path
) -> None:
    log = tmp_path / "agent.log"
    request(kubectl, node)  # no taint
    refused(log, "the node lacks the asleep taint")
    assert logind.calls == []
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "stays", "namespace": namespace},
        "spec": {
            "nodeName": node,
            "tolerations": [{"operator": "Exists"}],
            "containers": [{"name": "c", "image": "registry.example/noop:1"}],
        },
    }
    kubectl("apply", "-f", "-", input=json.dumps(pod))
    kubectl("taint", "node", node, f"{ASLEEP_TAINT_KEY}=:NoSchedule")
    request(kubectl, node, "poweroff")
    refused(log, f"pods run on the node: {namespace}/stays")  # a workload pod is bound: never
    assert logind.calls == []
    kubectl("-n", namespace, "delete", "pod", "stays", "--grace-period=0", "--force")
    request(kubectl, node, "poweroff")  # a new request, on an empty node
    assert calls_after(logind, 1) == [("PowerOff", False)]
