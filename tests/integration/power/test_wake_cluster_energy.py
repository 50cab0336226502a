"""cluster-energy weighs a sleeping node's wake, on the real API server (KWOK nodes).

The session's local cluster (real API server, controller manager, KWOK), the energysched
scheduler in ``cluster-energy`` mode as a process, and ``energysched power-manager`` as a
process. A slow node that never sleeps and a fast one the manager puts to sleep; which of
them a training pod gets depends on whether the fast node's wake pays for itself.
A KWOK node has no machine: its ``command`` sleep does nothing and its wake posts a fresh
Ready heartbeat (energysched_lab.kwok_power), which is what a real kubelet does on start.
(The nodes and helpers are this file's own: test_wake_kwok.py has the policy's wakes.)
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from energysched.contract import (
    API_VERSION,
    ASLEEP_TAINT_KEY,
    PERFORMANCE_WEIGHT_ANNOTATION,
    PROFILE_KIND,
    SCHEDULER_NAME,
    WAITING_FOR_NODE_WAKE_REASON,
    WAKE_REQUESTED_BY_ANNOTATION,
    WAKING_NODE_EVENT_REASON,
    WORK_ANNOTATION,
    WORKLOAD_TYPE_LABEL,
)
from energysched_lab.cluster.local import LocalCluster
from tests.support import Kubectl, SchedulerProcess

from .conftest import Manager, get_pod, kwok_control, node_annotations, running, state, taints, wait

Start = Callable[..., SchedulerProcess]


@pytest.fixture
def manager(local_cluster: LocalCluster, namespace: str, tmp_path: Path) -> Iterator[Manager]:
    with running(Manager(local_cluster, namespace, tmp_path / "power-manager.log")) as m:
        yield m


def training_pod(name: str, group: str, work: float) -> dict[str, Any]:
    """A training pod of ``work`` units, weight 0 (energy alone decides)."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "labels": {WORKLOAD_TYPE_LABEL: "training"},
            "annotations": {WORK_ANNOTATION: f"{work:g}", PERFORMANCE_WEIGHT_ANNOTATION: "0"},
        },
        "spec": {
            "schedulerName": SCHEDULER_NAME,
            "nodeSelector": {"power-test": group},
            "containers": [
                {
                    "name": "main",
                    "image": "registry.example/noop:1",
                    "resources": {"requests": {"cpu": "1"}},
                }
            ],
            "restartPolicy": "Never",
        },
    }


#: Two node classes of the test's own (simulated figures), for training only. ``slow`` has
#: no power states (it never sleeps); ``fast`` is 10x faster, and its wake costs 36 J and
#: 8 s. The scheduler charges a woken node its hold too: the least time the manager keeps
#: it awake, break-even 36 J / (40 - 4) W + 1 s suspend + the default 120 s hysteresis =
#: 122 s, at 36 W above its sleep power: 4,392 J.
CLASS_FIGURES: dict[str, dict[str, Any]] = {
    "slow": {"idlePowerWatts": 40.0, "training": (1.0, 80.0)},
    "fast": {
        "idlePowerWatts": 40.0,
        "training": (10.0, 80.0),
        "powerStates": {
            "sleepWatts": 4.0,
            "sleepKind": "suspend",
            "suspendSeconds": 1,
            "wakeSeconds": 8,
            "wakeJoules": 36,
        },
    },
}


@pytest.fixture
def class_profiles(kubectl: Kubectl, knowledge_base: None, group: str) -> Iterator[None]:
    names = []
    for cls, figures in CLASS_FIGURES.items():
        perf, watts = figures["training"]
        spec: dict[str, Any] = {
            "nodeSelector": {"power-class": f"{group}-{cls}"},
            "idlePowerWatts": figures["idlePowerWatts"],
            "workloads": {"training": {"performance": perf, "powerWatts": watts}},
        }
        if "powerStates" in figures:
            spec["powerStates"] = figures["powerStates"]
        name = f"{group}-{cls}"
        body = {
            "apiVersion": API_VERSION,
            "kind": PROFILE_KIND,
            "metadata": {"name": name},
            "spec": spec,
        }
        kubectl("apply", "-f", "-", input=json.dumps(body))
        names.append(name)
    yield
    for name in names:
        kubectl("delete", "energyprofile", name, "--wait=false", check=False)


