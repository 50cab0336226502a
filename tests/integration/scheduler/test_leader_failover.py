"""Two replicas; the leader (the Lease's holder) is SIGKILLed in the middle of a burst of
500 pods; every pod is bound exactly once."""

from __future__ import annotations

import asyncio
import datetime as dt
import signal
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from energysched import contract
from energysched.kube.client import KubeClient, api_path
from energysched_lab.cluster.nodes import load_node_classes
from tests.support import SchedulerProcess, eventually, pod_manifest, wait_for

EXTRA_NODES = [f"failover-{i}" for i in range(3)]
BURST = 500
BOUND = '"event": "bound"'  # a structured log line of a successful bind
#: kube-scheduler's defaults. On a loaded machine (two CPU burners, load average ~15) a
#: leader busy with the burst still missed its renew deadline, even with these: it exits,
#: and the Deployment below starts a replacement, as a cluster would.
LEASE = {"leaseDurationSeconds": 15, "renewDeadlineSeconds": 10, "retryPeriodSeconds": 2}


async def lease(kube: KubeClient, namespace: str) -> dict[str, Any]:
    path = api_path("coordination.k8s.io/v1", "leases", namespace, "energy-scheduler")
    spec: dict[str, Any] = (await kube.get(path))["spec"]
    return spec


def micro_time(value: str) -> float:
    """A Lease's MicroTime (written by the replicas, from this machine's clock)."""
    return dt.datetime.fromisoformat(value).timestamp()


@pytest.fixture
async def extra_nodes(kube: KubeClient) -> Any:
    """500 pods need more than the thesis nodes' 330 pod slots."""
    wyse = next(c for c in load_node_classes() if c.name == "wyse")
    for name in EXTRA_NODES:
        await kube.create(api_path("v1", "nodes"), wyse.manifest(name))
    yield
    for name in EXTRA_NODES:
        await kube.delete(api_path("v1", "nodes", name=name))


@pytest.fixture
async def burst_cleanup(kube: KubeClient, namespace: str) -> Any:
    """500 pods fill the thesis nodes: remove them before the next test, not lazily."""
    yield
    await kube.delete(api_path("v1", "pods", namespace), gracePeriodSeconds=0)

    async def gone() -> bool:
        return not (await kube.get(api_path("v1", "pods", namespace), limit=1))["items"]

    await wait_for(gone, 120, "the burst's pods to be deleted")


def _tiny_pod(i: int) -> dict[str, Any]:
    pod = pod_manifest(
        f"burst-{i:03d}",
        schedulerName=contract.SCHEDULER_NAME,
        metadata={"labels": {contract.WORKLOAD_TYPE_LABEL: "inference"}},
    )
    pod["spec"]["containers"][0]["resources"]["requests"] = {"cpu": "1m", "memory": "1Mi"}
    return pod


class Deployment:
    """What a Deployment of replicas does: one that exits (a replica that could not renew
    its lease in time steps down and exits, as kube-scheduler does) is replaced by a new
    pod, here a new process under a new identity; the one the test kills is not."""

    def __init__(self, start: Callable[..., SchedulerProcess]) -> None:
        self.start = start
        self.replicas: dict[str, SchedulerProcess] = {}
        self.killed: set[str] = set()
        self.replaced: set[str] = set()

    def add(self, name: str, wait: bool = True) -> SchedulerProcess:
        self.replicas[name] = self.start(name, wait=wait, leader_election=LEASE)
        return self.replicas[name]

    def alive(self, name: str) -> bool:
        return name in self.replicas and self.replicas[name].proc.poll() is None

    async def keep(self) -> None:
        while True:
            await asyncio.sleep(0.5)
            for name, proc in list(self.replicas.items()):
                gone = proc.proc.poll() is not None
                if gone and name not in self.killed and name not in self.replaced:
                    self.replaced.add(name)
                    self.add(f"{name}-{len(self.replicas)}", wait=False)

    def binds(self) -> int:
        return sum(p.log().count(BOUND) for p in self.replicas.values())

    def progress(self) -> dict[str, dict[str, Any]]:
        """What each replica did so far: on failure, the message shows it."""
        return {
            name: {"binds": p.log().count(BOUND), "exit": p.proc.poll(), "tail": p.tail(2)}
            for name, p in self.replicas.items()
        }


async def test_standby_takes_over_and_every_pod_is_bound_once(
    kube: KubeClient,
    namespace: str,
    start_scheduler: Callable[..., SchedulerProcess],
    extra_nodes: None,
    burst_cleanup: None,
) -> None:
    deployment = Deployment(start_scheduler)
    a = deployment.add("replica-a")

    async def a_leads() -> str:
        return a.log()

    # a holds the lease before b starts.
    await eventually(
        a_leads, until=lambda log: "became leader" in log, timeout=30, what="replica-a to lead"
    )
    deployment.add("replica-b")
    keeping = asyncio.create_task(deployment.keep())

    sem = asyncio.Semaphore(20)

    async def create(i: int) -> None:
        async with sem:
            await kube.create(api_path("v1", "pods", namespace), _tiny_pod(i))

    creating = asyncio.gather(*(create(i) for i in range(BURST)))

    async def progress() -> dict[str, dict[str, Any]]:
        return deployment.progress()

    try:
        await eventually(
            progress,
            until=lambda seen: sum(r["binds"] for r in seen.values()) >= 100,
            timeout=120,
            what="100 pods bound",
        )
        # The leader is whoever holds the Lease now, alive (the truth, not who led first).
        before = await eventually(
            lambda: lease(kube, namespace),
            until=lambda spec: deployment.alive(spec["holderIdentity"]),
            timeout=LEASE["leaseDurationSeconds"] + 60,
            what="a live replica holding the lease",
        )
        leader = before["holderIdentity"]
        deployment.killed.add(leader)
        deployment.replicas[leader].proc.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        await creating

        after = await eventually(
            lambda: lease(kube, namespace),
            until=lambda spec: (
                spec["holderIdentity"] != leader and deployment.alive(spec["holderIdentity"])
            ),
            timeout=LEASE["leaseDurationSeconds"] + 60,
            what="another live replica to hold the lease",
        )
        takeover = time.monotonic() - killed_at
        # Not before the lease ran out: from the leader's last renewal (read before the
        # kill; a later one only makes the gap smaller) to the new holder's acquireTime,
        # both as the Lease records them. How long after the kill depends on the load:
        # printed below, not asserted (a benchmark's figure, not a test's).
        gap = micro_time(after["acquireTime"]) - micro_time(before["renewTime"])
        assert gap >= LEASE["leaseDurationSeconds"], f"acquired {gap:.1f} s after the renewal"

        async def all_bound() -> bool:
            pods = (await kube.list_all(api_path("v1", "pods", namespace)))["items"]
            return len(pods) == BURST and all(p["spec"].get("nodeName") for p in pods)

        await wait_for(all_bound, 400, f"all {BURST} pods to be bound")
    finally:
        keeping.cancel()
        await asyncio.gather(keeping, return_exceptions=True)
    events = (await kube.list_all(api_path("events.k8s.io/v1", "events", namespace)))["items"]
    scheduled = Counter(e["regarding"]["name"] for e in events if e["reason"] == "Scheduled")
    assert max(scheduled.values()) == 1, [k for k, v in scheduled.items() if v > 1]
    # A pod bound twice would show as two successful binds, in one replica's log or two.
    assert deployment.binds() <= BURST
    print(
        f"takeover after SIGKILL: {takeover:.1f} s; binds by replica: "
        f"{ {name: p['binds'] for name, p in deployment.progress().items()} }"
    )
