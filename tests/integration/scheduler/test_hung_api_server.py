"""A hung API server: SIGSTOP on the real kube-apiserver, its connections left open.

Nothing is closed or refused, so only silence says the server is gone: the watches
ask for bookmarks (about one a minute), and a watch that hears nothing for longer is
re-established; a server that does not answer that takes /readyz to not-ready
(within 90 s, where a watch's read timeout used to leave it ready for up to 330 s).
After SIGCONT the same process is ready again and sees objects created since.

Its own cluster (``private_cluster``): a frozen API server would fail every other
test of the session's cluster.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Awaitable
from pathlib import Path

import aiohttp

from energysched import contract
from energysched.kube.client import ApiError, KubeClient, api_path
from energysched.kube.config import load_kubeconfig
from energysched_lab.cluster.local import LocalCluster
from energysched_lab.cluster.processes import free_port
from tests.integration.conftest import scheduler_config
from tests.support import SchedulerProcess, pod_manifest, wait_for

#: The acceptance bound: not ready within this many seconds of the server's last answer.
NOT_READY_WITHIN = 90.0
#: What the node lifecycle controller may put on nodes after the freeze (their leases
#: lapsed); the probe pod tolerates them, it is about the watch, not the nodes.
OUTAGE_TAINTS = ("node.kubernetes.io/unreachable", "node.kubernetes.io/not-ready")


async def readyz(port: int) -> int | None:
    """The HTTP status of /readyz, or None when nothing answers."""
    try:
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"http://127.0.0.1:{port}/readyz", timeout=aiohttp.ClientTimeout(2)) as r,
        ):
            return r.status
    except (aiohttp.ClientError, TimeoutError):
        return None


def apiserver_pid(cluster: LocalCluster) -> int:
    state = cluster.load_state()
    assert state is not None
    (proc,) = [p for p in state.processes if p.name == "kube-apiserver"]
    assert proc.alive(), "the private cluster's kube-apiserver is not running"
    return proc.pid


async def test_a_frozen_api_server_turns_readyz_not_ready_and_the_watch_comes_back(
    private_cluster: LocalCluster, tmp_path: Path
) -> None:
    port = free_port()
    namespace = "hung-apiserver"
    cfg = scheduler_config(namespace)
    # Leader election would end the process when the lease cannot be renewed (kube-scheduler
    # does the same): here the one process must notice, stay, and recover.
    cfg["leaderElection"]["enabled"] = False
    cfg["metricsAddress"] = f"127.0.0.1:{port}"
    async with KubeClient(load_kubeconfig(private_cluster.kubeconfig), qps=0) as kube:
        await kube.create(api_path("v1", "namespaces"), {"metadata": {"name": namespace}})
        sched = SchedulerProcess(private_cluster.kubeconfig, cfg, tmp_path, "sched-hung")
        try:
            await asyncio.to_thread(sched.wait_synced)
            assert await wait_for(lambda: _is(readyz(port), 200), 30, "ready at start")

            pid = apiserver_pid(private_cluster)
            os.kill(pid, signal.SIGSTOP)
            frozen = time.monotonic()
            try:
                await wait_for(
                    lambda: _is(readyz(port), 503),
                    NOT_READY_WITHIN,
                    f"/readyz not ready with the API server frozen\n{sched.tail()}",
                    interval=1.0,
                )
                not_ready_after = time.monotonic() - frozen
            finally:
                os.kill(pid, signal.SIGCONT)
            thawed = time.monotonic()
            print(f"/readyz not ready {not_ready_after:.1f} s after SIGSTOP")
            assert sched.proc.poll() is None, sched.tail()
            assert "watch silent, re-establishing" in sched.log()

            assert await wait_for(
                lambda: _is(readyz(port), 200), 120, f"ready again\n{sched.tail()}"
            )
            print(f"/readyz ready again {time.monotonic() - thawed:.1f} s after SIGCONT")

            # The re-established pod watch sees a pod created after the thaw: it gets bound.
            pod = pod_manifest(
                "after-thaw",
                schedulerName=contract.SCHEDULER_NAME,
                metadata={"labels": {contract.WORKLOAD_TYPE_LABEL: "training"}},
                tolerations=[
                    {"key": key, "operator": "Exists", "effect": effect}
                    for key in OUTAGE_TAINTS
                    for effect in ("NoSchedule", "NoExecute")
                ],
            )
            await create_with_retry(kube, namespace, pod)

            async def bound() -> str | None:
                got = await kube.get(api_path("v1", "pods", namespace, "after-thaw"))
                node: str | None = got["spec"].get("nodeName")
                return node

            await wait_for(bound, 60, f"the pod created after SIGCONT bound\n{sched.tail()}")
            assert sched.proc.poll() is None, sched.tail()  # the same process, all along
        finally:
            sched.stop()


async def create_with_retry(kube: KubeClient, namespace: str, pod: dict[str, object]) -> None:
    """The thawed server may still refuse a request or two while it catches up."""

    async def created() -> bool:
        try:
            await kube.create(api_path("v1", "pods", namespace), pod)
        except ApiError as exc:
            return exc.conflict
        return True

    await wait_for(created, 60, "the pod created after SIGCONT", interval=1.0)


async def _is(status: Awaitable[int | None], want: int) -> bool:
    return await status == want
