"""Results of replays at scale: per run a row and the cluster's power; per batch a report.

Per run (``scale_runs.csv``, written as soon as the run ends, partial runs included):
cluster energy, GPU-hours, wait and job completion time (p50/p99; JCT = wait + run,
from the pod's arrival to its end), makespan, pods not completed, and the checks
of an invalid run:

- ``timed out``: the run hit its wall-time budget (or stalled) before the workload
  finished: its energy covers less work than the others';
- ``placed nothing``: a scheduler that bound no pod (e.g. not running) is no baseline;
- ``energy check``: the cluster energy from the summed power trace equals the sum of
  the per-node integrals, and the trace starts at 0 and ends at the run's end (no
  power left out by a bounded buffer).

``cluster_power_<run>.csv``: the cluster's power step function, every change point.
"""

from __future__ import annotations

import csv
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from energysched_lab.experiment import baselines
from energysched_lab.experiment.accounting import PowerTrace
from energysched_lab.experiment.results import RunMeta, append_csv, traces
from energysched_lab.experiment.simulator import RunOutcome

KUBE = "kube-scheduler"
COLUMNS = (
    "run_id",
    "batch",
    "scenario",
    "seed",
    "label",
    "scheduler",
    "mode",
    "nodes",
    "jobs",
    "succeeded",
    "not_completed",
    "cluster_kwh",
    "above_idle_kwh",
    "gpu_hours",
    "makespan_s",
    "wait_p50_s",
    "wait_p99_s",
    "jct_p50_s",
    "jct_p99_s",
    "valid",
    "problems",
)


def label(meta: RunMeta) -> str:
    if meta.scheduler == KUBE:
        return baselines.label(meta.mode)
    return f"energysched {meta.mode}"


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); NaN for no values."""
    if not values:
        return math.nan
    s = sorted(values)
    return s[min(len(s) - 1, max(0, math.ceil(q / 100 * len(s)) - 1))]


def cluster_power(tr: Mapping[str, PowerTrace], end: float) -> list[tuple[float, float]]:
    """The sum of the nodes' step functions: (t, watts) at every change point up to ``end``."""
    deltas: dict[float, float] = {}
    for t in tr.values():
        prev = 0.0
        for at, w in t.points:
            if at > end:
                break
            deltas[at] = deltas.get(at, 0.0) + (w - prev)
            prev = w
    out: list[tuple[float, float]] = []
    total = 0.0
    for at in sorted(deltas):
        total += deltas[at]
        out.append((at, total))
    return out


def step_energy(points: Sequence[tuple[float, float]], end: float) -> float:
    return sum(
        w * ((points[i + 1][0] if i + 1 < len(points) else end) - t)
        for i, (t, w) in enumerate(points)
        if t < end
    )


@dataclass(frozen=True)
class Checked:
    valid: bool
    problems: tuple[str, ...]


def check(outcome: RunOutcome, nodes_j: float, trace_j: float, first_t: float) -> Checked:
    problems = []
    if any("timed out" in r.reason or "stalled" in r.reason for r in outcome.records):
        problems.append("timed out before the workload finished")
    if outcome.interrupted:
        problems.append("interrupted")
    if not any(r.node for r in outcome.records):
        problems.append("placed nothing")
    if abs(nodes_j - trace_j) > 1e-6 * max(1.0, nodes_j) or first_t > 0:
        problems.append(f"energy check failed: nodes {nodes_j:.1f} J, trace {trace_j:.1f} J")
    return Checked(not problems, tuple(problems))


