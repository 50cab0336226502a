"""After a batch: its section of report.md, the plots, and the summary printed.

Both ways of running a batch (the local simulator in :mod:`.commands` and a real
cluster in :mod:`.realcluster`) end here.
"""

from __future__ import annotations

import argparse
from typing import Any

from energysched_lab.experiment import report, results
from energysched_lab.experiment.accounting import read_trace


def finish(
    args: argparse.Namespace,
    scenario: str,
    batch: str,
    command: str,
    rows: list[dict[str, Any]],
    default_factor: float,
) -> int:
    all_rows = [r for r in results.read_runs(args.out / "runs.csv") if r["batch"] == batch]
    header = [
        f"Scenario `{scenario}`; {len(all_rows)} runs; time factor "
        f"{args.time_factor or default_factor:g} wall s per simulated s. "
        f"Source: {all_rows[0]['source'] if all_rows else '-'}. Energy is the whole "
        "cluster's (every node, idle included) over the run; makespan from the first "
        "arrival to the last job's end.",
    ]
    run_ids = {r["run_id"] for r in all_rows}
    stages = [
        s for s in results.read_runs(args.out / "thesis_results.csv") if s["run_id"] in run_ids
    ]
    text, plots = report.write_section(
        args.out,
        batch,
        scenario,
        all_rows,
        command,
        header,
        plots=not args.no_plots,
        stages=stages,
    )
    if not args.no_plots and report.plots_available():
        first = report.power_run(all_rows) or (all_rows[0] if all_rows else None)
        if first:
            traces = {
                f.name.removeprefix(f"metrics_{first['run_id']}_").removesuffix(".txt"): read_trace(
                    f
                )
                for f in sorted(args.out.glob(f"metrics_{first['run_id']}_*.txt"))
            }
            p = report.plot_power(
                traces,
                args.out / "plots" / f"power_{batch}.png",
                f"power per node, run {first['run_id']}",
                measured=str(first.get("source", "")).startswith("measured"),
            )
            plots.append(p)
            with (args.out / "report.md").open("a") as fh:
                fh.write(f"![{p.stem}](plots/{p.name})\n\n")
    print(text)
    print(
        f"results: {args.out}/thesis_results.csv, runs.csv, metrics_*.txt, report.md"
        + (f", {', '.join(str(p) for p in plots)}" if plots else "")
    )
    return 0
