"""Consolidation on the real API server: the Eviction API, the ReplicaSet controller, the
disruption controller, kube-scheduler, KWOK nodes (the session's local cluster).

Each test has two KWOK nodes of its own: ``busy`` (opted in, the ``command`` method) runs a
Deployment's pod placed there before ``spare`` (not managed) exists; then the power manager
starts as a process with consolidation on (``podRestartJoules: 1`` so that a few seconds of
quiet are worth a restart; the profile's break-even is 2 s, hysteresis 1 s).

(a) Without a budget the pod is evicted, the ReplicaSet's replacement runs on ``spare``, and
``busy`` sleeps; the Deployment has run exactly one pod at the end, a bystander pod is
untouched. (b) A PodDisruptionBudget with ``maxUnavailable: 0`` blocks the drain: ``busy``
is never tainted, stays awake, its pod is the same one, and the manager says why (Warning
``DrainBlocked`` naming the budget, a log line, ``sleep_skipped_total{reason="drain-pdb"}``).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from energysched.contract import ASLEEP_TAINT_KEY
from energysched_lab.cluster.local import LocalCluster
from tests.support import Kubectl, eventually, scrape

from .conftest import Manager, kwok_control, running, state, taints

T = TypeVar("T")


@pytest.fixture
def manager(
    local_cluster: LocalCluster, namespace: str, tmp_path: Path, port: int
) -> Iterator[Manager]:
    with running(
        Manager(
            local_cluster,
            namespace,
            tmp_path / "power-manager.log",
            f"--metrics-address=127.0.0.1:{port}",
            drainSettleSeconds=1,
            consolidation={"enabled": True, "podRestartJoules": 1, "drainTimeoutSeconds": 60},
        ),
        tail=8000,
    ) as m:
        yield m


def deployment(name: str, group: str) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "nodeSelector": {"power-test": group},
                    "containers": [
                        {
                            "name": "c",
                            "image": "registry.k8s.io/pause:3.9",
                            "resources": {"requests": {"cpu": "500m", "memory": "64Mi"}},
                        }
                    ],
                },
            },
        },
    }


def pods_of(kubectl: Kubectl, namespace: str, app: str) -> list[dict[str, Any]]:
    out = kubectl("-n", namespace, "get", "pods", "-l", f"app={app}", "-o", "json")
    items: list[dict[str, Any]] = json.loads(out)["items"]
    return items


def running_on(pods: list[dict[str, Any]], node: str) -> list[dict[str, Any]]:
    return [
        p
        for p in pods
        if p["spec"].get("nodeName") == node
        and p["status"].get("phase") == "Running"
        and not p["metadata"].get("deletionTimestamp")
    ]


def node_events(kubectl: Kubectl, node: str, reason: str) -> list[str]:
    out = kubectl(
        "-n", "default", "get", "events.events.k8s.io", "-o", "json",
        "--field-selector", f"regarding.kind=Node,regarding.name={node},reason={reason}",
    )  # fmt: skip
    return [e.get("note", "") for e in json.loads(out)["items"]]


def _call(fn: Callable[[], T]) -> Callable[[], Awaitable[T]]:
    async def probe() -> T:
        return fn()

    return probe


async def _placed(kubectl: Kubectl, namespace: str, app: str, node: str) -> dict[str, Any]:
    (pod,) = await eventually(
        _call(lambda: running_on(pods_of(kubectl, namespace, app), node)),
        timeout=60,
        what=f"the {app} pod running on {node}",
        until=lambda ps: len(ps) == 1,
    )
    return pod


@pytest.mark.usefixtures("profile")
async def test_a_quiet_node_is_drained_its_pod_runs_elsewhere_and_it_sleeps(
    local_cluster: LocalCluster,
    kubectl: Kubectl,
    namespace: str,
    group: str,
    make_node: Callable[..., str],
    manager: Manager,
    port: int,
) -> None:
    busy = make_node("busy", "4", kwok_control(local_cluster, f"{group}-busy"))
    kubectl("-n", namespace, "apply", "-f", "-", input=json.dumps(deployment("web", group)))
    old = await _placed(kubectl, namespace, "web", busy)
    spare = make_node("spare", "4")
    bystander = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "bystander", "labels": {"app": "bystander"}},
        "spec": {
            "nodeName": spare,
            "containers": [{"name": "c", "image": "registry.k8s.io/pause:3.9"}],
        },
    }
    kubectl("-n", namespace, "apply", "-f", "-", input=json.dumps(bystander))
    by = await _placed(kubectl, namespace, "bystander", spare)
    manager.start()

    new = await _placed(kubectl, namespace, "web", spare)
    assert new["metadata"]["uid"] != old["metadata"]["uid"]
    await eventually(
        _call(lambda: state(kubectl, busy)),
        timeout=60,
        what=f"{busy} asleep once drained",
        until=lambda s: s == "asleep",
    )
    assert ASLEEP_TAINT_KEY in taints(kubectl, busy)

    # Every pod ran exactly once: one pod of the Deployment (the replacement, never
    # restarted), the evicted one gone, the bystander the same pod.
    pods = pods_of(kubectl, namespace, "web")
    assert [p["metadata"]["uid"] for p in pods] == [new["metadata"]["uid"]], pods
    restarts = [c.get("restartCount", 0) for c in pods[0]["status"]["containerStatuses"]]
    assert restarts == [0]
    (still,) = pods_of(kubectl, namespace, "bystander")
    assert still["metadata"]["uid"] == by["metadata"]["uid"]
    evicted = node_events(kubectl, busy, "PodEvicted")
    assert any(f"{namespace}/{old['metadata']['name']}" in n for n in evicted), evicted
    metrics = await scrape(port)
    assert metrics.get_sample("energysched_power_sleep_skipped_total", reason="drain-pdb") == 0
    assert "pod evicted" in manager.log.read_text()


@pytest.mark.usefixtures("profile")
async def test_a_budget_that_allows_no_disruption_blocks_the_drain(
    local_cluster: LocalCluster,
    kubectl: Kubectl,
    namespace: str,
    group: str,
    make_node: Callable[..., str],
    manager: Manager,
    port: int,
) -> None:
    busy = make_node("busy", "4", kwok_control(local_cluster, f"{group}-busy"))
    kubectl("-n", namespace, "apply", "-f", "-", input=json.dumps(deployment("guarded", group)))
    pdb = {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": "guarded"},
        "spec": {"maxUnavailable": 0, "selector": {"matchLabels": {"app": "guarded"}}},
    }
    kubectl("-n", namespace, "apply", "-f", "-", input=json.dumps(pdb))
    old = await _placed(kubectl, namespace, "guarded", busy)

    def budget() -> dict[str, Any]:
        out = kubectl("-n", namespace, "get", "pdb", "guarded", "-o", "json")
        status: dict[str, Any] = json.loads(out).get("status", {})
        return status

    # The disruption controller has seen the pod: the budget allows 0 disruptions.
    await eventually(
        _call(budget),
        timeout=60,
        what="the budget's status computed by the disruption controller",
        until=lambda s: s.get("expectedPods") == 1 and s.get("disruptionsAllowed") == 0,
    )
    make_node("spare", "4")
    manager.start()

    notes = await eventually(
        _call(lambda: node_events(kubectl, busy, "DrainBlocked")),
        timeout=60,
        what=f"a DrainBlocked Event on {busy}",
    )
    assert any(f"{namespace}/guarded" in n and "allows 0" in n for n in notes), notes
    await eventually(
        lambda: scrape(port),
        timeout=60,
        what="several passes that refuse the drain for the budget",
        until=lambda m: (
            m.get_sample("energysched_power_sleep_skipped_total", reason="drain-pdb") >= 3
        ),
        ignore=(OSError,),
    )
    assert state(kubectl, busy) == "awake" and ASLEEP_TAINT_KEY not in taints(kubectl, busy)
    (pod,) = pods_of(kubectl, namespace, "guarded")
    assert pod["metadata"]["uid"] == old["metadata"]["uid"]
    assert pod["spec"]["nodeName"] == busy and not pod["metadata"].get("deletionTimestamp")
    text = manager.log.read_text()
    assert "node not drained" in text and f"{namespace}/guarded" in text
    assert "pod evicted" not in text
