"""The scale report's figures and its invalid-run checks (Joulie's traps)."""

from __future__ import annotations

from pathlib import Path

import pytest

from energysched_lab.experiment import scale
from energysched_lab.experiment.engine import ClusterSim
from energysched_lab.experiment.results import RunMeta, append_csv
from energysched_lab.experiment.simulator import JobRecord, RunOutcome
from tests.unit.lab.experiment_helpers import job, truth

TRUTH = truth(
    a=(10.0, {"training": (1.0, 110.0, "gpu", 1.0)}),
    b=(20.0, {"training": (2.0, 220.0, "gpu", 1.0)}),
)


def _outcome(placed: bool = True, reason: str = "") -> RunOutcome:
    sim = ClusterSim(TRUTH, {"a": "a", "b": "b"})
    j1, j2 = job("j1", "training", 100.0), job("j2", "training", 100.0, arrival=10.0)
    recs = [JobRecord(j1), JobRecord(j2)]
    if placed:
        sim.start(j1, "a", 0.0)
        sim.start(j2, "b", 10.0)
        for f in sim.complete_until(1000.0):
            rec = next(r for r in recs if r.job.id == f.job.id)
            rec.status, rec.node, rec.start, rec.end = "succeeded", f.node, f.start, f.end
    else:
        for r in recs:
            r.status, r.reason = "unschedulable", reason or "never placed: stalled"
    end = max((r.end or 0.0 for r in recs), default=0.0) or 100.0
    return RunOutcome(
        records=recs,
        power={n: list(st.power) for n, st in sim.nodes.items()},
        idle={"a": 10.0, "b": 20.0},
        end=end,
    )


def _meta(run: str, scheduler: str = "kube-scheduler", mode: str = "") -> RunMeta:
    return RunMeta(
        run_id=run,
        batch="b",
        scenario="s",
        seed=1,
        scheduler=scheduler,
        mode=mode,
        weight=None,
        time_factor=0.01,
        source="simulated",
    )


def test_a_complete_run_its_energy_gpu_hours_and_times(tmp_path: Path) -> None:
    row = scale.record(tmp_path, _meta("r1"), _outcome())
    # j1 on a: 100 s at 110 W; j2 on b from 10 s: 50 s at 220 W; both idle until 100 s.
    assert row["cluster_kwh"] * 3.6e6 == pytest.approx(110 * 100 + 20 * 10 + 220 * 50 + 20 * 40)
    assert row["above_idle_kwh"] * 3.6e6 == pytest.approx(100 * 100 + 200 * 50)
    assert row["gpu_hours"] == pytest.approx(150 / 3600)
    assert (row["jct_p50_s"], row["jct_p99_s"]) == (50.0, 100.0)
    assert row["valid"] == "yes" and row["label"] == "kube-scheduler default (LeastAllocated)"
    power = (tmp_path / "cluster_power_r1.csv").read_text().splitlines()
    assert power[:3] == ["t_s,watts", "0.000,130.00", "10.000,330.00"]


def test_invalid_runs_are_named(tmp_path: Path) -> None:
    row = scale.record(tmp_path, _meta("r2", mode="most-allocated"), _outcome(placed=False))
    assert row["valid"] == "no"
    assert "placed nothing" in row["problems"]
    assert "timed out before the workload finished" in row["problems"]
    text = "\n".join(scale.table(scale.read_rows(tmp_path / "scale_runs.csv", "b")))
    assert "Invalid runs: r2 (kube-scheduler MostAllocated)" in text


def test_the_energy_check_catches_a_truncated_trace() -> None:
    outcome = _outcome()
    # A bounded buffer that lost the first points: the trace no longer starts at 0.
    assert scale.check(outcome, 100.0, 100.0, first_t=5.0).problems
    assert scale.check(outcome, 100.0, 90.0, first_t=0.0).problems
    assert scale.check(outcome, 100.0, 100.0, first_t=0.0).valid


def test_the_table_compares_per_seed_and_says_who_loses(tmp_path: Path) -> None:
    for run, sched, mode, kwh in (
        ("k", "kube-scheduler", "", 10.0),
        ("m", "kube-scheduler", "most-allocated", 9.0),
        ("e", "energysched", "cluster-energy", 9.5),
    ):
        append_csv(
            tmp_path / "scale_runs.csv",
            scale.COLUMNS,
            [
                {
                    "run_id": run,
                    "batch": "b",
                    "seed": 1,
                    "label": scale.label(_meta(run, sched, mode)),
                    "cluster_kwh": kwh,
                    "valid": "yes",
                }
            ],
        )
    text = "\n".join(scale.table(scale.read_rows(tmp_path / "scale_runs.csv", "b")))
    assert (
        "energysched cluster-energy vs kube-scheduler default (LeastAllocated): **wins** "
        "on cluster energy in 1 of 1 seeds (seed 1: -5.00 %)" in text
    )
    assert (
        "energysched cluster-energy vs kube-scheduler MostAllocated: **loses** on cluster "
        "energy in 0 of 1 seeds (seed 1: +5.56 %)" in text
    )
