"""results/perf.json and the perf section of BENCHMARKS.md."""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from energysched.lab.perf.common import ENERGYSCHED, KUBE_SCHEDULER, say


def compare(runs: Mapping[str, Any]) -> dict[str, Any]:
    ks, es = runs.get(KUBE_SCHEDULER), runs.get(ENERGYSCHED)
    if not ks or not es:
        return {}

    def ratio(a: float | None, b: float | None) -> float | None:
        return a / b if a and b else None

    return {
        "pods_per_second_bind_phase": ratio(
            es["pods_per_second"]["bind_phase"], ks["pods_per_second"]["bind_phase"]
        ),
        "pods_per_second_overall": ratio(
            es["pods_per_second"]["overall"], ks["pods_per_second"]["overall"]
        ),
        "scheduler_perf_average": ratio(
            es["scheduler_perf_throughput"]["average"], ks["scheduler_perf_throughput"]["average"]
        ),
    }


def replace_section(document: str, key: str, section: str) -> str:
    """``document`` with the text between ``<!-- key:begin -->`` and ``<!-- key:end -->``
    replaced by ``section`` (appended, markers included, when absent)."""
    begin, end = f"<!-- {key}:begin -->", f"<!-- {key}:end -->"
    block = f"{begin}\n{section.strip()}\n{end}"
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.DOTALL)
    if pattern.search(document):
        return pattern.sub(lambda _: block, document, count=1)
    sep = (
        ""
        if not document or document.endswith("\n\n")
        else ("\n" if document.endswith("\n") else "\n\n")
    )
    return f"{document}{sep}{block}\n"


def _f(v: Any, fmt: str = ".1f", suffix: str = "") -> str:
    if v is None:
        return "n/a"
    if isinstance(v, str):
        return v
    return f"{v:{fmt}}{suffix}"


