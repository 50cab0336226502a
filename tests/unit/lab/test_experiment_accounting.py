"""Energy as a plug measures it: the CSV's joules are the trace files' integrals."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from energysched_lab.experiment import results
from energysched_lab.experiment.accounting import (
    PowerTrace,
    integrate_rows,
    read_trace,
    write_trace,
)
from energysched_lab.experiment.engine import ClusterSim
from energysched_lab.experiment.simulator import JobRecord, RunOutcome
from tests.unit.lab.experiment_helpers import job, truth


def test_step_integral_by_hand() -> None:
    tr = PowerTrace("n", 2.0, ((0.0, 2.0), (1.5, 10.0), (2.25, 4.0)), 3.0)
    assert tr.integrate(0.0, 3.0) == pytest.approx(2 * 1.5 + 10 * 0.75 + 4 * 0.75)
    assert tr.integrate(1.0, 2.0) == pytest.approx(2 * 0.5 + 10 * 0.5)


def test_trace_file_has_every_second_and_integrates_to_the_same(tmp_path: Path) -> None:
    tr = PowerTrace("n", 2.0, ((0.0, 2.0), (1.5, 10.0), (2.25, 4.0)), 4.5)
    write_trace(tmp_path / "m.txt", tr)
    rows = read_trace(tmp_path / "m.txt")
    assert [t for t, _ in rows] == [0.0, 1.0, 1.5, 2.0, 2.25, 3.0, 4.0, 4.5]
    assert integrate_rows(rows, 0.0, 4.5) == pytest.approx(tr.energy())


def test_csv_joules_equal_the_trace_integrals(tmp_path: Path) -> None:
    t = truth(
        a=(5.0, {"sequential": (3.0, 9.0, "cpu", 0.25), "training": (2.0, 30.0, "cpu", 1.0)}),
        b=(1.0, {"sequential": (1.0, 2.0, "cpu", 0.25)}),
    )
    sim = ClusterSim(t, {"a": "a", "b": "b"})
    jobs = [job("p", "sequential", 5.0), job("q", "training", 3.0), job("r", "sequential", 2.0)]
    sim.start(jobs[0], "a", 0.0)
    sim.start(jobs[1], "a", 0.3)
    sim.start(jobs[2], "b", 0.7)
    fin = {f.job.id: f for f in sim.complete_until(100.0)}
    end = max(f.end for f in fin.values())
    records = [
        JobRecord(j, "succeeded", node=fin[j.id].node, start=fin[j.id].start, end=fin[j.id].end)
        for j in jobs
    ]
    outcome = RunOutcome(
        records, {n: s.power for n, s in sim.nodes.items()}, {"a": 5.0, "b": 1.0}, end
    )
    meta = results.RunMeta("r1", "b1", "test", 1, "energysched", "normalized", 0.0, 0.01, "unit")
    run = results.record(tmp_path, meta, outcome, None, None)
    with (tmp_path / "thesis_results.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 3
    for row in rows:
        trace = read_trace(tmp_path / f"metrics_r1_{row['node']}.txt")
        joules = integrate_rows(trace, float(row["start_s"]), float(row["end_s"]))
        assert float(row["joules"]) == pytest.approx(joules, rel=1e-6)
        idle = 5.0 if row["node"] == "a" else 1.0
        above = float(row["joules"]) - idle * float(row["duration_s"])
        assert float(row["joules_above_idle"]) == pytest.approx(above, rel=1e-6, abs=1e-6)
    total = sum(
        integrate_rows(read_trace(tmp_path / f"metrics_r1_{n}.txt"), 0.0, end) for n in ("a", "b")
    )
    assert run["cluster_joules"] == pytest.approx(total, rel=1e-6)
    # idle included: the cluster used more than the jobs' dynamic energy
    assert run["cluster_joules"] - run["cluster_joules_above_idle"] == pytest.approx(6.0 * end)


def test_unplaced_and_failed_jobs_keep_their_row_without_invented_joules(tmp_path: Path) -> None:
    t = truth(a=(5.0, {"sequential": (1.0, 9.0, "cpu", 0.25)}))
    sim = ClusterSim(t, {"a": "a"})
    j1, j2, j3 = job("p", "sequential", 2.0), job("q", "training", 1.0), job("r", "inference", 1)
    sim.start(j1, "a", 0.0)
    (fin,) = sim.complete_until(10.0)
    records = [
        JobRecord(j1, "succeeded", node="a", start=0.0, end=fin.end),
        JobRecord(j2, "failed", "truth.yaml has no training figures for node class a", node="a"),
        JobRecord(
            j3, "unschedulable", "Unschedulable: 0/1 nodes are available: 1 Insufficient cpu"
        ),
    ]
    outcome = RunOutcome(records, {"a": sim.nodes["a"].power}, {"a": 5.0}, fin.end)
    meta = results.RunMeta("r2", "b1", "test", 1, "kube-scheduler", "", None, 0.01, "unit")
    run = results.record(tmp_path, meta, outcome, None, None)
    with (tmp_path / "thesis_results.csv").open() as fh:
        rows = {r["job"]: r for r in csv.DictReader(fh)}
    assert rows["q"]["status"] == "failed" and rows["q"]["joules"] == ""
    assert rows["r"]["status"] == "unschedulable" and "Insufficient cpu" in rows["r"]["reason"]
    assert rows["r"]["node"] == "" and rows["r"]["joules"] == ""
    assert run["status"].startswith("incomplete") and run["not_completed"] == 2
    assert "energy_ratio" not in run
