"""What a run leaves behind: CSV rows (appended, never overwritten) and power traces.

``thesis_results.csv`` (the original's name) has one row per stage or job;
``runs.csv`` one row per run (cluster energy, makespan, the optimum and the ratios).
Joules are computed from the same step functions the trace files hold, so the CSV
and the traces agree (a test integrates the files).
"""

from __future__ import annotations

import csv
import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from energysched_lab.experiment.accounting import PowerTrace, write_trace
from energysched_lab.experiment.optimum import Optimum
from energysched_lab.experiment.simulator import JobRecord, RunOutcome

STAGE_COLUMNS = (
    "run_id",
    "scenario",
    "seed",
    "scheduler",
    "mode",
    "weight",
    "stage",
    "job",
    "workload_type",
    "node",
    "start_s",
    "end_s",
    "duration_s",
    "mean_watts",
    "joules",
    "joules_above_idle",
    "stage_seconds",
    "accuracy",
    "status",
    "reason",
    "source",
)
RUN_COLUMNS = (
    "run_id",
    "batch",
    "scenario",
    "seed",
    "scheduler",
    "mode",
    "weight",
    "jobs",
    "succeeded",
    "not_completed",
    "makespan_s",
    "cluster_joules",
    "cluster_joules_above_idle",
    "opt_energy_joules",
    "opt_energy_makespan_s",
    "opt_energy_kind",
    "opt_energy_feasible_joules",
    "opt_makespan_s",
    "opt_makespan_joules",
    "opt_makespan_kind",
    "energy_ratio",
    "makespan_ratio",
    "time_factor",
    "source",
    "status",
    "placement",
    "power",
    "sleeps",
    "wakes",
    "wake_failures",
    "cycles_per_node_day",
    "wait_p50_s",
    "wait_p99_s",
    "wake_wait_p50_s",
    "wake_wait_p99_s",
    "wake_wait_max_s",
    "flow_mean_s",
    "flow_p99_s",
)


@dataclass(frozen=True)
class RunMeta:
    run_id: str
    batch: str
    scenario: str
    seed: int
    scheduler: str  # "kube-scheduler" or "energysched"
    mode: str  # "" for kube-scheduler
    weight: float | None
    time_factor: float
    source: str
    #: Run with the power manager (idle nodes sleep, pods wake them).
    power: bool = False


