"""results/perf.json and the perf section of BENCHMARKS.md."""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from energysched_lab.perf.common import KUBE_SCHEDULER, say


def limit_key(qps: float, burst: int) -> str:
    """``qps50-burst100``: one client limit (a DNS label, used in namespaces too)."""
    return f"qps{qps:g}-burst{burst}".replace(".", "-")


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a and b else None


def cpu_ms_per_pod(run: Mapping[str, Any]) -> float | None:
    cpu = (run.get("scheduler_process") or {}).get("cpu_seconds")
    bound = run.get("pods_bound")
    return cpu / bound * 1e3 if cpu is not None and bound else None


def compare(runs: Mapping[str, Any]) -> dict[str, Any]:
    """Each energysched run over kube-scheduler's at the same limit (> 1: energysched faster,
    or cheaper for ``cpu_per_pod``, which is kube-scheduler's over energysched's)."""
    ks = runs.get(KUBE_SCHEDULER)
    if not ks:
        return {}
    out = {}
    for label, es in runs.items():
        if label == KUBE_SCHEDULER or not es:
            continue
        out[label] = {
            "drain_rate": _ratio(
                es["pods_per_second"]["bind_phase"], ks["pods_per_second"]["bind_phase"]
            ),
            "scheduler_perf_average": _ratio(
                es["scheduler_perf_throughput"]["average"],
                ks["scheduler_perf_throughput"]["average"],
            ),
            "start_to_last_bind": _ratio(
                ks.get("scheduler_start_to_last_bind_seconds"),
                es.get("scheduler_start_to_last_bind_seconds"),
            ),
            "cpu_per_pod": _ratio(cpu_ms_per_pod(ks), cpu_ms_per_pod(es)),
            "cpu_per_pod_drain": _ratio(
                _get(ks, "scheduler_process", "cpu_ms_per_pod_first_to_last_bind"),
                _get(es, "scheduler_process", "cpu_ms_per_pod_first_to_last_bind"),
            ),
        }
    return out


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


def _get(run: Mapping[str, Any], *path: str) -> Any:
    v: Any = run
    for k in path:
        if not isinstance(v, Mapping):
            return None
        v = v.get(k)
    return v


Row = tuple[str, Callable[[Mapping[str, Any]], Any], str]

ROWS: list[Row] = [
    (
        "**drain rate, pods/s** (first → last bind)",
        lambda r: _get(r, "pods_per_second", "bind_phase"),
        ".1f",
    ),
    (
        "scheduler_perf throughput: avg of 1 s samples",
        lambda r: _get(r, "scheduler_perf_throughput", "average"),
        ".1f",
    ),
    (
        "scheduler_perf throughput: p50 / p90 of 1 s samples",
        lambda r: (
            f"{_f(_get(r, 'scheduler_perf_throughput', 'p50'))} / "
            f"{_f(_get(r, 'scheduler_perf_throughput', 'p90'))}"
        ),
        "",
    ),
    (
        "scheduler start → first bind (s)",
        lambda r: r.get("scheduler_start_to_first_bind_seconds"),
        ".1f",
    ),
    (
        "scheduler start → last bind (s)",
        lambda r: r.get("scheduler_start_to_last_bind_seconds"),
        ".1f",
    ),
    ("pod creator rate, pods/s", lambda r: _get(r, "creation", "pods_per_second"), ".1f"),
    ("pace set by", lambda r: _get(r, "checks", "paced_by"), ""),
    ("machine CPU busy during the run (%)", lambda r: _pct(r.get("machine_cpu_busy")), ".0f"),
    (
        "scheduler CPU seconds (whole run, start-up included)",
        lambda r: _get(r, "scheduler_process", "cpu_seconds"),
        ".1f",
    ),
    ("scheduler CPU ms per pod (whole run)", cpu_ms_per_pod, ".2f"),
    (
        "scheduler CPU ms per pod, first → last bind",
        lambda r: _get(r, "scheduler_process", "cpu_ms_per_pod_first_to_last_bind"),
        ".2f",
    ),
    (
        "scheduler waited for a CPU, s per CPU second run²",
        lambda r: _wait_per_cpu_second(r),
        ".2f",
    ),
    ("scheduler peak RSS (MiB)", lambda r: _get(r, "scheduler_process", "peak_rss_mib"), ".0f"),
    ("decision p50 / p99 (ms), algorithm only", lambda r: _pair(r.get("decision")), ""),
    (
        "decision p50 / p99 (ms), algorithm CPU time³",
        lambda r: _pair(r.get("decision_cpu")) if "decision_cpu" in r else "—",
        "",
    ),
    ("attempt p50 / p99 (ms), whole attempt¹", lambda r: _pair(r.get("attempt")), ""),
    (
        "decisions ≤ 5 ms (%), algorithm only",
        lambda r: _pct(_get(r, "decision", "share_under_5ms")),
        ".1f",
    ),
    ("pods bound / created", lambda r: f"{r.get('pods_bound')} / {r.get('pods_created')}", ""),
    (
        "creation → bound p50 / p99 (s)",
        lambda r: (
            f"{_f(_get(r, 'latency_seconds', 'p50'))} / {_f(_get(r, 'latency_seconds', 'p99'))}"
        ),
        "",
    ),
]