def record(out: Path, meta: RunMeta, outcome: RunOutcome) -> dict[str, Any]:
    tr = traces(outcome)
    power = cluster_power(tr, outcome.end)
    nodes_j = sum(t.energy() for t in tr.values())
    trace_j = step_energy(power, outcome.end)
    with (out / f"cluster_power_{meta.run_id}.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(("t_s", "watts"))
        w.writerows((f"{t:.3f}", f"{p:.2f}") for t, p in power)
    done = [r for r in outcome.records if r.status == "succeeded"]
    waits = [r.start - r.job.arrival_s for r in done if r.start is not None]
    jcts = [r.end - r.job.arrival_s for r in done if r.end is not None]
    gpu_s = sum(
        (r.end - r.start) * r.job.units
        for r in outcome.records
        if r.job.workload_type == "training" and r.start is not None and r.end is not None
    )
    checked = check(outcome, nodes_j, trace_j, power[0][0] if power else 0.0)
    row: dict[str, Any] = {
        "run_id": meta.run_id,
        "batch": meta.batch,
        "scenario": meta.scenario,
        "seed": meta.seed,
        "label": label(meta),
        "scheduler": meta.scheduler,
        "mode": meta.mode,
        "nodes": len(tr),
        "jobs": len(outcome.records),
        "succeeded": len(done),
        "not_completed": len(outcome.records) - len(done),
        "cluster_kwh": nodes_j / 3.6e6,
        # What the pods added: the cluster's energy less every node idling the whole run.
        "above_idle_kwh": (nodes_j - sum(t.idle_watts for t in tr.values()) * outcome.end) / 3.6e6,
        "gpu_hours": gpu_s / 3600.0,
        "makespan_s": outcome.end,
        "wait_p50_s": percentile(waits, 50),
        "wait_p99_s": percentile(waits, 99),
        "jct_p50_s": percentile(jcts, 50),
        "jct_p99_s": percentile(jcts, 99),
        "valid": "yes" if checked.valid else "no",
        "problems": "; ".join(checked.problems),
    }
    append_csv(out / "scale_runs.csv", COLUMNS, [row])
    return row


def read_rows(path: Path, batch: str) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with path.open(newline="") as fh:
        return [r for r in csv.DictReader(fh) if r["batch"] == batch]


def _num(row: Mapping[str, str], key: str) -> float:
    try:
        return float(row.get(key) or "nan")
    except ValueError:
        return math.nan


def _ms(values: Sequence[float], digits: int = 1) -> str:
    v = [x for x in values if not math.isnan(x)]
    if not v:
        return "-"
    if len(v) == 1:
        return f"{v[0]:.{digits}f}"
    return f"{statistics.mean(v):.{digits}f} ± {statistics.stdev(v):.{digits}f}"


ORDER = (
    baselines.label(baselines.DEFAULT),
    baselines.label(baselines.MOST_ALLOCATED),
    baselines.label(baselines.RTC),
)


def table(rows: Sequence[Mapping[str, str]]) -> list[str]:
    """The per-scheduler table (mean ± sd over seeds) and the per-seed comparisons."""
    labels = sorted(
        {r["label"] for r in rows},
        key=lambda x: (ORDER.index(x) if x in ORDER else len(ORDER), x),
    )
    by = {lab: [r for r in rows if r["label"] == lab] for lab in labels}
    lines = [
        "| scheduler | runs (valid) | cluster energy kWh | above idle kWh | GPU-hours "
        "| makespan h | wait p50 / p99 s | JCT p50 / p99 h | not completed |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for lab, rs in by.items():
        valid = [r for r in rs if r["valid"] == "yes"]
        lines.append(
            f"| {lab} | {len(rs)} ({len(valid)}) "
            f"| {_ms([_num(r, 'cluster_kwh') for r in rs], 2)} "
            f"| {_ms([_num(r, 'above_idle_kwh') for r in rs], 2)} "
            f"| {_ms([_num(r, 'gpu_hours') for r in rs], 1)} "
            f"| {_ms([_num(r, 'makespan_s') / 3600 for r in rs], 2)} "
            f"| {_ms([_num(r, 'wait_p50_s') for r in rs], 0)} / "
            f"{_ms([_num(r, 'wait_p99_s') for r in rs], 0)} "
            f"| {_ms([_num(r, 'jct_p50_s') / 3600 for r in rs], 2)} / "
            f"{_ms([_num(r, 'jct_p99_s') / 3600 for r in rs], 2)} "
            f"| {_ms([_num(r, 'not_completed') for r in rs], 0)} |"
        )
    lines.append("")
    for ref in ORDER[:2]:
        if ref not in by:
            continue
        base = {r["seed"]: _num(r, "cluster_kwh") for r in by[ref]}
        for lab, rs in by.items():
            if lab == ref or not lab.startswith("energysched"):
                continue
            changes = [
                (r["seed"], 100 * (_num(r, "cluster_kwh") / base[r["seed"]] - 1))
                for r in rs
                if r["seed"] in base and base[r["seed"]] > 0
            ]
            if not changes:
                continue
            base_dyn = {r["seed"]: _num(r, "above_idle_kwh") for r in by[ref]}
            dyn = [
                (r["seed"], 100 * (_num(r, "above_idle_kwh") / base_dyn[r["seed"]] - 1))
                for r in rs
                if base_dyn.get(r["seed"], 0) > 0
            ]
            wins = sum(c < 0 for _, c in changes)
            per_seed = ", ".join(f"seed {s}: {c:+.2f} %" for s, c in changes)
            verdict = "**wins**" if wins == len(changes) else "**loses**" if wins == 0 else "mixed"
            lines.append(
                f"- {lab} vs {ref}: {verdict} on cluster energy in {wins} of {len(changes)} "
                f"seeds ({per_seed})"
                + (
                    "; above idle: " + ", ".join(f"seed {s}: {c:+.2f} %" for s, c in dyn) + "."
                    if dyn
                    else "."
                )
            )
    bad = [r for r in rows if r["valid"] != "yes"]
    lines.append("")
    lines.append(
        "Invalid runs: none (no run hit its time budget, every scheduler placed pods, "
        "every energy check passed)."
        if not bad
        else "Invalid runs: "
        + "; ".join(f"{r['run_id']} ({r['label']}): {r['problems']}" for r in bad)
    )
    return lines


def plot(out: Path, rows: Sequence[Mapping[str, str]], path: Path, title: str) -> Path | None:
    """Cluster power over the replayed time, one line per scheduler (its first seed)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, ax = plt.subplots(figsize=(10, 5))
    seen: set[str] = set()
    for r in rows:
        if r["label"] in seen:
            continue
        seen.add(r["label"])
        f = out / f"cluster_power_{r['run_id']}.csv"
        if not f.exists():
            continue
        with f.open(newline="") as fh:
            pts = [(float(a), float(b)) for a, b in list(csv.reader(fh))[1:]]
        if not pts:
            continue
        end = _num(r, "makespan_s")
        xs = [p[0] / 3600 for p in pts] + [end / 3600]
        ys = [p[1] / 1000 for p in pts] + [pts[-1][1] / 1000]
        ax.step(xs, ys, where="post", label=f"{r['label']} (seed {r['seed']})", linewidth=1)
    ax.set_xlabel("replayed time (h)")
    ax.set_ylabel("cluster power (kW, simulated)")
    ax.set_title(title)
    ax.legend(fontsize=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def write_report(
    out: Path,
    batch: str,
    scenario: str,
    command: str,
    cuts: Sequence[str],
    wall_s: float,
    plots: bool = True,
) -> str:
    rows = read_rows(out / "scale_runs.csv", batch)
    lines = [
        f"## Replay at scale: scenario `{scenario}`, batch {batch} (simulated)",
        "",
        f"Command: `{command}`; wall time {wall_s / 60:.1f} min.",
        "",
        "What was replayed: " + "; ".join(cuts) + "." if cuts else "",
        "",
        *table(rows),
        "",
    ]
    if plots and rows:
        p = plot(out, rows, out / "plots" / f"cluster_power_{batch}.png", f"{scenario}: {batch}")
        if p is not None:
            lines += [f"![cluster power](plots/{p.name})", ""]
    text = "\n".join(lines)
    with (out / "scale_report.md").open("a") as fh:
        fh.write(text + "\n")
    return text
