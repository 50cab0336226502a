"""The report says where energysched saves and where it loses."""

from __future__ import annotations

from pathlib import Path

from energysched_lab.experiment import report


def row(
    scheduler: str, seed: int, joules: float, makespan: float, weight: str = ""
) -> dict[str, str]:
    return {
        "run_id": f"{scheduler}-{seed}",
        "batch": "b",
        "scenario": "s",
        "seed": str(seed),
        "scheduler": scheduler,
        "mode": "" if scheduler == "kube-scheduler" else "normalized",
        "weight": weight,
        "status": "complete",
        "cluster_joules": str(joules),
        "cluster_joules_above_idle": str(joules / 2),
        "makespan_s": str(makespan),
        "opt_energy_joules": "900",
        "opt_energy_makespan_s": "50",
        "opt_energy_kind": "exact (all 27 placements simulated)",
        "opt_makespan_s": "30",
        "opt_makespan_joules": "1200",
        "opt_makespan_kind": "exact (all 27 placements simulated)",
        "energy_ratio": str(joules / 900),
        "makespan_ratio": str(makespan / 30),
        "placement": "a=x b=y",
    }


def test_a_loss_is_reported_as_one(tmp_path: Path) -> None:
    rows = [row("kube-scheduler", s, 1000 + s, 40) for s in (1, 2, 3)]
    rows += [row("energysched", s, 1500 + s, 90, "0") for s in (1, 2, 3)]
    text, plots = report.write_section(tmp_path, "b", "s", rows, "cmd", plots=True)
    assert "**loses**: more cluster energy than kube-scheduler in all 3 seeds" in text
    assert "+49.9 % on average" in text
    assert "| energysched normalized w=0 | 3 | 1.50 ± 0.00 |" in text
    assert "exact (all 27 placements simulated)" in text
    assert all(p.exists() and p.stat().st_size > 1000 for p in plots)
    assert (tmp_path / "report.md").read_text().count("## s, batch b") == 1


def test_savings_are_compared_seed_by_seed(tmp_path: Path) -> None:
    kube = [row("kube-scheduler", s, j, 40) for s, j in ((1, 1000), (2, 1400), (3, 1200))]
    mixed = [row("energysched", s, 1150, 40, "0") for s in (1, 2, 3)]  # +15, -18, -4 %
    text, _ = report.write_section(tmp_path, "b", "s", kube + mixed, "cmd", plots=False)
    assert "no measurable difference" in text and "**saves**" not in text
    always = [row("energysched", s, j, 40, "0") for s, j in ((1, 980), (2, 1300), (3, 1100))]
    text, _ = report.write_section(tmp_path, "b", "s", kube + always, "cmd", plots=False)
    assert "**saves** cluster energy in all 3 seeds" in text


def test_reruns_append_sections(tmp_path: Path) -> None:
    rows = [row("kube-scheduler", 1, 1000, 40)]
    report.write_section(tmp_path, "b1", "s", rows, "cmd", plots=False)
    report.write_section(tmp_path, "b2", "s", rows, "cmd", plots=False)
    text = (tmp_path / "report.md").read_text()
    assert "batch b1" in text and "batch b2" in text


def _stage(scheduler: str, stage: str, own: str, acc: str, joules: str) -> dict[str, str]:
    return {
        "scheduler": scheduler,
        "weight": "" if scheduler == "kube-scheduler" else "0.5",
        "stage": stage,
        "workload_type": stage,
        "node": "realnode",
        "duration_s": "3",
        "stage_seconds": own,
        "accuracy": acc,
        "joules": joules,
    }


def test_measured_stages_get_a_table_and_simulated_ones_none() -> None:
    stages = [
        _stage("kube-scheduler", "inference", "2.5", "0.9", "127.5"),
        _stage("kube-scheduler", "inference", "3.5", "0.8", ""),
        _stage("energysched", "inference", "2.0", "0.9", "90"),
    ]
    lines = report.stage_lines(stages)
    rows = [ln for ln in lines if ln.startswith("| kube") or ln.startswith("| energy")]
    assert rows == [
        "| kube-scheduler | inference | 2 | realnode | 3.0 ± 0.0 | 3.00 ± 0.71 | 0.850 ± 0.071"
        " | not measured |",
        "| energysched w=0.5 | inference | 1 | realnode | 3.0 ± 0.0 | 2.00 ± 0.00 | 0.900 ± 0.000"
        " | 90 ± 0 |",
    ]
    assert report.stage_lines([{**s, "stage_seconds": ""} for s in stages]) == []