def _wait_per_cpu_second(r: Mapping[str, Any]) -> float | None:
    wait = _get(r, "scheduler_process", "runqueue_wait_seconds")
    cpu = _get(r, "scheduler_process", "cpu_seconds")
    return wait / cpu if wait is not None and cpu else None


#: Rows that carry a ratio energysched/kube-scheduler, and which one (see ``compare``).
RATIO_OF_ROW = {
    ROWS[0][0]: "drain_rate",
    ROWS[1][0]: "scheduler_perf_average",
    ROWS[4][0]: "start_to_last_bind",
    ROWS[9][0]: "cpu_per_pod",
    ROWS[10][0]: "cpu_per_pod_drain",
}


def _pct(v: float | None) -> float | None:
    return None if v is None else v * 100


def _pair(h: Mapping[str, Any] | None) -> str:
    if not h:
        return "n/a"
    return f"{_f(h.get('p50_ms'), '.2f')} / {_f(h.get('p99_ms'), '.2f')}"


def standing(result: Mapping[str, Any]) -> list[str]:
    """Plain sentences: where energysched stands at each limit, with what set the pace."""
    lines = []
    verb = "drains the backlog" if result.get("mode") == "backlog" else "binds its pods"
    for lk, runs in (result.get("runs") or {}).items():
        ks = runs.get(KUBE_SCHEDULER)
        for label, r in (result.get("ratios") or {}).get(lk, {}).items():
            es = runs.get(label) or {}
            ratio = r.get("drain_rate")
            if ratio is None or not ks:
                lines.append(f"- {lk}, {label}: no ratio (a run did not bind).")
                continue
            word = (
                "faster than" if ratio > 1.02 else ("slower than" if ratio < 0.98 else "as fast as")
            )
            lines.append(
                f"- {lk}: **{label} {verb} {word} kube-scheduler** "
                f"(ratio {ratio:.2f}: {_f(_get(es, 'pods_per_second', 'bind_phase'))} vs "
                f"{_f(_get(ks, 'pods_per_second', 'bind_phase'))} pods/s), CPU per pod while "
                "draining "
                f"{_f(_get(es, 'scheduler_process', 'cpu_ms_per_pod_first_to_last_bind'), '.2f')}"
                " vs "
                f"{_f(_get(ks, 'scheduler_process', 'cpu_ms_per_pod_first_to_last_bind'), '.2f')}"
                f" ms. Pace set by {_get(es, 'checks', 'paced_by')} for energysched, by "
                f"{_get(ks, 'checks', 'paced_by')} for kube-scheduler."
            )
    return lines


