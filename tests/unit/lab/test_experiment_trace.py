"""Trace + node list scenarios: counts, the GPU model table, gpu_spec, window/sample, bad input.

Every file here is small and synthetic, written by the test.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import pytest
import yaml

from energysched_lab.cluster.nodes import NodeClassError, load_node_classes, node_manifests
from energysched_lab.experiment import baselines, tracelist
from energysched_lab.experiment.engine import ClusterSim
from energysched_lab.experiment.jobs import instantiate
from energysched_lab.experiment.scenario import SCENARIOS_DIR, ScenarioError, load_scenario
from energysched_lab.experiment.simulator import job_manifest

TABLE = SCENARIOS_DIR / "gpu-models.yaml"
NODE_HEADER = ("sn", "cpu_milli", "memory_mib", "gpu", "model")
POD_HEADER = (
    "name",
    "cpu_milli",
    "memory_mib",
    "num_gpu",
    "gpu_milli",
    "gpu_spec",
    "qos",
    "pod_phase",
    "creation_time",
    "deletion_time",
    "scheduled_time",
)
NODES = [
    ("n0", 96000, 393216, 8, "V100M16"),
    ("n1", 96000, 393216, 8, "V100M16"),
    ("n2", 96000, 393216, 8, "V100M16"),
    ("n3", 64000, 262144, 2, "T4"),
    ("n4", 32000, 131072, 1, "A10"),
    ("n5", 96000, 393216, 0, ""),
    ("n6", 96000, 393216, 8, "G1"),
]


def _csv(path: Path, header: tuple[str, ...], rows: Sequence[tuple[object, ...]]) -> Path:
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


def _pod(
    name: str,
    created: float,
    run: float = 600,
    *,
    cpu: int = 4000,
    gpus: int = 1,
    milli: int = 1000,
    spec: str = "",
    ran: bool = True,
) -> tuple[object, ...]:
    start = created + 5
    return (
        name,
        cpu,
        16384,
        gpus,
        milli if gpus else 0,
        spec,
        "LS",
        "Succeeded" if ran else "Pending",
        created,
        start + run if ran else "",
        start if ran else "",
    )


def _scenario(
    tmp: Path,
    pods: list[tuple[object, ...]],
    nodes: Sequence[tuple[object, ...]] | None = None,
    workload: dict[str, object] | None = None,
) -> Path:
    d = tmp / "trace"
    d.mkdir(exist_ok=True)
    _csv(d / "nodes.csv", NODE_HEADER, list(nodes if nodes is not None else NODES))
    _csv(d / "pods.csv", POD_HEADER, pods)
    (d / "scenario.yaml").write_text(
        yaml.safe_dump({"nodeList": "nodes.csv", "gpuModels": str(TABLE), "timeFactor": 0.01})
    )
    (d / "workload.yaml").write_text(
        yaml.safe_dump(
            {
                "kind": "jobs",
                "jobsFile": "pods.csv",
                "referenceModel": "V100M16",
                **(workload or {}),
            }
        )
    )
    return d


def test_node_list_becomes_classes_with_counts_and_named_nodes(tmp_path: Path) -> None:
    sc = load_scenario(_scenario(tmp_path, [_pod("p", 0)]))
    counts = {c.name: c.count for c in sc.node_classes}
    assert counts == {
        "v100m16-8g-96c-384gi": 3,
        "t4-2g-64c-256gi": 1,
        "a10-1g-32c-128gi": 1,
        "cpu-0g-96c-384gi": 1,
        "g1-8g-96c-384gi": 1,
    }
    names = [m["metadata"]["name"] for m in node_manifests(list(sc.node_classes))]
    assert len(names) == len(NODES) == len(set(names))
    assert "v100m16-8g-96c-384gi-0002" in names
    v100 = next(c for c in sc.node_classes if c.name.startswith("v100"))
    node = v100.manifest("v100m16-8g-96c-384gi-0000")
    assert node["metadata"]["labels"][tracelist.MODEL_LABEL] == "V100M16"
    assert node["status"]["allocatable"][tracelist.GPU_MILLI] == "8000"


def test_count_in_a_hand_written_node_class(tmp_path: Path) -> None:
    (tmp_path / "big.yaml").write_text(
        yaml.safe_dump({"name": "big", "count": 12, "capacity": {"cpu": "4"}})
    )
    (cls,) = load_node_classes(tmp_path)
    names = [m["metadata"]["name"] for m in node_manifests([cls])]
    assert names[0] == "big-0000" and names[-1] == "big-0011" and len(names) == 12
    (tmp_path / "big.yaml").write_text(yaml.safe_dump({"name": "big", "count": 0}))
    with pytest.raises(NodeClassError, match="'count' must be an integer"):
        load_node_classes(tmp_path)


def test_gpu_models_map_to_spec_power_and_speed(tmp_path: Path) -> None:
    sc = load_scenario(_scenario(tmp_path, [_pod("p", 0)]))
    t4 = sc.truth.nodes["t4-2g-64c-256gi"]
    v100 = sc.truth.nodes["v100m16-8g-96c-384gi"]
    # host idle 100 W + 2 x 10 W; one busy T4 adds 70 - 10 W; 8.1 TFLOPS.
    assert t4.idle_watts == pytest.approx(120.0)
    assert t4.workloads["training"].power_watts == pytest.approx(180.0)
    assert t4.workloads["training"].performance == pytest.approx(8.1)
    assert t4.workloads["training"].demand == pytest.approx(0.5)
    assert v100.idle_watts == pytest.approx(100 + 8 * 40)
    assert v100.workloads["training"].power_watts - v100.idle_watts == pytest.approx(260.0)
    assert "training" not in sc.truth.nodes["cpu-0g-96c-384gi"].workloads
    # G1 is undisclosed: the table's documented default (V100-class).
    assert sc.truth.nodes["g1-8g-96c-384gi"].idle_watts == pytest.approx(420.0)
    # energysched is told the same figures, selected by the class's instance type.
    profile = yaml.safe_load((sc.profiles_dir / "t4-2g-64c-256gi.yaml").read_text())
    assert profile["spec"]["nodeSelector"] == {tracelist.INSTANCE_TYPE_LABEL: "t4-2g-64c-256gi"}
    assert profile["spec"]["workloads"]["training"]["powerWatts"] == pytest.approx(180.0)


def test_a_gpu_model_not_in_the_table_is_a_clear_error(tmp_path: Path) -> None:
    nodes = [*NODES, ("n9", 64000, 262144, 4, "H100")]
    with pytest.raises(ScenarioError, match=r"line 9: GPU model 'H100' is not in the GPU table"):
        load_scenario(_scenario(tmp_path, [_pod("p", 0)], nodes))


def test_a_node_list_with_an_unknown_column_is_a_clear_error(tmp_path: Path) -> None:
    d = _scenario(tmp_path, [_pod("p", 0)])
    _csv(d / "nodes.csv", (*NODE_HEADER, "rack"), [(*n, "r1") for n in NODES])
    with pytest.raises(ScenarioError, match="unknown column 'rack'"):
        load_scenario(d)


def test_gpu_spec_becomes_required_node_affinity(tmp_path: Path) -> None:
    sc = load_scenario(_scenario(tmp_path, [_pod("p", 0, spec="T4|A10", milli=500)]))
    (job,) = instantiate(sc, 1)
    assert job.gpu_models == ("A10", "T4")
    m = job_manifest(job, run_id="r", scheduler_name="s", weight=None, image="i")
    pod = m["spec"]["template"]["spec"]
    (term,) = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"
    ]
    assert term["matchExpressions"] == [
        {"key": tracelist.MODEL_LABEL, "operator": "In", "values": ["A10", "T4"]}
    ]
    # GPU sharing: half a GPU is 500 of the documented extended resource, no nvidia.com/gpu.
    res = pod["containers"][0]["resources"]
    assert res["requests"][tracelist.GPU_MILLI] == "500"
    assert "nvidia.com/gpu" not in res["requests"]
    assert res["limits"][tracelist.GPU_MILLI] == "500"


def test_units_scale_a_pods_power_and_share(tmp_path: Path) -> None:
    pods = [_pod("two", 0, gpus=2), _pod("half", 0, milli=500, spec="T4")]
    sc = load_scenario(_scenario(tmp_path, pods))
    two, half = instantiate(sc, 1)
    assert (two.units, half.units) == (2.0, 0.5)
    sim = ClusterSim(sc.truth, {"t": "t4-2g-64c-256gi", "v": "v100m16-8g-96c-384gi"})
    sim.start(half, "t", 0.0)
    sim.start(two, "v", 0.0)
    assert sim.nodes["t"].watts() == pytest.approx(120 + 0.5 * 60)
    assert sim.nodes["v"].watts() == pytest.approx(420 + 2 * 260)


def test_window_and_sample(tmp_path: Path) -> None:
    day = 86400
    # 10 a day for 3 days; each pod's run time tells which one it is.
    pods = [_pod(f"p{i}", 1000 + i * day / 10, run=100 + i) for i in range(30)]
    d = _scenario(tmp_path, pods, workload={"window": {"fromDay": 1, "toDay": 2}})
    sc = load_scenario(d)
    assert len(sc.workload.jobs) == 10
    assert sc.workload.jobs[0].arrival_s == 0.0  # the window starts the replay
    assert sc.workload.jobs[0].work == pytest.approx(110 * 15.7)  # p10: day 1's first
    assert "skipped 20: outside the window" in sc.workload.cuts
    d = _scenario(tmp_path, pods, workload={"sample": {"every": 3, "seed": 4}})
    a = load_scenario(d).workload
    assert len(a.jobs) == 10 and "skipped 20: not sampled" in a.cuts
    assert "sample: every 3th pod, seed 4" in a.cuts
    again = load_scenario(d).workload
    assert [j.work for j in again.jobs] == [j.work for j in a.jobs]  # seeded
    d = _scenario(tmp_path, pods, workload={"sample": {"every": 3, "seed": 5}})
    other = load_scenario(d).workload
    assert {j.work for j in other.jobs} != {j.work for j in a.jobs}


def test_time_scale_compresses_arrivals_and_work(tmp_path: Path) -> None:
    pods = [_pod("a", 0, run=1000), _pod("b", 3600, run=1000)]
    sc = load_scenario(_scenario(tmp_path, pods, workload={"timeScale": 0.1}))
    a, b = sc.workload.jobs
    assert b.arrival_s - a.arrival_s == pytest.approx(360.0)
    assert a.work == pytest.approx(100.0 * 15.7)  # seconds on the reference x its TFLOPS


def test_bad_rows_are_skipped_and_counted(tmp_path: Path) -> None:
    pods = [
        _pod("ok", 0),
        _pod("pending", 10, ran=False),
        _pod("negative", -5),
        _pod("huge", 20, gpus=16),  # bigger than every node
        _pod("t4-eight", 30, gpus=8, spec="T4"),  # no T4 node has 8 GPUs
        _pod("unknown-spec", 40, spec="H100"),
        (*_pod("reversed", 50)[:9], 40, 55),  # deleted before it was scheduled
    ]
    sc = load_scenario(_scenario(tmp_path, pods))
    assert len(sc.workload.jobs) == 1
    cuts = sc.workload.cuts
    assert "skipped 1: never ran (no scheduled_time or deletion_time)" in cuts
    assert "skipped 1: creation_time missing or negative" in cuts
    assert "skipped 2: bigger than every node (with its gpu_spec)" in cuts
    assert "skipped 1: gpu_spec names no model of the node list" in cuts
    assert "skipped 1: deletion_time not after scheduled_time" in cuts


def test_a_pod_list_with_nothing_left_names_the_cuts(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match=r"no pod left to replay.*never ran"):
        load_scenario(_scenario(tmp_path, [_pod("p", 0, ran=False)]))


def test_the_shipped_synthetic_example_loads_with_1523_nodes() -> None:
    sc = load_scenario(SCENARIOS_DIR / "gpu-trace-1500")
    assert sum(c.count or 1 for c in sc.node_classes) == 1523
    assert len(sc.workload.jobs) > 500
    assert "SYNTHETIC" in sc.description


def test_packing_baselines_configure_node_resources_fit() -> None:
    cfg = baselines.scheduler_config(Path("/k"))
    by_name = {p["schedulerName"]: p for p in cfg["profiles"]}
    most = by_name[baselines.SCHEDULER_NAMES[baselines.MOST_ALLOCATED]]
    (plugin,) = most["pluginConfig"]
    assert plugin["name"] == "NodeResourcesFit"
    assert plugin["args"]["scoringStrategy"]["type"] == "MostAllocated"
    rtc = by_name[baselines.SCHEDULER_NAMES[baselines.RTC]]["pluginConfig"][0]["args"]
    assert rtc["scoringStrategy"]["requestedToCapacityRatio"]["shape"] == [
        {"utilization": 0, "score": 0},
        {"utilization": 100, "score": 10},
    ]
