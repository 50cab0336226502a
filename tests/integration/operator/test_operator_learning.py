"""Learning from finished pods against the real control plane: status.learned, pod energy.

KWOK runs the pods (``simulated-duration``: Running, then Succeeded with the container's
``startedAt``/``finishedAt``); the test publishes the node's power as the monitor does,
every half second, so the readings cover each run.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import UTC, datetime
from typing import Any

from energysched import contract
from energysched.kube.client import KubeClient, api_path
from energysched.operator.learning import POD_ENERGY_ANNOTATION
from energysched.operator.runtime import OperatorRuntime
from tests.integration.operator.conftest import TEST_TAINT, ClusterObjects
from tests.support import Kubectl, wait_for

TIMEOUT = 60


def pod_manifest(name: str, node: str, work: str | None) -> dict[str, Any]:
    annotations = {contract.SIMULATED_DURATION_ANNOTATION: "3s"}
    if work is not None:
        annotations[contract.WORK_ANNOTATION] = work
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": "default",
            "labels": {contract.WORKLOAD_TYPE_LABEL: "training"},
            "annotations": annotations,
        },
        "spec": {
            "nodeName": node,
            "tolerations": [{"key": TEST_TAINT["key"], "operator": "Exists"}],
            "containers": [{"name": "work", "image": "busybox"}],
        },
    }


async def publish_power(kube: KubeClient, node: str, watts: float, stop: asyncio.Event) -> None:
    path = api_path("v1", "nodes", name=node)
    while not stop.is_set():
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        await kube.patch(
            path,
            {
                "metadata": {
                    "annotations": {
                        contract.CURRENT_WATTS_ANNOTATION: f"{watts}",
                        contract.CURRENT_WATTS_TIMESTAMP_ANNOTATION: now,
                        contract.POWER_SOURCE_ANNOTATION: "shelly",
                    }
                }
            },
        )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.5)


async def test_finished_pods_teach_the_profile_and_get_their_energy(
    kube: KubeClient, operator: OperatorRuntime, objects: ClusterObjects, kubectl: Kubectl
) -> None:
    node = await objects.node("learner")
    profile = await objects.profile("learner", {"kubernetes.io/hostname": node})
    stop = asyncio.Event()
    publisher = asyncio.create_task(publish_power(kube, node, 12.0, stop))
    pods = api_path("v1", "pods", "default")
    names = [f"learn-{uuid.uuid4().hex[:6]}", f"nowork-{uuid.uuid4().hex[:6]}"]
    rejected_before = operator.collector.rejections.get("no-work", 0)
    try:
        # A reading before the first run starts: pod timestamps have whole seconds, so
        # the runs begin in a later second than the node's first reading.
        async def first_reading() -> float | None:
            obj = await kube.get(api_path("v1", "nodes", name=node))
            stamp = ((obj.get("metadata") or {}).get("annotations") or {}).get(
                contract.CURRENT_WATTS_TIMESTAMP_ANNOTATION
            )
            return datetime.fromisoformat(stamp).timestamp() if stamp else None

        first = await wait_for(first_reading, TIMEOUT, "the node's first power reading")

        async def a_later_second() -> bool:
            return int(datetime.now(UTC).timestamp()) > int(first)

        await wait_for(a_later_second, 5, "the clock to pass the reading's second")
        await kube.create(pods, pod_manifest(names[0], node, "30"))
        await kube.create(pods, pod_manifest(names[1], node, None))

        async def learned() -> dict[str, Any] | None:
            obj = await kube.get(
                api_path(contract.API_VERSION, contract.PROFILE_PLURAL, name=profile)
            )
            block = (obj.get("status") or {}).get("learned") or {}
            entry = (block.get("workloads") or {}).get("training") or {}
            return entry if entry.get("performanceObservations", 0) >= 1 else None

        entry = await wait_for(learned, TIMEOUT, "status.learned with a training observation")
        # 30 steps in ~3 s (whole-second stamps): far from the spec's 50 steps/s.
        assert entry["specPerformance"] == 50
        assert 3 <= entry["performance"] < 50
        assert entry["performanceUncertainty"] < 2

        async def annotated() -> str | None:
            obj = await kube.get(api_path("v1", "pods", "default", name=names[0]))
            value = ((obj.get("metadata") or {}).get("annotations") or {}).get(
                POD_ENERGY_ANNOTATION
            )
            return value if isinstance(value, str) else None

        joules = float(await wait_for(annotated, TIMEOUT, "the pod's energy annotation"))
        assert 0 < joules < 12.0 * 10  # at most the node's 12 W over the run and a margin

        async def event() -> dict[str, Any] | None:
            items = (await kube.get(api_path("events.k8s.io/v1", "events", "default")))["items"]
            for e in items:
                if (e.get("regarding") or {}).get("name") == names[0] and e.get(
                    "reason"
                ) == "EnergyAttributed":
                    return dict(e)
            return None

        ev = await wait_for(event, TIMEOUT, "an EnergyAttributed event on the pod")
        assert "J" in ev["note"] and "observed on profile" in ev["note"]

        async def counted() -> bool:
            return operator.collector.rejections.get("no-work", 0) > rejected_before

        await wait_for(counted, TIMEOUT, "the pod without work counted as no-work")
        sample = operator.metrics.registry.get_sample_value(
            "energysched_learning_rejected_total", {"reason": "no-work"}
        )
        assert sample is not None and sample >= 1
        table = kubectl("get", contract.PROFILE_SHORT_NAME, profile, "-o", "wide")
        assert "LEARNED" in table.splitlines()[0] and "LEARNED TRAIN PERF" in table
    finally:
        stop.set()
        await publisher
        for name in names:
            with contextlib.suppress(Exception):
                await kube.delete(api_path("v1", "pods", "default", name=name))
