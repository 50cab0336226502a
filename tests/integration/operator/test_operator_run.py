"""The two ways to run the operator outside kopf's test runner: a thread, and the CLI."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from pathlib import Path

from energysched import contract
from energysched.kube.client import KubeClient, api_path
from energysched.operator.runtime import OperatorOptions
from energysched_lab.cluster.local import LocalCluster
from energysched_lab.operator_thread import OperatorThread
from tests.integration.operator.conftest import ClusterObjects
from tests.support import wait_for


async def _matched(kube: KubeClient, name: str) -> list[str] | None:
    obj = await kube.get(api_path(contract.API_VERSION, contract.PROFILE_PLURAL, name=name))
    matched = (obj.get("status") or {}).get("matchedNodes")
    return matched if isinstance(matched, list) else None


async def test_operator_in_its_own_thread_beside_a_running_loop(
    kube: KubeClient, local_cluster: LocalCluster, knowledge_base: None, objects: ClusterObjects
) -> None:
    main_loop = asyncio.get_running_loop()
    op = OperatorThread(OperatorOptions(kubeconfig=str(local_cluster.kubeconfig)))
    op.start(timeout=60)
    try:
        assert await asyncio.to_thread(op.runtime.synced.wait, 60)
        assert op.runtime._loop is not main_loop  # its own loop, in its own thread
        name = await objects.profile("thread", {"kubernetes.io/hostname": "wyse", "x": "y"})
        await wait_for(lambda: _is(kube, name, []), 30, "status written from the thread")
    finally:
        await asyncio.to_thread(op.stop, 30)
    assert not op.is_alive() and op.error is None


async def test_cli_operator_runs_and_stops_on_sigterm(
    kube: KubeClient,
    local_cluster: LocalCluster,
    knowledge_base: None,
    objects: ClusterObjects,
    tmp_path: Path,
) -> None:
    log = tmp_path / "operator.log"
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "energysched.cli",
            "operator",
            f"--kubeconfig={local_cluster.kubeconfig}",
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            label = f"{contract.GROUP}/test-class"
            name = await objects.profile("cli", {label: objects.prefix})
            node = await objects.node("cli", {label: objects.prefix})
            await wait_for(lambda: _is(kube, name, [node]), 60, f"{node} matched by {name}")
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                code = await asyncio.wait_for(proc.wait(), 30)
            except TimeoutError:
                proc.kill()
                await proc.wait()
                raise
    text = log.read_text(errors="replace")
    assert code == 0, text[-3000:]
    assert "Signal SIGTERM is received" in text


async def _is(kube: KubeClient, name: str, want: list[str]) -> bool:
    return await _matched(kube, name) == want