def events_of(kubectl: Kubectl, ns: str, pod_name: str) -> list[dict[str, Any]]:
    out = kubectl(
        "-n", ns, "get", "events", "--field-selector", f"involvedObject.name={pod_name}",
        "-o", "json",
    )  # fmt: skip
    items: list[dict[str, Any]] = json.loads(out)["items"]
    return items


@pytest.mark.usefixtures("class_profiles")
def test_cluster_energy_wakes_its_cheapest_node_only_when_the_wake_pays(
    local_cluster: LocalCluster,
    kubectl: Kubectl,
    namespace: str,
    group: str,
    make_node: Callable[..., str],
    start_scheduler: Start,
    manager: Manager,
) -> None:
    """A slow awake node and a fast sleeping one; both fit every pod.

    A short job (10 units: 10 s on slow, 1 s on fast) stays on the slow awake node: awake,
    fast would cost 40 J against slow's 400 J, but its wake adds 36 J + the 4,392 J hold
    (and 8 s before it starts). A long job (1,000 units: 1,000 s on slow, 100 s on fast)
    wakes the fast node: 36 + 4,000 + 36 W x (100 + 122) s = 12,028 J against slow's
    40,000 J of dynamic energy alone. Both hold for any cluster idle power below about
    4,000 W (the extension terms: the session's other nodes add their idle power) and any
    backlog elsewhere (which only shortens both extensions).
    """
    # 8 CPUs each; "power-class" picks each node's profile (class_profiles).
    slow = make_node("slow", "8", labels={"power-class": f"{group}-slow"})
    fast = make_node(
        "fast",
        "8",
        kwok_control(local_cluster, f"{group}-fast"),
        labels={"power-class": f"{group}-fast"},
    )
    start_scheduler(mode="cluster-energy")
    manager.start()
    wait("fast asleep", lambda: state(kubectl, fast) == "asleep", 120)

    # the short job: the wake does not pay, the awake slow node takes it
    kubectl("-n", namespace, "apply", "-f", "-", input=json.dumps(training_pod("short", group, 10)))
    bound = wait(
        "short bound", lambda: get_pod(kubectl, namespace, "short")["spec"].get("nodeName"), 60
    )
    assert bound == slow
    scheduled = wait(
        "Scheduled event",
        lambda: [e for e in events_of(kubectl, namespace, "short") if e["reason"] == "Scheduled"],
        30,
    )
    note = scheduled[0]["message"]
    # the sleeping node was scored, with its wake terms, and lost
    assert f"runner-up {fast}: asleep, to wake" in note, note
    assert "wake 36 J" in note, note
    assert state(kubectl, fast) == "asleep"
    assert WAKE_REQUESTED_BY_ANNOTATION not in node_annotations(kubectl, fast)

    # the long job: the fast sleeping node is its cheapest placement, wake included
    kubectl(
        "-n", namespace, "apply", "-f", "-", input=json.dumps(training_pod("long", group, 1000))
    )

    def waiting() -> Any:
        got = get_pod(kubectl, namespace, "long")
        conds = got["status"].get("conditions") or []
        return [c for c in conds if c.get("reason") == WAITING_FOR_NODE_WAKE_REASON] or got[
            "spec"
        ].get("nodeName")

    seen = wait("PodScheduled=False/WaitingForNodeWake (or already bound)", waiting, 60)
    if isinstance(seen, list):  # the condition, unless the node woke before we looked
        assert seen[0]["status"] == "False" and seen[0]["type"] == "PodScheduled"
        assert f"Waking node {fast} for {namespace}/long, its best placement" in seen[0]["message"]
    assert node_annotations(kubectl, fast).get(WAKE_REQUESTED_BY_ANNOTATION) == f"{namespace}/long"
    waking = wait(
        "WakingNode event",
        lambda: [
            e
            for e in events_of(kubectl, namespace, "long")
            if e["reason"] == WAKING_NODE_EVENT_REASON
        ],
        30,
    )
    assert f"Waking node {fast}" in waking[0]["message"] and "wake 36 J" in waking[0]["message"]

    bound = wait(
        "long bound", lambda: get_pod(kubectl, namespace, "long")["spec"].get("nodeName"), 120
    )
    assert bound == fast
    assert state(kubectl, fast) == "awake" and ASLEEP_TAINT_KEY not in taints(kubectl, fast)
    assert get_pod(kubectl, namespace, "short")["spec"]["nodeName"] == slow