def render_section(result: Mapping[str, Any]) -> str:
    runs = result.get("runs") or {}
    ks, es = runs.get(KUBE_SCHEDULER) or {}, runs.get(ENERGYSCHED) or {}
    ratio = result.get("ratio_energysched_to_kube_scheduler") or {}
    m = result["machine"]

    def row(label: str, get: Any, fmt: str = ".1f", r: float | None = None) -> str:
        cells = []
        for run in (ks, es):
            try:
                cells.append(_f(get(run), fmt) if run else "n/a")
            except (KeyError, TypeError):
                cells.append("n/a")
        return f"| {label} | {cells[0]} | {cells[1]} | {_f(r, '.2f')} |"

    def lat(q: str) -> Any:
        return lambda r: r["latency_seconds"][q]

    def dec(q: str, scale: float = 1.0) -> Any:
        return lambda r: r["decision"][q] * scale if r.get("decision") else None

    variant = []
    if not result.get("energysched_leader_election", True):
        variant.append("energysched without leader election")
    if result.get("energysched_profiled"):
        variant.append("energysched under cProfile")
    lines = [
        f"### {result['nodes_generated']:,} nodes x {result['pods']:,} pods"
        + (f", {', '.join(variant)}" if variant else "")
        + f" ({result['date'][:10]})",
        "",
        "Measured on the **simulated** local cluster (KWOK nodes, real etcd / kube-apiserver / "
        f"kube-scheduler {m['kubernetes']}) on a **{m['nproc']}-core machine shared with other "
        f"work** ({m['cpu_model'] or 'unknown CPU'}, {m['memory_gib']} GiB); both schedulers "
        f"ran side by side, client limits QPS {result['client_qps']:g} / burst "
        f"{result['client_burst']} for both; energysched mode `normalized`, leader election "
        f"{'on' if result.get('energysched_leader_election', True) else 'off'} "
        "(the local kube-scheduler runs without). Each scheduler got its own burst, one after "
        "the other.",
        "",
        "```sh",
        result["command"],
        "```",
        "",
        "| figure | kube-scheduler | energysched | ratio es/ks |",
        "| --- | ---: | ---: | ---: |",
        row(
            "pods/s, bind phase (first → last bind)",
            lambda r: r["pods_per_second"]["bind_phase"],
            r=ratio.get("pods_per_second_bind_phase"),
        ),
        row(
            "pods/s, overall (first create → last bind)",
            lambda r: r["pods_per_second"]["overall"],
            r=ratio.get("pods_per_second_overall"),
        ),
        row(
            "scheduler_perf throughput: avg of 1 s samples",
            lambda r: r["scheduler_perf_throughput"]["average"],
            r=ratio.get("scheduler_perf_average"),
        ),
        row(
            "scheduler_perf throughput: p50 / p90 of 1 s samples",
            lambda r: (
                f"{_f(r['scheduler_perf_throughput']['p50'])} / "
                f"{_f(r['scheduler_perf_throughput']['p90'])}"
            ),
        ),
        row("creation → bound latency p50 (s)", lat("p50")),
        row("creation → bound latency p99 (s)", lat("p99")),
        row(
            "scheduler CPU seconds during its burst",
            lambda r: r["scheduler_process"]["cpu_seconds"],
        ),
        row(
            "scheduler peak RSS during its burst (MiB)",
            lambda r: r["scheduler_process"]["peak_rss_mib"],
            ".0f",
        ),
        row("per-pod decision p50 (ms, histogram)", dec("p50_ms"), ".2f"),
        row("per-pod decision p99 (ms, histogram)", dec("p99_ms"), ".2f"),
        row("decisions ≤ 5 ms (%)", dec("share_under_5ms", 100.0), ".2f"),
        row("pods bound / created", lambda r: f"{r['pods_bound']} / {r['pods_created']}"),
        row(
            "scheduler still running at the end",
            lambda r: {True: "yes", False: "**no**"}.get(r.get("scheduler_alive_at_end")),
        ),
        row("machine CPU busy during the burst (%)", lambda r: r["machine_cpu_busy"] * 100, ".0f"),
        "",
        f"Load average (1/5/15 min): {result['loadavg_start']} at start, "
        + ", ".join(f"{k}: {r['loadavg_before']} → {r['loadavg_after']}" for k, r in runs.items())
        + f", {result.get('loadavg_end')} at the end.",
        "",
    ]
    if result.get("energysched_profiled"):
        lines += ["**energysched ran under cProfile in this run: its figures are inflated.**", ""]
    cb = result.get("core_bench")
    if cb:
        lines += [
            "Pure-core decision timing (no I/O; same machine, load average "
            f"{cb['loadavg']} after it):",
            "",
            "```",
            "$ " + cb["command"],
            cb["output"],
            "```",
            "",
        ]
    for note in result.get("notes") or []:
        lines.append(f"- {note}")
    return "\n".join(lines).rstrip() + "\n"


def result_key(result: Mapping[str, Any]) -> str:
    """``1000x5000``, with ``-no-le`` / ``-profiled`` for the variants (kept apart)."""
    key = f"{result['nodes_generated']}x{result['pods']}"
    if not result.get("energysched_leader_election", True):
        key += "-no-le"
    if result.get("energysched_profiled"):
        key += "-profiled"
    return key


def write_results(result: dict[str, Any], out: Path, md: Path | None) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    key = result_key(result)
    doc: dict[str, Any] = {}
    if out.exists():
        with contextlib.suppress(json.JSONDecodeError, OSError):
            doc = json.loads(out.read_text())
    doc.setdefault("runs", {})[key] = result
    out.write_text(json.dumps(doc, indent=2, default=str) + "\n")
    say(f"wrote {out} ({key})")
    if md is not None:
        text = (
            md.read_text()
            if md.exists()
            else (
                "# Benchmarks\n\nFigures measured in this repository, with the command that "
                "produced them. Machine and load are part of every figure.\n"
            )
        )
        if "<!-- perf:" not in text:
            text = text.rstrip("\n") + (
                "\n\n## `make perf`: binding a burst of pods, energysched vs kube-scheduler\n\n"
                "Written by `energysched/lab/perf/` (one subsection per cluster size; re-running "
                "a size replaces its subsection).\n"
            )
        md.write_text(replace_section(text, f"perf:{key}", render_section(result)))
        say(f"updated {md}")
