"""``knowledge: learned`` against the real API server: the scheduler places by the figures in a
profile's ``status.learned`` (the operator's), and ``knowledge: spec`` switches back, no restart."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

from energysched import contract
from energysched.kube.client import KubeClient, api_path
from tests.integration.conftest import scheduler_config
from tests.support import SchedulerProcess, pod_manifest, wait_for


def status_path(profile: str) -> str:
    return api_path(
        contract.API_VERSION, contract.PROFILE_PLURAL, name=profile, subresource="status"
    )


WYSE_STATUS = status_path("wyse")
COUNTER = itertools.count()


def learned_inference(perf: float, spec_perf: float = 33000) -> dict[str, Any]:
    return {
        "observations": 9,
        "lastUpdate": "2026-12-07T04:00:00Z",
        "workloads": {
            "inference": {
                "specPerformance": spec_perf,
                "specPowerWatts": 16.5,
                "performance": perf,
                "performanceUncertainty": 1.05,
                "performanceObservations": 9,
                "powerWatts": 16.0,
                "powerUncertainty": 1.05,
                "powerObservations": 9,
            }
        },
    }


async def placed_on(kube: KubeClient, ns: str, node: str, what: str) -> None:
    """Fast inference pods (weight 1.0), one after another, until one lands on ``node``."""

    async def next_pod() -> bool:
        name = f"fast-{next(COUNTER)}"
        await kube.create(
            api_path("v1", "pods", ns),
            pod_manifest(
                name,
                schedulerName=contract.SCHEDULER_NAME,
                metadata={
                    "labels": {contract.WORKLOAD_TYPE_LABEL: "inference"},
                    "annotations": {contract.PERFORMANCE_WEIGHT_ANNOTATION: "1.0"},
                },
            ),
        )

        async def bound() -> str | None:
            got: str | None = (await kube.get(api_path("v1", "pods", ns, name)))["spec"].get(
                "nodeName"
            )
            return got

        return await wait_for(bound, 30, f"pod {name} to be bound") == node

    await wait_for(next_pod, 40, what, interval=0.5)


async def test_learned_figures_place_pods_and_spec_switches_back(
    kube: KubeClient,
    namespace: str,
    start_scheduler: Callable[..., SchedulerProcess],
) -> None:
    # The session's profiles start without learned figures: an operator of another test
    # may have learned some from the pods that ran on the shared cluster.
    for profile in ("tvpc", "wyse", "rpi"):
        await kube.patch(status_path(profile), {"status": {"learned": None}})
    sched = start_scheduler(mode="normalized", knowledge="learned")
    try:
        await placed_on(kube, namespace, "tvpc", "tvpc, the spec's fastest for inference")
        # Learned against an older spec: ignored.
        await kube.patch(WYSE_STATUS, {"status": {"learned": learned_inference(1e7, 1)}})
        await placed_on(kube, namespace, "tvpc", "tvpc while the learned block is stale")
        await kube.patch(WYSE_STATUS, {"status": {"learned": learned_inference(1e7)}})
        await placed_on(kube, namespace, "wyse", "wyse, fastest by its learned figures")
        sched.update_config(scheduler_config(namespace, "spec", mode="normalized"))
        await placed_on(kube, namespace, "tvpc", "tvpc again under knowledge: spec")
        assert sched.proc.poll() is None  # never restarted
    finally:
        await kube.patch(WYSE_STATUS, {"status": {"learned": None}})
