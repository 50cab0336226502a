"""The experiment end to end on the local cluster (simulated durations and power)."""

from __future__ import annotations

from pathlib import Path

from energysched import contract
from energysched.kb.io import load_profiles
from energysched.lab.experiment import DEFAULT_SCHEDULER, render, run_experiment
from tests.support import ROOT


async def test_energy_only_weight_never_costs_more_energy_than_the_default(
    kubeconfig: Path, knowledge_base: None, tmp_path: Path
) -> None:
    result = await run_experiment(
        kubeconfig, weight=0.0, mode="normalized", time_scale=0.001, workdir=tmp_path
    )
    kb = load_profiles(ROOT / "kb" / "profiles").knowledge_base()
    stages = result["stages"]
    assert [s["stage"] for s in stages] == ["preprocessing", "training", "inference"] * 2
    for row in stages:
        assert row["joules"] == row["watts"] * row["duration_s"]
        assert "simulated" in row["source"]
        if row["scheduler"] == contract.SCHEDULER_NAME:
            # w = 0: the most efficient node for the stage's workload type.
            eff = {n: p.workloads[row["workload_type"]].efficiency for n, p in kb.profiles.items()}
            assert row["node"] == max(eff, key=lambda n: eff[n]), row
    totals = result["totals"]
    assert totals[contract.SCHEDULER_NAME]["joules"] <= totals[DEFAULT_SCHEDULER]["joules"]
    assert "energysched vs default" in render(result)
