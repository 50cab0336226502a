"""A trace + node list scenario replayed on the local cluster by every scheduler.

The real kube-scheduler as the default (LeastAllocated) and as the packing baselines
(MostAllocated, RequestedToCapacityRatio) through its KubeSchedulerConfiguration, and
energysched; the trace's gpu_spec as node affinity and its GPU share as an extended
resource, enforced by the real schedulers.
"""

from __future__ import annotations

import contextlib
import csv
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import yaml

from energysched.kube.client import ApiError, KubeClient, api_path
from energysched_lab.cluster.build import ensure_binaries
from energysched_lab.cluster.local import LocalCluster
from energysched_lab.cluster.nodes import node_manifests
from energysched_lab.experiment import baselines, scale
from energysched_lab.experiment.results import RunMeta
from energysched_lab.experiment.runner import ENERGY, KUBE, plan, run_batch
from energysched_lab.experiment.scenario import SCENARIOS_DIR, Scenario, load_scenario
from energysched_lab.experiment.simulator import RunOutcome

FACTOR = 0.002


def _scenario(tmp: Path) -> Path:
    d = tmp / "tiny-trace"
    d.mkdir()
    with (d / "nodes.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(("sn", "cpu_milli", "memory_mib", "gpu", "model"))
        w.writerows([(f"v{i}", 96000, 393216, 8, "V100M16") for i in range(3)])
        w.writerow(("t0", 64000, 262144, 2, "T4"))
    with (d / "pods.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(
            (
                "name",
                "cpu_milli",
                "memory_mib",
                "num_gpu",
                "gpu_milli",
                "gpu_spec",
                "creation_time",
                "scheduled_time",
                "deletion_time",
            )
        )
        # Two V100 pods that overlap: packing puts the second beside the first.
        w.writerow(("a", 8000, 32768, 1, 1000, "V100M16", 0, 0, 2000))
        w.writerow(("b", 8000, 32768, 1, 1000, "V100M16", 100, 100, 2000))
        # Half a T4, required by its gpu_spec.
        w.writerow(("c", 4000, 16384, 1, 500, "T4", 200, 200, 1200))
        # Never ran, and one bigger than every node: skipped and counted.
        w.writerow(("d", 4000, 16384, 1, 1000, "", 300, "", ""))
        w.writerow(("e", 4000, 16384, 16, 1000, "", 300, 300, 900))
    (d / "scenario.yaml").write_text(
        yaml.safe_dump(
            {
                "nodeList": "nodes.csv",
                "gpuModels": str(SCENARIOS_DIR / "gpu-models.yaml"),
                "timeFactor": FACTOR,
            }
        )
    )
    (d / "workload.yaml").write_text(
        yaml.safe_dump({"kind": "jobs", "jobsFile": "pods.csv", "referenceModel": "V100M16"})
    )
    return d


@pytest.fixture
async def trace_scenario(tmp_path: Path, kube: KubeClient) -> AsyncIterator[Scenario]:
    sc = load_scenario(_scenario(tmp_path))
    manifests = list(node_manifests(list(sc.node_classes)))
    for m in manifests:
        await kube.create(api_path("v1", "nodes"), m)
    yield sc
    for m in manifests:
        with contextlib.suppress(ApiError):
            await kube.delete(api_path("v1", "nodes", name=m["metadata"]["name"]))


async def test_every_scheduler_replays_the_trace_and_the_baselines_differ(
    kubeconfig: Path,
    local_cluster: LocalCluster,
    tmp_path: Path,
    trace_scenario: Scenario,
) -> None:
    sc = trace_scenario
    assert "skipped 1: never ran (no scheduled_time or deletion_time)" in sc.workload.cuts
    assert "skipped 1: bigger than every node (with its gpu_spec)" in sc.workload.cuts
    specs = plan([KUBE, ENERGY], ["cluster-energy"], [0.5], [1], variants=baselines.BASELINES)
    out = tmp_path / "out"
    packing = baselines.BaselineScheduler(
        ensure_binaries() / "kube-scheduler", local_cluster.dir, tmp_path / "logs"
    )
    outcomes: dict[str, RunOutcome] = {}

    def keep(meta: RunMeta, outcome: RunOutcome) -> None:
        row = scale.record(out, meta, outcome)
        outcomes[row["label"]] = outcome

    rows = await run_batch(
        kubeconfig,
        sc,
        specs,
        out=out,
        batch="tr",
        time_factor=FACTOR,
        on_outcome=keep,
        baseline_scheduler=packing,
    )
    assert packing.proc is None  # stopped with the batch
    assert [r["status"] for r in rows] == ["complete"] * 4
    placed = {label: {r.job.id: r.node or "" for r in o.records} for label, o in outcomes.items()}
    for label, nodes in placed.items():
        # gpu_spec held by every scheduler: a V100 pod on a V100 node, the T4 share on the T4.
        assert nodes["j0000"].startswith("v100m16-"), label
        assert nodes["j0001"].startswith("v100m16-"), label
        assert nodes["j0002"].startswith("t4-"), label
    default = placed[baselines.label(baselines.DEFAULT)]
    assert default["j0000"] != default["j0001"]  # LeastAllocated spreads
    for variant in (baselines.MOST_ALLOCATED, baselines.RTC):
        packed = placed[baselines.label(variant)]
        assert packed["j0000"] == packed["j0001"], variant  # bin packing
    report_rows = scale.read_rows(out / "scale_runs.csv", "tr")
    assert len(report_rows) == 4 and all(r["valid"] == "yes" for r in report_rows)
    # Two V100 GPUs for 1,900 s (the pods ran 1,900 s on the reference model) + half a T4
    # for 1,000 s x 15.7/8.1 (slower than the reference).
    for r in report_rows:
        assert float(r["gpu_hours"]) == pytest.approx(
            (2 * 1900 + 0.5 * 1000 * 15.7 / 8.1) / 3600, rel=0.15
        )
    text = scale.write_report(out, "tr", sc.name, "test", sc.workload.cuts, 1.0, plots=False)
    assert "kube-scheduler MostAllocated" in text and "Invalid runs: none" in text
