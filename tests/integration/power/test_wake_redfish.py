"""The power manager puts a node to sleep and wakes it through Redfish, on a KWOK node.

The BMC is OpenStack's sushy-emulator (a Redfish server others wrote; fake driver, Basic
auth, on loopback): the manager's GracefulShutdown turns the emulated system's
PowerState Off, a pending pod's wake turns it On. A KWOK node has no kubelet to come back
by itself, so once the BMC reports On the test posts the Ready heartbeat a real kubelet
would (energysched_lab.kwok_power). A BMC that refuses power-off leaves the node awake.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from energysched.contract import ASLEEP_TAINT_KEY
from energysched.powermanager.methods.redfish import RedfishReset
from energysched_lab.cluster.local import LocalCluster
from energysched_lab.kwok_power import wake as kwok_wake
from energysched_lab.sushy_lab import SYSTEM_UUID, SushyEmulator
from energysched_monitor.secret import Secret
from tests.support import Kubectl

from .conftest import Manager, state, taints
from .test_wake_kwok import (  # noqa: F401  (the manager fixture)
    get_pod,
    manager,
    pod,
    wait,
)

PASSWORD = "bmc-Pa55-integration"


@pytest.fixture
def bmc_secret(kubectl: Kubectl, namespace: str) -> str:
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "bmc"},
        "data": {
            "username": base64.b64encode(b"admin").decode(),
            "password": base64.b64encode(PASSWORD.encode()).decode(),
        },
    }
    kubectl("-n", namespace, "apply", "-f", "-", input=json.dumps(secret))
    return f"{namespace}/bmc"


@pytest.fixture
def sushy(tmp_path: Path) -> Iterator[SushyEmulator]:
    emulator = SushyEmulator(tmp_path / "sushy", password=PASSWORD)
    emulator.start()
    yield emulator
    emulator.stop()


def bmc_state(url: str) -> str | None:
    async def read() -> str | None:
        method = RedfishReset(url, SYSTEM_UUID, "admin", Secret(PASSWORD), auth="basic")
        try:
            return await method.power_state()
        finally:
            await method.close()

    return asyncio.run(read())


def control(url: str, secret: str) -> str:
    return json.dumps(
        {
            "method": "redfish",
            "address": url,
            "credentialsSecret": secret,
            "system": SYSTEM_UUID,
            "auth": "basic",
        }
    )


@pytest.mark.usefixtures("profile")
def test_sleep_and_wake_through_redfish(
    local_cluster: LocalCluster,
    kubectl: Kubectl,
    namespace: str,
    group: str,
    make_node: Callable[..., str],
    manager: Manager,  # noqa: F811
    sushy: SushyEmulator,
    bmc_secret: str,
) -> None:
    node = make_node("bmc", "4", control(sushy.url, bmc_secret))
    assert bmc_state(sushy.url) == "On"
    manager.start()
    wait("node asleep", lambda: state(kubectl, node) == "asleep", 120)
    assert ASLEEP_TAINT_KEY in taints(kubectl, node)
    wait("the BMC's system Off", lambda: bmc_state(sushy.url) == "Off", 30)

    kubectl(
        "-n", namespace, "apply", "-f", "-",
        input=json.dumps(pod("on-bmc", group, "2", scheduler="default-scheduler")),
    )  # fmt: skip
    wait("the BMC's system On", lambda: bmc_state(sushy.url) == "On", 90)
    assert state(kubectl, node) == "waking"
    asyncio.run(kwok_wake(str(local_cluster.kubeconfig), node))  # the kubelet is back
    bound = wait(
        "pod bound", lambda: get_pod(kubectl, namespace, "on-bmc")["spec"].get("nodeName"), 120
    )
    assert bound == node
    assert state(kubectl, node) == "awake" and ASLEEP_TAINT_KEY not in taints(kubectl, node)


@pytest.mark.usefixtures("profile")
def test_bmc_refusing_power_off_leaves_the_node_awake(
    kubectl: Kubectl,
    namespace: str,
    make_node: Callable[..., str],
    manager: Manager,  # noqa: F811
    bmc_secret: str,
    tmp_path: Path,
) -> None:
    refusing = SushyEmulator(tmp_path / "refusing", password=PASSWORD, power_off_disabled=True)
    refusing.start()
    try:
        node = make_node("refuses", "4", control(refusing.url, bmc_secret))
        manager.start()

        def said_why() -> bool:
            text = manager.log.read_text(errors="replace")
            return "sleep failed (refused)" in text and "HTTP 400" in text

        wait("the manager says the BMC refused", said_why, 120)
        # Given back: awake (an empty node is tried again after its break-even time, so
        # the next attempt's "draining" may show; it never gets further).
        assert state(kubectl, node) in ("awake", "draining")
        assert bmc_state(refusing.url) == "On"
        assert not [
            line
            for line in _json_lines(manager.log)
            if line.get("node") == node and line.get("new") == "asleep"
        ]
    finally:
        refusing.stop()


def _json_lines(path: Path) -> list[dict[str, object]]:
    out = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        if isinstance(doc, dict):
            out.append(doc)
    return out
