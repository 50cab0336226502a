"""The model source's math and the model mode driving KWOK node annotations."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from types import MappingProxyType

import pytest
import structlog
from structlog.testing import capture_logs

from energysched.contract import (
    CURRENT_WATTS_ANNOTATION,
    KWOK_NODE_ANNOTATION,
    POWER_SOURCE_ANNOTATION,
    WORKLOAD_TYPE_LABEL,
)
from energysched.kb.profiles import KnowledgeBase, ProfileSpec, WorkloadFigures
from energysched_monitor.config import ConfigStore, parse_config_text
from energysched_monitor.interfaces import (
    NodeInfo,
    PodInfo,
    is_daemon,
    node_info,
    pod_info,
    simulated,
)
from energysched_monitor.metrics import Metrics
from energysched_monitor.power_model import ModelSource, model_power
from energysched_monitor.power_model_monitor import ModelMonitor
from energysched_monitor.readings import ReadError
from energysched_monitor.tracker import Reporter

from .conftest import Clock, RecordingAnnotator

W = CURRENT_WATTS_ANNOTATION


def wyse(max_power: float | None = None) -> ProfileSpec:
    return ProfileSpec(
        name="wyse",
        node_selector=MappingProxyType({"energy.thesis.io/class": "wyse"}),
        idle_power_watts=6.5,
        workloads=MappingProxyType(
            {
                "training": WorkloadFigures(120.0, 13.2),
                "inference": WorkloadFigures(900.0, 11.0),
                "sequential": WorkloadFigures(40.0, 9.5),
            }
        ),
        max_power_watts=max_power,
    )


def pod(
    name: str, wt: str | None, cpu: float | None, phase: str = "Running", owner: str = ""
) -> PodInfo:
    """A pod on kwok-0 requesting ``cpu`` cores (None: no cpu request)."""
    return PodInfo(
        name,
        "default",
        labels={WORKLOAD_TYPE_LABEL: wt} if wt is not None else {},
        node_name="kwok-0",
        phase=phase,
        requests={"pods": 1} if cpu is None else {"pods": 1, "cpu": round(1000 * cpu)},
        owner_kinds=(owner,) if owner else (),
    )


@pytest.mark.parametrize(
    ("pods", "watts"),
    [
        ([], 6.5),
        ([pod("a", "training", 4)], 13.2),
        ([pod("a", "training", 2)], 6.5 + 6.7 * 0.5),
        ([pod("a", "training", 4), pod("b", "training", 4)], 13.2),  # saturated
        ([pod("a", "training", 2), pod("b", "inference", 2)], 6.5 + 6.7 * 0.5 + 4.5 * 0.5),
        ([pod("a", "training", 4, "Pending"), pod("b", "training", 4, "Succeeded")], 6.5),
        ([pod("a", None, 4)], 6.5 + (6.7 + 4.5 + 3.0) / 3),  # unknown type: mean, not 0
        ([pod("a", "gaming", 4)], 6.5 + (6.7 + 4.5 + 3.0) / 3),
        ([pod("a", "sequential", None)], 9.5),  # no request: the whole node
        ([pod("a", "sequential", 0)], 9.5),
        ([pod("a", "training", 8)], 13.2),  # more than allocatable: capped at one node
        ([pod("kube-proxy", None, 0.1, owner="DaemonSet")], 6.5),
    ],
)
def test_model_power(pods: list[PodInfo], watts: float) -> None:
    assert model_power(wyse(), pods, 4000).watts == pytest.approx(watts)


def test_model_power_caps_at_max_power_and_reports() -> None:
    result = model_power(wyse(max_power=12.0), [pod("a", "training", 4)], 4000)
    assert result.watts == 12.0 and result.running_pods == 1 and result.utilisation == 1.0


def test_unknown_allocatable_counts_each_pod_as_the_whole_node() -> None:
    assert model_power(wyse(), [pod("a", "training", 1)], None).watts == pytest.approx(13.2)


def test_converters_are_the_cores_reader() -> None:
    """Nodes and pods are read as the scheduler reads them: exact quantities (``n``,
    ``u``, ``Ki``, exponents) and kube-scheduler's effective requests (init containers,
    sidecars, overhead), where the monitor once parsed cpu with a regex and summed
    regular containers only."""
    node = node_info(
        {
            "metadata": {
                "name": "kwok-0",
                "labels": {"a": "b"},
                "annotations": {KWOK_NODE_ANNOTATION: "fake"},
            },
            "status": {"allocatable": {"cpu": "4000000u"}},
        }
    )
    assert simulated(node) and node.allocatable["cpu"] == 4000 and node.labels == {"a": "b"}
    p = pod_info(
        {
            "metadata": {
                "name": "p",
                "namespace": "ns",
                "labels": {WORKLOAD_TYPE_LABEL: "training"},
            },
            "spec": {
                "nodeName": "kwok-0",
                "initContainers": [
                    {"name": "setup", "resources": {"requests": {"cpu": "3"}}},
                    {  # a sidecar: runs beside the containers
                        "name": "proxy",
                        "restartPolicy": "Always",
                        "resources": {"requests": {"cpu": "250m"}},
                    },
                ],
                "containers": [
                    {"name": "a", "resources": {"requests": {"cpu": "500000000n"}}},
                    {"name": "b", "resources": {"requests": {"cpu": "1e0"}}},
                    {"name": "c"},
                ],
                "overhead": {"cpu": "50m"},
            },
            "status": {"phase": "Running"},
        }
    )
    # max(containers 1.5 + sidecar 0.25, init 3) + overhead 0.05
    assert (p.key, p.node_name, p.phase, p.workload_type_raw) == (
        "ns/p",
        "kwok-0",
        "Running",
        "training",
    )
    assert p.requests["cpu"] == 3050 and not is_daemon(p)
    owned = pod_info({"metadata": {"ownerReferences": [{"kind": "DaemonSet", "name": "x"}]}})
    assert is_daemon(owned) and owned.phase != "Running" and "cpu" not in owned.requests


def test_an_object_the_core_cannot_read_keeps_its_identity() -> None:
    """The API server admits no such object; a hand-made one must not stop the monitor."""
    bad = pod_info(
        {
            "metadata": {"name": "p", "namespace": "ns", "ownerReferences": [{"kind": "Job"}]},
            "spec": {"nodeName": "n", "containers": [{"resources": {"requests": {"cpu": "x"}}}]},
            "status": {"phase": "Running"},
        }
    )
    assert (bad.key, bad.node_name, bad.phase, bad.owner_kinds) == (
        "ns/p",
        "n",
        "Running",
        ("Job",),
    )
    assert "cpu" not in bad.requests  # counted as the whole node, as an unknown request was
    node = node_info({"metadata": {"name": "n"}, "status": {"allocatable": {"cpu": "9x"}}})
    assert node.name == "n" and "cpu" not in node.allocatable


@dataclass
class View:
    nodes_: list[NodeInfo] = field(default_factory=list)
    pods: dict[str, list[PodInfo]] = field(default_factory=dict)
    kb: KnowledgeBase = field(default_factory=lambda: KnowledgeBase.of([wyse()]))
    synced: bool = True

    def has_synced(self) -> bool:
        return self.synced

    def nodes(self) -> Iterable[NodeInfo]:
        return self.nodes_

    def pods_on_node(self, node: str) -> Iterable[PodInfo]:
        return self.pods.get(node, [])

    def knowledge_base(self) -> KnowledgeBase:
        return self.kb


def kwok(name: str, cls: str = "wyse") -> NodeInfo:
    return NodeInfo(
        name,
        labels={"energy.thesis.io/class": cls, "type": "kwok"},
        annotations={KWOK_NODE_ANNOTATION: "fake"},
        allocatable={"cpu": 4000},
    )


def model_monitor(
    view: View, annotator: RecordingAnnotator, clock: Clock, config: str = ""
) -> ModelMonitor:
    store = ConfigStore(None, parse_config_text(config))

    async def sleep(seconds: float) -> None:
        clock.advance(seconds)

    log = structlog.get_logger("test")
    return ModelMonitor(
        view,
        annotator,
        store,
        Reporter(Metrics(), log, quiet_ready=True),
        log,
        clock=clock,
        wall=clock,
        sleep=sleep,
    )


async def test_pods_starting_and_finishing_drive_the_annotations(
    annotator: RecordingAnnotator, clock: Clock
) -> None:
    view = View([kwok("kwok-0"), NodeInfo("real-node", labels={"energy.thesis.io/class": "wyse"})])
    m = model_monitor(view, annotator, clock)
    await m.tick()
    assert annotator.patches[0][0] == "kwok-0"  # the real node is not the model's business
    assert annotator.last("kwok-0") is not None
    assert annotator.last("kwok-0")[W] == "6.5"  # type: ignore[index]
    assert annotator.last("kwok-0")[POWER_SOURCE_ANNOTATION] == "model; simulated"  # type: ignore[index]

    view.pods["kwok-0"] = [pod("train", "training", 4, "Pending")]
    clock.advance(15)
    await m.tick()
    assert len(annotator.patches) == 1  # bound but not running: no power yet
    view.pods["kwok-0"] = [pod("train", "training", 4)]
    clock.advance(5)
    await m.tick()
    assert annotator.last("kwok-0")[W] == "13.2"  # type: ignore[index]
    view.pods["kwok-0"] = [pod("train", "training", 4, "Succeeded")]
    clock.advance(15)
    await m.tick()
    assert [p[1][W] for p in annotator.patches] == ["6.5", "13.2", "6.5"]


async def test_not_synced_writes_nothing(annotator: RecordingAnnotator, clock: Clock) -> None:
    view = View([kwok("kwok-0")], synced=False)
    m = model_monitor(view, annotator, clock)
    assert await m.tick() == 0 and annotator.patches == []


async def test_no_profile_no_annotation_logged_once(
    annotator: RecordingAnnotator, clock: Clock
) -> None:
    view = View([kwok("kwok-0", cls="unknown")])
    with capture_logs() as logs:
        m = model_monitor(view, annotator, clock)
        for _ in range(3):
            clock.advance(5)
            await m.tick()
    assert annotator.patches == []
    failing = [e for e in logs if e["event"] == "power read failing"]
    assert len(failing) == 1 and failing[0]["kind"] == "config"
    assert "no EnergyProfile matches node kwok-0" in failing[0]["error"]
    with pytest.raises(ReadError):
        ModelSource("missing", view).read_now()


async def test_config_can_put_a_non_kwok_node_on_the_model(
    annotator: RecordingAnnotator, clock: Clock
) -> None:
    view = View([NodeInfo("sim", labels={"energy.thesis.io/class": "wyse"})])
    m = model_monitor(view, annotator, clock, "nodes: {sim: {kind: model}}")
    await m.tick()
    assert [p[0] for p in annotator.patches] == ["sim"]


async def test_write_budget_paces_defers_and_stalest_go_first(
    annotator: RecordingAnnotator, clock: Clock
) -> None:
    view = View([kwok(f"kwok-{i:03d}") for i in range(100)])
    m = model_monitor(view, annotator, clock, "publish: {maxWritesPerSecond: 10, burst: 5}")
    start = clock.now
    sent = await m.tick()  # paced over the 5 s poll interval: the burst, then 10/s
    assert sent == 5 + 50
    assert clock.now - start == pytest.approx(5.0)
    deferred = m.metrics.registry.get_sample_value(
        "energysched_monitor_annotation_writes_deferred_total"
    )
    assert deferred == 45
    sent = await m.tick()
    assert sent == 45  # the others were written 5 s ago: not due again
    written = [p[0] for p in annotator.patches]
    assert len(set(written)) == 100  # the 45 left over went first: nobody starves


async def test_deleted_node_is_forgotten(annotator: RecordingAnnotator, clock: Clock) -> None:
    view = View([kwok("kwok-0"), kwok("kwok-1")])
    m = model_monitor(view, annotator, clock)
    await m.tick()
    view.nodes_ = [kwok("kwok-1")]
    await m.tick()
    assert set(m.trackers) == {"kwok-1"}
    assert (
        m.metrics.registry.get_sample_value(
            "energysched_monitor_power_watts", {"node": "kwok-0", "source": "model"}
        )
        is None
    )
