"""The power manager picks up an edited config file while it runs (no restart).

The session's local cluster (real API server, controller manager, KWOK) and
``energysched power-manager`` as a process with a config file, edited as the kubelet
updates a ConfigMap volume (a new file renamed into place). One managed, empty KWOK node of
the test's own: with ``minAwakeNodes`` above the number of nodes in the cluster the headroom
policy keeps it awake (the skip counter with reason ``min-awake-nodes`` grows pass after
pass); a bad edit (``minAwakeNodes: -1``) is rejected with a log line and a Warning Event
naming the field and the value, and the old value stays in force; ``minAwakeNodes: 0`` puts
the node to sleep on the next passes, in the same process.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from energysched.contract import ASLEEP_TAINT_KEY
from energysched_lab.cluster.local import LocalCluster
from tests.support import Kubectl, Metrics, eventually, scrape

from .conftest import Manager, kwok_control, running, state, taints

T = TypeVar("T")

CONFIG_MAP = "power-config"
#: More awake nodes than the session's cluster has: the reserve can never be met.
UNREACHABLE_RESERVE = 100_000


@pytest.fixture
def manager(
    local_cluster: LocalCluster, namespace: str, tmp_path: Path, port: int
) -> Iterator[Manager]:
    with running(
        Manager(
            local_cluster,
            namespace,
            tmp_path / "power-manager.log",
            f"--metrics-address=127.0.0.1:{port}",
            f"--config-map={CONFIG_MAP}",
            drainSettleSeconds=1,
            minAwakeNodes=UNREACHABLE_RESERVE,
        )
    ) as m:
        yield m


def skipped_for_reserve(metrics: Metrics) -> float:
    return metrics.get_sample("energysched_power_sleep_skipped_total", reason="min-awake-nodes")


def config_rejected_events(kubectl: Kubectl, namespace: str) -> list[str]:
    events = json.loads(
        kubectl(
            "-n", namespace, "get", "events.events.k8s.io", "-o", "json",
            "--field-selector", f"regarding.kind=ConfigMap,regarding.name={CONFIG_MAP}",
        )
    )  # fmt: skip
    return [e.get("note", "") for e in events["items"] if e.get("reason") == "ConfigRejected"]


@pytest.mark.usefixtures("profile")
async def test_an_edited_config_takes_effect_without_a_restart(
    local_cluster: LocalCluster,
    kubectl: Kubectl,
    namespace: str,
    group: str,
    make_node: Callable[..., str],
    manager: Manager,
    port: int,
) -> None:
    node = make_node("only", "4", kwok_control(local_cluster, f"{group}-only"))
    manager.start()
    pid = manager.proc.pid if manager.proc is not None else None

    # Past break-even (2 s + 1 s hysteresis) the node is a candidate; the reserve keeps it.
    await eventually(
        lambda: scrape(port),
        timeout=60,
        what="passes that keep the node awake for the reserve (min-awake-nodes)",
        until=lambda m: skipped_for_reserve(m) >= 3,
        ignore=(OSError,),
    )
    assert state(kubectl, node) == "awake" and ASLEEP_TAINT_KEY not in taints(kubectl, node)

    # A bad edit: rejected, named, and the last good config stays in force.
    manager.configure(drainSettleSeconds=1, minAwakeNodes=-1)
    log_line = await eventually(
        _read(manager.log),
        timeout=30,
        what="the rejected config in the manager's log",
        until=lambda text: "config rejected" in text,
    )
    assert "minAwakeNodes" in log_line and "-1" in log_line
    notes = await eventually(
        _call(lambda: config_rejected_events(kubectl, namespace)),
        timeout=30,
        what=f"a ConfigRejected Event on ConfigMap {CONFIG_MAP}",
    )
    assert any("minAwakeNodes" in n and "-1" in n for n in notes), notes
    before = skipped_for_reserve(await scrape(port))
    metrics = await eventually(
        lambda: scrape(port),
        timeout=30,
        what="more passes after the rejection, still keeping the node for the reserve",
        until=lambda m: skipped_for_reserve(m) >= before + 3,
    )
    assert metrics.get_sample("energysched_power_config_reloads_total", result="invalid") == 1
    assert state(kubectl, node) == "awake"

    # A good edit: the same process puts the node to sleep.
    manager.configure(drainSettleSeconds=1, minAwakeNodes=0)
    await eventually(
        _call(lambda: state(kubectl, node)),
        timeout=60,
        what="the node asleep once minAwakeNodes is 0",
        until=lambda s: s == "asleep",
    )
    assert ASLEEP_TAINT_KEY in taints(kubectl, node)
    metrics = await scrape(port)
    assert metrics.get_sample("energysched_power_config_reloads_total", result="applied") == 1
    assert "config reloaded" in manager.log.read_text()
    assert manager.starts == 1 and manager.proc is not None and manager.proc.pid == pid


def _read(path: Path) -> Callable[[], Awaitable[str]]:
    return _call(path.read_text)


def _call(fn: Callable[[], T]) -> Callable[[], Awaitable[T]]:
    """A synchronous probe (kubectl, a file) for :func:`eventually`."""

    async def probe() -> T:
        return fn()

    return probe
