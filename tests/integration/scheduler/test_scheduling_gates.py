"""Scheduling gates on the real API server: a gated pod waits with SchedulingGated,
is never attempted, and binds once its gates are removed."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from energysched import contract
from energysched.kube.client import KubeClient, api_path
from tests.support import SchedulerProcess, pod_manifest, wait_for


def gated_pod(name: str, *gates: str) -> dict[str, Any]:
    return pod_manifest(
        name,
        schedulerName=contract.SCHEDULER_NAME,
        metadata={"labels": {contract.WORKLOAD_TYPE_LABEL: "training"}},
        schedulingGates=[{"name": g} for g in gates],
    )


def pod_scheduled(pod: dict[str, Any]) -> dict[str, Any] | None:
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "PodScheduled":
            return dict(cond)
    return None


async def test_gated_pods_wait_with_scheduling_gated_and_bind_once_ungated(
    kube: KubeClient, namespace: str, start_scheduler: Callable[..., SchedulerProcess]
) -> None:
    sched = start_scheduler(mode="normalized")
    pods = api_path("v1", "pods", namespace)
    await kube.create(pods, gated_pod("gated", "example.com/quota", "example.com/other"))
    await kube.create(pods, gated_pod("free"))  # no gates: the control
    await wait_for(lambda: _node(kube, namespace, "free"), 30, "the ungated pod to be bound")
    await asyncio.sleep(2.0)  # time for a wrong attempt to show
    pod = await kube.get(f"{pods}/gated")
    assert not pod["spec"].get("nodeName")
    cond = pod_scheduled(pod)
    assert cond is not None and (cond["status"], cond["reason"]) == ("False", "SchedulingGated")
    mentions = [ln for ln in sched.log().splitlines() if f"{namespace}/gated" in ln]
    assert mentions and all("pod gated: not attempted" in ln for ln in mentions), mentions
    events = (await kube.get(api_path("events.k8s.io/v1", "events", namespace)))["items"]
    assert not [e for e in events if e["regarding"]["name"] == "gated"]

    # Gates can only be removed; one at a time, as a queueing controller would.
    await kube.patch(f"{pods}/gated", [{"op": "remove", "path": "/spec/schedulingGates/0"}], "json")
    await asyncio.sleep(1.5)
    assert not (await kube.get(f"{pods}/gated"))["spec"].get("nodeName")  # one gate left
    await kube.patch(f"{pods}/gated", [{"op": "remove", "path": "/spec/schedulingGates"}], "json")
    node = await wait_for(lambda: _node(kube, namespace, "gated"), 30, "the ungated pod bound")
    assert node
    cond = pod_scheduled(await kube.get(f"{pods}/gated"))
    assert cond is not None and cond["status"] == "True"
    assert sched.log().count(f'"pod": "{namespace}/gated"') >= 1
    bound = [ln for ln in sched.log().splitlines() if '"bound"' in ln and "/gated" in ln]
    assert len(bound) == 1


async def _node(kube: KubeClient, ns: str, name: str) -> str | None:
    pod = await kube.get(api_path("v1", "pods", ns, name))
    node: str | None = pod["spec"].get("nodeName")
    return node
