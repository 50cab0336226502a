"""The local control plane: real components, KWOK nodes, Jobs that complete."""

from __future__ import annotations

import json
import os
import time
from typing import Any

from energysched import contract
from energysched.kube.client import KubeClient, api_path
from energysched_lab.cluster.local import ClusterError, LocalCluster
from tests.support import Kubectl, pod_manifest, wait_for


def _ready(node: dict[str, Any]) -> bool:
    return any(
        c["type"] == "Ready" and c["status"] == "True" for c in node["status"].get("conditions", [])
    )


def test_thesis_nodes_are_ready_with_their_labels(kubectl: Kubectl) -> None:
    nodes = {
        n["metadata"]["name"]: n for n in json.loads(kubectl("get", "nodes", "-o", "json"))["items"]
    }
    assert {"tvpc", "wyse", "rpi"} <= set(nodes)
    for name in ("tvpc", "wyse", "rpi"):
        assert _ready(nodes[name]), f"{name} not Ready: {nodes[name]['status'].get('conditions')}"
        assert nodes[name]["metadata"]["labels"]["kubernetes.io/hostname"] == name
        assert "node.kubernetes.io/instance-type" in nodes[name]["metadata"]["labels"]
    assert nodes["rpi"]["metadata"]["labels"]["kubernetes.io/arch"] == "arm"
    assert nodes["tvpc"]["metadata"]["labels"]["feature.node.kubernetes.io/cpu-cpuid.AVX"] == "true"
    assert "feature.node.kubernetes.io/cpu-cpuid.AVX" not in nodes["wyse"]["metadata"]["labels"]
    assert nodes["tvpc"]["status"]["allocatable"]["nvidia.com/gpu"] == "1"
    assert "nvidia.com/gpu" not in nodes["wyse"]["status"]["allocatable"]


async def test_default_scheduler_job_runs_and_completes_after_its_delay(
    kube: KubeClient, namespace: str
) -> None:
    template = pod_manifest(
        "unused", metadata={"annotations": {contract.SIMULATED_DURATION_ANNOTATION: "4s"}}
    )
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "baseline"},
        "spec": {
            "backoffLimit": 0,
            "template": {"metadata": template["metadata"], "spec": template["spec"]},
        },
    }
    del job["spec"]["template"]["metadata"]["name"]
    await kube.create(api_path("batch/v1", "jobs", namespace), job)

    async def running_pod() -> dict[str, Any] | None:
        pods = (await kube.get(api_path("v1", "pods", namespace)))["items"]
        return next((p for p in pods if p["status"].get("phase") == "Running"), None)

    pod = await wait_for(running_pod, 60, "the Job's pod to run")
    assert pod["spec"]["nodeName"] in {"tvpc", "wyse", "rpi"}
    assert pod["spec"].get("schedulerName", "default-scheduler") == "default-scheduler"
    started = time.monotonic()
    events = (await kube.get(api_path("v1", "events", namespace)))["items"]
    scheduled = [e for e in events if e["reason"] == "Scheduled"]
    assert scheduled and scheduled[0].get("reportingComponent", "") in ("default-scheduler", "")

    async def job_complete() -> bool:
        status = (await kube.get(api_path("batch/v1", "jobs", namespace, "baseline")))["status"]
        return bool(status.get("succeeded"))

    await wait_for(job_complete, 60, "the Job to complete")
    # KWOK completes the pod no earlier than the delay the pod carries.
    assert time.monotonic() - started >= 2.5
    done = await kube.get(api_path("v1", "pods", namespace, pod["metadata"]["name"]))
    assert done["status"]["phase"] == "Succeeded"


async def test_energy_scheduler_pod_stays_pending_without_energysched(
    kube: KubeClient, namespace: str
) -> None:
    await kube.create(
        api_path("v1", "pods", namespace),
        pod_manifest("waits", schedulerName=contract.SCHEDULER_NAME),
    )
    # Control: a default-scheduler twin is bound in the same window.
    await kube.create(api_path("v1", "pods", namespace), pod_manifest("control"))

    async def control_bound() -> bool:
        pod = await kube.get(api_path("v1", "pods", namespace, "control"))
        return bool(pod["spec"].get("nodeName"))

    # The witness that kube-scheduler looked: the control, created after "waits", is
    # bound (one pod watch, delivered in order), so "waits" was seen and left alone.
    await wait_for(control_bound, 30, "the control pod to be bound")
    pod = await kube.get(api_path("v1", "pods", namespace, "waits"))
    assert "nodeName" not in pod["spec"]
    assert pod["status"]["phase"] == "Pending"
    # Not even attempted: an attempt that failed would have set PodScheduled=False.
    conditions = pod["status"].get("conditions") or []
    assert not [c for c in conditions if c["type"] == "PodScheduled"], conditions


async def test_kube_scheduler_stops_and_restarts_with_other_limits(
    local_cluster: LocalCluster, kube: KubeClient, namespace: str
) -> None:
    """What make perf's backlog mode relies on: pods wait while kube-scheduler is
    stopped, and are bound once it is started again (here with other client limits)."""
    stopped = local_cluster.stop_kube_scheduler()
    assert [s.split(" ")[0] for s in stopped] == ["kube-scheduler"]
    try:
        # What keeps the pod waiting is a process that is gone: check that, not the time.
        pid = int(stopped[0].split("pid ")[1].rstrip(")"))
        assert not _runs(pid), f"kube-scheduler (pid {pid}) still runs"
        await kube.create(api_path("v1", "pods", namespace), pod_manifest("backlog"))
        pod = await kube.get(api_path("v1", "pods", namespace, "backlog"))
        assert "nodeName" not in pod["spec"]
        proc = local_cluster.start_kube_scheduler(20, 40)
        assert proc.alive()
        conf = (local_cluster.dir / "kube-scheduler.yaml").read_text()
        assert "qps: 20" in conf and "burst: 40" in conf

        async def bound() -> bool:
            got = await kube.get(api_path("v1", "pods", namespace, "backlog"))
            return bool(got["spec"].get("nodeName"))

        await wait_for(bound, 60, "the waiting pod to be bound after the restart")
        state = local_cluster.load_state()
        assert state is not None
        assert [p.pid for p in state.processes if p.name == "kube-scheduler"] == [proc.pid]
    finally:
        local_cluster.start_kube_scheduler(50, 100)  # as the session's cluster started


def _runs(pid: int) -> bool:
    """A zombie (exited, not yet reaped) has no exe link: it does not run."""
    return os.path.exists(f"/proc/{pid}/exe")


def test_scale_up_second_up_refused_and_down_leaves_nothing(local_cluster: LocalCluster) -> None:
    """A second cluster with 1,000 generated nodes: all Ready; `up` twice refused; `down` clean."""
    cluster = LocalCluster(f"{local_cluster.name}-scale")
    messages: list[str] = []
    t0 = time.monotonic()
    state = cluster.up(generated_nodes=1000, log=messages.append)
    try:
        elapsed = time.monotonic() - t0
        print(f"1,003-node cluster up in {elapsed:.1f} s: {messages[-1]}")
        assert "1003 Ready nodes" in messages[-1]
        try:
            cluster.up(log=messages.append)
        except ClusterError as exc:
            assert "already running" in str(exc)
        else:
            raise AssertionError("a second 'up' started another cluster")
    finally:
        cluster.down()
    assert not any(p.alive() for p in state.processes)
    assert not cluster.is_running()
    cluster.purge()
