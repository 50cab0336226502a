"""The node agent: its checks before sleeping (pure), and logind over a real D-Bus daemon
(a private dbus-daemon with a fake logind on it; nothing is suspended)."""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from energysched.contract import (
    ASLEEP_TAINT_KEY,
    POWER_STATE_ANNOTATION,
    SLEEP_REQUESTED_ANNOTATION,
)
from energysched.powermanager import logind
from energysched.powermanager.agent import refusal
from energysched_lab.fake_logind import FakeLogind

NOW = dt.datetime(2026, 12, 7, 4, 0, 0, tzinfo=dt.UTC)


def node(request: str | None = "2026-12-07T03:59:50Z suspend", **kw: Any) -> dict[str, Any]:
    annotations = {POWER_STATE_ANNOTATION: kw.get("state", "draining")}
    if request is not None:
        annotations[SLEEP_REQUESTED_ANNOTATION] = request
    taints = [{"key": ASLEEP_TAINT_KEY, "effect": "NoSchedule"}] if kw.get("taint", True) else []
    return {"metadata": {"name": "n1", "annotations": annotations}, "spec": {"taints": taints}}


def pod(name: str, owner: str | None = None, phase: str = "Running") -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "ns"}
    if owner:
        meta["ownerReferences"] = [{"kind": owner, "name": "x", "controller": True}]
    return {
        "metadata": meta,
        "spec": {"nodeName": "n1", "containers": []},
        "status": {"phase": phase},
    }


def test_acts_on_a_fresh_request_on_an_empty_tainted_node() -> None:
    pods = [pod("ds", "DaemonSet"), pod("done", phase="Succeeded")]
    request, why = refusal(node(), pods, NOW, None, 300)
    assert why is None and request is not None and request.action == "suspend"


@pytest.mark.parametrize(
    ("n", "pods", "handled", "expect"),
    [
        (node(request=None), [], None, "no sleep request"),
        (node(request="yesterday suspend"), [], None, "malformed"),
        (node(request="2026-12-07T03:59:50Z hibernate"), [], None, "malformed"),
        (node(), [], "2026-12-07T03:59:50Z suspend", "already acted"),
        (node(request="2026-12-07T03:00:00Z suspend"), [], None, "old"),
        (node(taint=False), [], None, "taint"),
        (node(state="awake"), [], None, "power state is awake"),
        (node(), None, None, "cannot list"),
        (node(), [pod("web", "ReplicaSet")], None, "ns/web"),
    ],
)
def test_refuses_with_the_reason(
    n: dict[str, Any], pods: list[Any] | None, handled: str | None, expect: str
) -> None:
    _, why = refusal(n, pods, NOW, handled, 300)
    assert why is not None and expect in why


@pytest.fixture
def fake_logind(tmp_path: Path) -> Iterator[FakeLogind]:
    if shutil.which("dbus-daemon") is None:
        pytest.skip("dbus-daemon is not installed")
    bus = FakeLogind(tmp_path)
    bus.start()
    yield bus
    bus.stop()


@pytest.mark.parametrize(("action", "member"), [("suspend", "Suspend"), ("poweroff", "PowerOff")])
async def test_logind_call_over_dbus(
    fake_logind: FakeLogind, action: logind.Action, member: str
) -> None:
    await logind.request(action, fake_logind.address, timeout=5)
    assert fake_logind.calls == [(member, False)]  # never interactive


async def test_logind_refusal_is_reported(fake_logind: FakeLogind) -> None:
    fake_logind.deny = True
    with pytest.raises(logind.LogindError) as err:
        await logind.request("suspend", fake_logind.address, timeout=5)
    assert "InteractiveAuthorizationRequired" in str(err.value)


async def test_no_bus_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(logind.LogindError):
        await logind.request("suspend", f"unix:path={tmp_path}/none", timeout=2)
