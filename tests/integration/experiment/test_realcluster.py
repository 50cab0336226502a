"""The real-cluster mode, against the local cluster: measured durations, monitor power.

Here a test stands in for the monitor (it publishes tvpc's watts, not wyse's) and KWOK
completes the pods after 2 s; the runner knows nothing of either.
"""

from __future__ import annotations

import asyncio
import csv
import math
from collections.abc import Callable
from pathlib import Path

import pytest

from energysched import contract
from energysched.kube.client import KubeClient
from energysched_lab.experiment.realcluster import Workload, run_real
from energysched_lab.experiment.runner import ENERGY, plan
from energysched_lab.experiment.scenario import DEFAULT_SCENARIO, load_scenario
from energysched_lab.experiment.simulator import PowerPublisher
from tests.support import SchedulerProcess


async def test_real_mode_measures_what_it_can_and_marks_the_rest_not_measured(
    kubeconfig: Path,
    kube: KubeClient,
    tmp_path: Path,
    start_scheduler: Callable[..., SchedulerProcess],
) -> None:
    start_scheduler(mode="normalized")
    monitor = PowerPublisher(kube, heartbeat_s=1.0)
    monitor.set("tvpc", 50.0)
    publishing = asyncio.create_task(monitor.run())
    try:
        rows = await run_real(
            str(kubeconfig),
            load_scenario(DEFAULT_SCENARIO),
            plan([ENERGY], ["normalized"], [0.0], [1]),
            out=tmp_path,
            batch="real",
            workload=Workload(pod_annotations={contract.SIMULATED_DURATION_ANNOTATION: "2s"}),
            max_wall_s=120,
        )
    finally:
        publishing.cancel()
        await kube.patch(
            "/api/v1/nodes/tvpc",
            {
                "metadata": {
                    "annotations": {
                        contract.CURRENT_WATTS_ANNOTATION: None,
                        contract.CURRENT_WATTS_TIMESTAMP_ANNOTATION: None,
                        contract.POWER_SOURCE_ANNOTATION: None,
                    }
                }
            },
        )
    (run,) = rows
    assert run["status"] == "complete"
    assert run["cluster_joules"] is None  # wyse and rpi had no readings
    with (tmp_path / "thesis_results.csv").open() as fh:
        stages = {r["stage"]: r for r in csv.DictReader(fh)}
    assert [stages[s]["node"] for s in ("preprocessing", "training", "inference")] == [
        "wyse",
        "tvpc",
        "wyse",
    ]
    training = stages["training"]
    duration = float(training["duration_s"])
    assert 1.0 <= duration <= 10.0
    assert float(training["joules"]) == pytest.approx(50.0 * duration)
    for s in ("preprocessing", "inference"):
        assert stages[s]["joules"] == ""
        assert "power not measured on wyse" in stages[s]["reason"]
    wyse_trace = (tmp_path / f"metrics_{run['run_id']}_wyse.txt").read_text().split("\n")
    assert any(line.endswith(" nan") for line in wyse_trace)
    tvpc = [
        float(line.split()[1])
        for line in (tmp_path / f"metrics_{run['run_id']}_tvpc.txt").read_text().splitlines()
        if not line.startswith("#")
    ]
    assert tvpc and all(math.isnan(w) or w == 50.0 for w in tvpc)
