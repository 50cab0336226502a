"""Scheduling gates on the real API server: a gated pod waits with SchedulingGated,
is never attempted, and binds once its gates are removed.

"Not bound" is only checked after a positive witness that the scheduler handled the
gated pod: a pod created after it was bound, and the scheduler's own gauge of gated
pods (energysched_pending_pods{queue="gated"}) counts it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from energysched import contract
from energysched.kube.client import KubeClient, api_path
from energysched_lab.cluster.processes import free_port
from tests.eventually import eventually
from tests.support import SchedulerProcess, pod_manifest, scrape, wait_for


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
    port = free_port()
    sched = start_scheduler(mode="normalized", metrics_port=port)
    pods = api_path("v1", "pods", namespace)
    await kube.create(pods, gated_pod("gated", "example.com/quota", "example.com/other"))
    # The witness: created after "gated", so the scheduler's one pod watch delivers it
    # after; once it is bound, the scheduler has handled "gated" (and its queue has
    # been popped since, which sets the gated-pods gauge).
    await kube.create(pods, gated_pod("free"))
    await wait_for(lambda: _node(kube, namespace, "free"), 30, "the ungated pod to be bound")
    assert await _gated_held(port) == 1
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
    # Witness again: a pod created after the patch is bound, so the update was handled.
    await kube.create(pods, gated_pod("free-2"))
    await wait_for(lambda: _node(kube, namespace, "free-2"), 30, "the second control bound")
    assert await _gated_held(port) == 1  # one gate left: still held
    assert not (await kube.get(f"{pods}/gated"))["spec"].get("nodeName")
    await kube.patch(f"{pods}/gated", [{"op": "remove", "path": "/spec/schedulingGates"}], "json")
    node = await wait_for(lambda: _node(kube, namespace, "gated"), 30, "the ungated pod bound")
    cond = pod_scheduled(await kube.get(f"{pods}/gated"))
    assert cond is not None and cond["status"] == "True"

    # The API shows the bind as soon as the Binding POST lands; the scheduler logs it
    # once the reply reaches it, so its line is awaited, not read at once (a loaded
    # machine showed the gap).
    async def bound_lines() -> list[str]:
        return [ln for ln in sched.log().splitlines() if '"bound"' in ln and "/gated" in ln]

    bound = await eventually(bound_lines, timeout=30, what="the scheduler's bound line")
    assert len(bound) == 1 and f'"node": "{node}"' in bound[0], (node, bound)
    assert await _gated_held(port) == 0


async def _gated_held(port: int) -> float:
    """The scheduler's gauge of pods it holds back for their gates (set on every pop)."""
    return (await scrape(port)).get_sample("energysched_pending_pods", queue="gated")


async def _node(kube: KubeClient, ns: str, name: str) -> str | None:
    pod = await kube.get(api_path("v1", "pods", ns, name))
    node: str | None = pod["spec"].get("nodeName")
    return node