def append_csv(path: Path, columns: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> None:
    """Rows appended under the header; a file with other columns (an older version's) is
    moved aside first, never appended to out of step."""
    new = not path.exists() or path.stat().st_size == 0
    if not new:
        with path.open(newline="") as fh:
            header = next(csv.reader(fh), [])
        if header != list(columns):
            n = 1
            while (aside := path.with_name(f"{path.stem}.old-{n}{path.suffix}")).exists():
                n += 1
            path.rename(aside)
            print(
                f"{path}: its columns are an older version's; kept as {aside.name}, "
                "new rows start a new file",
                file=sys.stderr,
            )
            new = True
    with path.open("a", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(columns), extrasaction="raise")
        if new:
            w.writeheader()
        for r in rows:
            w.writerow({c: _fmt(r.get(c)) for c in columns})


def _fmt(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return "" if math.isnan(v) else f"{v:.6f}".rstrip("0").rstrip(".")
    return str(v)


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0..100), linear between closest ranks; None when empty."""
    if not values:
        return None
    xs = sorted(values)
    pos = (len(xs) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def traces(outcome: RunOutcome) -> dict[str, PowerTrace]:
    return {
        n: PowerTrace(n, outcome.idle[n], tuple(pts), outcome.end)
        for n, pts in outcome.power.items()
    }


def record(
    out: Path,
    meta: RunMeta,
    outcome: RunOutcome,
    opt_energy: Optimum | None,
    opt_makespan: Optimum | None,
) -> dict[str, Any]:
    """Write the run's traces and CSV rows; return its run row."""
    out.mkdir(parents=True, exist_ok=True)
    tr = traces(outcome)
    for node, trace in tr.items():
        write_trace(
            out / f"metrics_{meta.run_id}_{node}.txt",
            trace,
            [
                f"run {meta.run_id}: scenario {meta.scenario}, seed {meta.seed}, "
                f"{meta.scheduler} {meta.mode} weight {meta.weight}",
                f"source: {meta.source}",
            ],
        )
    rows = []
    for rec in sorted(outcome.records, key=lambda r: (r.start is None, r.start or 0.0, r.job.id)):
        row: dict[str, Any] = {
            "run_id": meta.run_id,
            "scenario": meta.scenario,
            "seed": meta.seed,
            "scheduler": meta.scheduler,
            "mode": meta.mode,
            "weight": meta.weight,
            "stage": rec.job.stage,
            "job": rec.job.id,
            "workload_type": rec.job.workload_type,
            "node": rec.node,
            "status": rec.status,
            "reason": rec.reason,
            "source": meta.source,
        }
        if rec.node and rec.start is not None and rec.end is not None:
            t = tr[rec.node]
            joules = t.integrate(rec.start, rec.end)
            dur = rec.end - rec.start
            row.update(
                start_s=rec.start,
                end_s=rec.end,
                duration_s=dur,
                joules=joules,
                mean_watts=joules / dur if dur > 0 else t.watts_at(rec.start),
                joules_above_idle=joules - t.idle_watts * dur,
            )
        rows.append(row)
    append_csv(out / "thesis_results.csv", STAGE_COLUMNS, rows)

    done = [r for r in outcome.records if r.status == "succeeded"]
    complete = len(done) == len(outcome.records) and not outcome.interrupted
    makespan = outcome.end
    cluster = sum(t.energy() for t in tr.values())
    idle = sum(t.idle_watts for t in tr.values())
    run: dict[str, Any] = {
        "run_id": meta.run_id,
        "batch": meta.batch,
        "scenario": meta.scenario,
        "seed": meta.seed,
        "scheduler": meta.scheduler,
        "mode": meta.mode,
        "weight": meta.weight,
        "jobs": len(outcome.records),
        "succeeded": len(done),
        "not_completed": len(outcome.records) - len(done),
        "makespan_s": makespan,
        "cluster_joules": cluster,
        "cluster_joules_above_idle": cluster - idle * makespan,
        "time_factor": meta.time_factor,
        "source": meta.source,
        "status": "complete"
        if complete
        else ("interrupted" if outcome.interrupted else "incomplete: " + "; ".join(outcome.notes)),
        "placement": " ".join(f"{r.job.id}={r.node or '-'}" for r in outcome.records),
        "power": "on" if meta.power else "off",
    }
    # Waiting: from a job's release (arrival or predecessor's end) to its bind.
    waits = [
        r.start - r.released
        for r in outcome.records
        if r.start is not None and r.released is not None and r.node
    ]
    run.update(wait_p50_s=percentile(waits, 50), wait_p99_s=percentile(waits, 99))
    # Workflow time: from a workflow's arrival to its last stage's end (completed ones).
    flows: dict[int, list[JobRecord]] = {}
    for r in outcome.records:
        if r.job.workflow is not None:
            flows.setdefault(r.job.workflow, []).append(r)
    times = [
        max(r.end for r in recs if r.end is not None) - min(r.job.arrival_s for r in recs)
        for recs in flows.values()
        if all(r.status == "succeeded" and r.end is not None for r in recs)
    ]
    if times:
        run.update(flow_mean_s=sum(times) / len(times), flow_p99_s=percentile(times, 99))
    ps = outcome.power_summary
    if ps is not None:
        wake_waits = list(ps.get("waits", []))
        run.update(
            sleeps=ps.get("sleeps"),
            wakes=ps.get("wakes"),
            wake_failures=ps.get("wake_failures"),
            cycles_per_node_day=ps.get("cycles_per_node_day"),
            wake_wait_p50_s=percentile(wake_waits, 50),
            wake_wait_p99_s=percentile(wake_waits, 99),
            wake_wait_max_s=max(wake_waits) if wake_waits else None,
        )
    if opt_energy is not None:
        run.update(
            opt_energy_joules=opt_energy.energy_j,
            opt_energy_makespan_s=opt_energy.makespan_s,
            opt_energy_kind=opt_energy.label,
            opt_energy_feasible_joules=(
                opt_energy.feasible.energy_j if opt_energy.feasible else opt_energy.energy_j
            ),
        )
        if complete:
            run["energy_ratio"] = cluster / opt_energy.energy_j
    if opt_makespan is not None:
        run.update(
            opt_makespan_s=opt_makespan.makespan_s,
            opt_makespan_joules=opt_makespan.energy_j,
            opt_makespan_kind=opt_makespan.label,
        )
        if complete:
            run["makespan_ratio"] = makespan / opt_makespan.makespan_s
    append_csv(out / "runs.csv", RUN_COLUMNS, [run])
    return run


def read_runs(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))