def render_section(result: Mapping[str, Any]) -> str:
    m = result["machine"]
    runs_by_limit: Mapping[str, Mapping[str, Any]] = result.get("runs") or {}
    variant = []
    if not result.get("energysched_leader_election", True):
        variant.append("energysched without leader election")
    if result.get("energysched_profiled"):
        variant.append("energysched under cProfile")
    backlog = result.get("mode") == "backlog"
    lines = [
        f"### {result['nodes_generated']:,} nodes x {result['pods']:,} pods, "
        f"{result.get('mode', 'stream')}"
        + (f", {', '.join(variant)}" if variant else "")
        + f" ({result['date'][:10]})",
        "",
        "Measured on the **simulated** local cluster (KWOK nodes, real etcd / kube-apiserver / "
        f"kube-scheduler {m['kubernetes']}) on a **{m['nproc']}-core machine** "
        f"({m['cpu_model'] or 'unknown CPU'}, {m['memory_gib']} GiB). "
        + (
            "**Backlog mode:** each run's pods are all created first, with its scheduler not "
            "running; then the scheduler is started and drains the backlog (bound pods sampled "
            "once a second, as scheduler_perf does). "
            if backlog
            else "**Stream mode:** each scheduler runs while its pods are created. "
        )
        + "Every run has a fresh namespace and a freshly started scheduler, one after the other, "
        "the same client limits for both schedulers; energysched leader election "
        f"{'on' if result.get('energysched_leader_election', True) else 'off'} "
        "(the local kube-scheduler runs without). The monitor's model mode "
        + (
            "**ran throughout** (live readings on every node, "
            f"{_get(result, 'monitor', 'nodes_with_reading')} of "
            f"{_get(result, 'monitor', 'nodes')} nodes read before the first run)."
            if result.get("monitor_model_running")
            else "did not run."
        ),
        "",
        "```sh",
        result["command"],
        "```",
        "",
        "Where energysched stands:",
        "",
        *standing(result),
        "",
    ]
    for lk, runs in runs_by_limit.items():
        labels = list(runs)
        ratios = (result.get("ratios") or {}).get(lk, {})
        es_labels = [lab for lab in labels if lab != KUBE_SCHEDULER]
        lines += [
            f"#### client limit {lk.replace('-', ' ')}",
            "",
            "| figure | "
            + " | ".join(labels)
            + "".join(f" | ratio {lab.removeprefix('energysched-')}/ks" for lab in es_labels)
            + " |",
            "| --- |" + " ---: |" * (len(labels) + len(es_labels)),
        ]
        for title, get, fmt in ROWS:
            cells = []
            for lab in labels:
                try:
                    cells.append(_f(get(runs[lab]), fmt) if fmt else str(get(runs[lab])))
                except (KeyError, TypeError, ValueError):
                    cells.append("n/a")
            extra = []
            for lab in es_labels:
                rkey = RATIO_OF_ROW.get(title)
                v = (ratios.get(lab) or {}).get(rkey) if rkey else None
                extra.append(_f(v, ".2f") if v is not None else "")
            lines.append(f"| {title} | " + " | ".join(cells + extra) + " |")
        lines.append("")
    lines += [
        "¹ energysched: one pod's whole scheduling cycle on its loop (pod lookup and parse, "
        "snapshot, algorithm, assume; the Binding call runs after it); kube-scheduler: its "
        "`scheduler_scheduling_attempt_duration_seconds`, which includes binding. Percentiles "
        "are interpolated inside histogram buckets. Ratios are > 1 where energysched does better: "
        "rates energysched/kube-scheduler, times and CPU kube-scheduler/energysched.",
        "",
        "² Time the scheduler's threads were runnable but waited for a core "
        "(`/proc/PID/task/*/schedstat`), per second they ran: on a saturated machine every "
        "wall-clock latency (the decision percentiles above included, for both schedulers) "
        "carries this wait, which is the machine's, not the algorithm's.",
        "",
        "³ energysched's `energysched_scheduling_algorithm_cpu_seconds`: the decision's own "
        "thread CPU time, so without that wait (kube-scheduler has no such metric).",
        "",
        f"Load average (1/5/15 min): {result['loadavg_start']} at start, "
        f"{result.get('loadavg_end')} at the end.",
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
    """``1000x5000-backlog``, with ``-no-le`` / ``-profiled`` for the variants (kept apart);
    stream-mode runs keep the plain ``1000x5000`` key."""
    key = f"{result['nodes_generated']}x{result['pods']}"
    if result.get("mode") == "backlog":
        key += "-backlog"
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
                "Written by `lab/energysched_lab/perf/` (one subsection per cluster size; "
                "re-running "
                "a size replaces its subsection).\n"
            )
        md.write_text(replace_section(text, f"perf:{key}", render_section(result)))
        say(f"updated {md}")
