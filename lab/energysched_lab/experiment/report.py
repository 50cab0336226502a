"""The batch's section of ``results/report.md`` and its PNG plots.

Each batch (one ``make experiment``) appends a section: the comparison table
(cluster energy and makespan per scheduler and weight, mean ± standard deviation
over the repeats, the change against kube-scheduler, the ratio to the offline
optimum), what the optimum is (exact, or a lower bound), and sentences that say
where energysched saves and where it loses.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

KUBE = "kube-scheduler"

Row = Mapping[str, str]


def _f(row: Row, key: str) -> float | None:
    v = row.get(key, "")
    return float(v) if v not in ("", None) else None


@dataclass(frozen=True)
class Group:
    scheduler: str
    mode: str
    weight: str
    rows: tuple[Row, ...]
    #: "on": with the power manager (idle nodes sleep); "off" or "" (older rows): without.
    power: str = ""

    @property
    def label(self) -> str:
        pm = " + power manager" if self.power == "on" else ""
        if self.scheduler == KUBE:
            return KUBE + pm
        return f"energysched {self.mode} w={self.weight}{pm}"

    def complete(self) -> list[Row]:
        return [r for r in self.rows if r["status"] == "complete"]

    def values(self, key: str) -> list[float]:
        return [v for r in self.complete() if (v := _f(r, key)) is not None]


def mean_sd(values: Sequence[float]) -> tuple[float, float] | None:
    if not values:
        return None
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def groups(rows: Sequence[Row]) -> list[Group]:
    by: dict[tuple[str, str, str, str], list[Row]] = defaultdict(list)
    for r in rows:
        power = "on" if r.get("power") == "on" else "off"
        by[(r["scheduler"], r["mode"], r["weight"], power)].append(r)

    def order(k: tuple[str, str, str, str]) -> tuple[int, str, float, str]:
        return (0 if k[0] == KUBE else 1, k[1], float(k[2] or 0), k[3])

    return [Group(k[0], k[1], k[2], tuple(by[k]), k[3]) for k in sorted(by, key=order)]


def placements(g: Group) -> str:
    """The placement seen most often (few jobs), or jobs per node (many)."""
    runs = [r["placement"] for r in g.rows if r.get("placement")]
    if not runs:
        return ""
    first = runs[0].split()
    if len(first) <= 4:
        common, n = Counter(runs).most_common(1)[0]
        pretty = ", ".join(p.replace("=", "→") for p in common.split())
        return pretty + (f" ({n}/{len(runs)} runs)" if len(runs) > 1 else "")
    per_node: Counter[str] = Counter()
    for run in runs:
        per_node.update(p.split("=", 1)[1] for p in run.split())
    return " / ".join(f"{n} {c / len(runs):.0f}" for n, c in sorted(per_node.items())) + " jobs"


def _pm(v: tuple[float, float] | None, scale: float = 1.0, digits: int = 2) -> str:
    if v is None:
        return "-"
    return f"{v[0] / scale:.{digits}f} ± {v[1] / scale:.{digits}f}"


def table(rows: Sequence[Row]) -> tuple[list[str], list[str]]:
    """Markdown table lines and verdict sentences for one scenario's runs."""
    gs = groups(rows)
    # The baseline: kube-scheduler with every node on.
    kube = next((g for g in gs if g.scheduler == KUBE and g.power != "on"), None)
    kube_e = mean_sd(kube.values("cluster_joules")) if kube else None
    kube_t = mean_sd(kube.values("makespan_s")) if kube else None
    lines = [
        "| scheduler | runs | cluster energy kJ | above idle kJ | makespan s "
        "| energy vs kube-scheduler (means) | makespan vs kube-scheduler (means) "
        "| energy / least-energy optimum | makespan / least-makespan optimum | placement |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    verdicts: list[str] = []
    for g in gs:
        e = mean_sd(g.values("cluster_joules"))
        a = mean_sd(g.values("cluster_joules_above_idle"))
        t = mean_sd(g.values("makespan_s"))
        er = mean_sd(g.values("energy_ratio"))
        tr = mean_sd(g.values("makespan_ratio"))
        de = dt = "-"
        if g is not kube and e and t and kube_e and kube_t:
            de = f"{100 * (e[0] - kube_e[0]) / kube_e[0]:+.1f} %"
            dt = f"{100 * (t[0] - kube_t[0]) / kube_t[0]:+.1f} %"
            verdicts.append(verdict(g, kube, dt))
        incomplete = len(g.rows) - len(g.complete())
        runs = f"{len(g.complete())}" + (f" (+{incomplete} incomplete)" if incomplete else "")
        ratio_e = f"{er[0]:.3f}" if er else "-"
        ratio_t = f"{tr[0]:.3f}" if tr else "-"
        lines.append(
            f"| {g.label} | {runs} | {_pm(e, 1000)} | {_pm(a, 1000)} | {_pm(t, 1, 1)} "
            f"| {de} | {dt} "
            f"| {ratio_e} | {ratio_t} | {placements(g)} |"
        )
    opt_lines = optimum_lines(rows)
    return [*lines, "", *opt_lines], verdicts


#: A paired difference smaller than this (percent) is not called a difference.
MEASURABLE_PCT = 1.0


def paired(g: Group, kube: Group, key: str) -> list[float]:
    """Per seed: 100 x (g - kube) / kube, for the seeds both completed (same truth noise)."""
    ks = {r["seed"]: _f(r, key) for r in kube.complete()}
    out = []
    for r in g.complete():
        k, v = ks.get(r["seed"]), _f(r, key)
        if k and v is not None:
            out.append(100 * (v - k) / k)
    return out


def verdict(g: Group, kube: Group | None, makespan_change: str) -> str:
    """One sentence: saves, loses or no measurable difference, compared seed by seed."""
    if kube is None:
        return f"{g.label}: no kube-scheduler run to compare with."
    d = paired(g, kube, "cluster_joules")
    if not d:
        return f"{g.label}: no seed where both completed."
    dt = paired(g, kube, "makespan_s")
    span = f"{statistics.fmean(d):+.1f} % on average, {min(d):+.1f} … {max(d):+.1f} % per seed"
    times = f"makespan {statistics.fmean(dt):+.1f} % ({min(dt):+.1f} … {max(dt):+.1f} %)"
    n = f"{len(d)} seed{'s' if len(d) > 1 else ''}"
    if all(x <= -MEASURABLE_PCT for x in d):
        return f"{g.label}: **saves** cluster energy in all {n} ({span}); {times}."
    if all(x >= MEASURABLE_PCT for x in d):
        return (
            f"{g.label}: **loses**: more cluster energy than kube-scheduler in all {n} "
            f"({span}); {times}; judged by the truth, not by its profiles."
        )
    return (
        f"{g.label}: no measurable difference in cluster energy (not below -{MEASURABLE_PCT:g} % "
        f"in every seed: {span}); {times}."
    )


def power_lines(rows: Sequence[Row]) -> list[str]:
    """With power management: per seed, each scheduler with the power manager against
    kube-scheduler with every node on, against itself without, and against kube-scheduler
    with the power manager (the fair baseline); the waits that wakes add; the cycles."""
    gs = groups(rows)
    on = [g for g in gs if g.power == "on"]
    if not on:
        return []
    kube_off = next((g for g in gs if g.scheduler == KUBE and g.power != "on"), None)
    kube_on = next((g for g in on if g.scheduler == KUBE), None)

    def twin(g: Group) -> Group | None:
        return next(
            (
                o
                for o in gs
                if o.power != "on"
                and (o.scheduler, o.mode, o.weight) == (g.scheduler, g.mode, g.weight)
            ),
            None,
        )

    def per_seed(g: Group, base: Group | None) -> str:
        if base is None or base is g:
            return "-"
        d = paired(g, base, "cluster_joules")
        if not d:
            return "-"
        return f"{statistics.fmean(d):+.1f} % ({', '.join(f'{x:+.1f}' for x in d)})"

    by_seed: dict[str, Row] = {}
    for r in (r for g in on for r in g.rows):
        by_seed.setdefault(r["seed"], r)
    bound = mean_sd([x for r in by_seed.values() if (x := _f(r, "opt_energy_joules")) is not None])
    kind = next(iter(by_seed.values())).get("opt_energy_kind", "") if by_seed else ""
    lines = [
        "",
        "With power management (simulated; per seed in brackets, seeds in order). The "
        "optimum's ratios for these rows are to a bound where every node that can sleep "
        f"sleeps whenever idle, free and at once: {_pm(bound, 1000)} kJ ({kind}); no "
        "manager reaches it (a wake costs energy and time, a node must stay empty past "
        "break-even before it sleeps).",
        "",
        "| scheduler | energy vs kube-scheduler, every node on | vs itself without power "
        "management | vs kube-scheduler + power manager | workflow time mean s (without) "
        "| wake wait p50 / p99 / max s | waiting p99 s (without) | sleeps / wakes (failed) per run "
        "| sleep cycles per node and day |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for g in on:
        off = twin(g)
        waits = [
            f"{statistics.fmean(v):.1f}" if (v := g.values(k)) else "-"
            for k in ("wake_wait_p50_s", "wake_wait_p99_s", "wake_wait_max_s")
        ]
        p99 = g.values("wait_p99_s")
        p99_off = off.values("wait_p99_s") if off else []
        sleeps = g.values("sleeps")
        wakes = g.values("wakes")
        failed = g.values("wake_failures")
        flow = g.values("flow_mean_s")
        flow_off = off.values("flow_mean_s") if off else []
        cycles = "; ".join(r.get("cycles_per_node_day", "") for r in g.complete())
        lines.append(
            f"| {g.label} | {per_seed(g, kube_off)} | {per_seed(g, off)} "
            f"| {per_seed(g, kube_on)} "
            f"| {f'{statistics.fmean(flow):.0f}' if flow else '-'}"
            f" ({f'{statistics.fmean(flow_off):.0f}' if flow_off else '-'}) "
            f"| {' / '.join(waits)} "
            f"| {f'{statistics.fmean(p99):.1f}' if p99 else '-'}"
            f" ({f'{statistics.fmean(p99_off):.1f}' if p99_off else '-'}) "
            f"| {f'{statistics.fmean(sleeps):.1f}' if sleeps else '-'} / "
            f"{f'{statistics.fmean(wakes):.1f}' if wakes else '-'}"
            f" ({f'{statistics.fmean(failed):.1f}' if failed else '-'}) "
            f"| {cycles} |"
        )
    return lines


def stage_lines(stages: Sequence[Row]) -> list[str]:
    """Per stage, what the stages measured of themselves (real clusters: their result
    lines); nothing for a simulated batch, whose stages report nothing."""
    measured = [s for s in stages if s.get("stage_seconds") not in ("", None)]
    if not measured:
        return []
    lines = [
        "Per stage, as measured (container window in whole seconds; the stage's own compute "
        "time from its result line; accuracy: training images for training, test set for "
        "inference):",
        "",
        "| scheduler | stage | stages | nodes | container s | own s | accuracy | joules |",
        "| --- | --- | ---: | --- | ---: | ---: | ---: | ---: |",
    ]
    by: dict[tuple[str, str, str], list[Row]] = defaultdict(list)
    for s in measured:
        label = s["scheduler"] if s["scheduler"] == KUBE else f"energysched w={s['weight']}"
        by[(label, s["stage"], s["workload_type"])].append(s)
    for (label, stage, _), rs in by.items():
        nodes = ", ".join(sorted({r["node"] for r in rs if r.get("node")}))
        joules = [v for r in rs if (v := _f(r, "joules")) is not None]
        lines.append(
            f"| {label} | {stage} | {len(rs)} | {nodes} "
            f"| {_pm(mean_sd([v for r in rs if (v := _f(r, 'duration_s')) is not None]), 1, 1)} "
            f"| {_pm(mean_sd([v for r in rs if (v := _f(r, 'stage_seconds')) is not None]), 1)} "
            f"| {_pm(mean_sd([v for r in rs if (v := _f(r, 'accuracy')) is not None]), 1, 3)} "
            f"| {_pm(mean_sd(joules), 1, 0) if len(joules) == len(rs) else 'not measured'} |"
        )
    return ["", *lines]


def optimum_lines(rows: Sequence[Row]) -> list[str]:
    by_seed: dict[str, Row] = {}
    for r in rows:
        by_seed.setdefault(r["seed"], r)
    if not by_seed or not any(r.get("opt_energy_kind") for r in by_seed.values()):
        return [
            "Offline optimum: not computed (a job fits no node, or scipy, the 'lab' extra, "
            "is missing for a workload too large to enumerate)."
        ]
    e = mean_sd([v for r in by_seed.values() if (v := _f(r, "opt_energy_joules")) is not None])
    et = mean_sd([v for r in by_seed.values() if (v := _f(r, "opt_energy_makespan_s")) is not None])
    t = mean_sd([v for r in by_seed.values() if (v := _f(r, "opt_makespan_s")) is not None])
    tj = mean_sd([v for r in by_seed.values() if (v := _f(r, "opt_makespan_joules")) is not None])
    first = next(iter(by_seed.values()))
    ub = mean_sd(
        [v for r in by_seed.values() if (v := _f(r, "opt_energy_feasible_joules")) is not None]
    )
    bracket = (
        f" The bound's own placement, simulated, uses {_pm(ub, 1000)} kJ: the true least "
        "energy lies between the two."
        if ub and not first["opt_energy_kind"].startswith("exact")
        else ""
    )
    return [
        f"Offline optimum over {len(by_seed)} seed(s), from the truth and the whole workload: "
        f"least energy {_pm(e, 1000)} kJ (makespan {_pm(et, 1, 1)} s), "
        f"{first['opt_energy_kind']}; least makespan {_pm(t, 1, 1)} s "
        f"({_pm(tj, 1000)} kJ), {first['opt_makespan_kind']}. "
        "A ratio to a lower bound overstates the distance to the true optimum. The optimum "
        "ignores the nodes' request capacity (pods share a resource by the sharing model, "
        "where Kubernetes would keep some pending)." + bracket,
    ]


def mode_differences(rows: Sequence[Row]) -> list[str]:
    """Where two modes were run at the same weight: how their results differ."""
    gs = [g for g in groups(rows) if g.scheduler != KUBE]
    modes = sorted({g.mode for g in gs})
    if len(modes) < 2:
        return []
    out = ["", "Modes side by side (same weight, same seeds):", ""]
    by = {(g.mode, g.weight): g for g in gs}
    weights = sorted({g.weight for g in gs}, key=float)
    out.append("| weight | " + " | ".join(f"{m} kJ / s" for m in modes) + " |")
    out.append("| ---: |" + " ---: |" * len(modes))
    for w in weights:
        cells = []
        for m in modes:
            g = by.get((m, w))
            e = mean_sd(g.values("cluster_joules")) if g else None
            t = mean_sd(g.values("makespan_s")) if g else None
            cells.append(f"{e[0] / 1000:.2f} / {t[0]:.0f}" if e and t else "-")
        out.append(f"| {w} | " + " | ".join(cells) + " |")
    return out


# -- plots ---------------------------------------------------------------------------------


def plot_tradeoff(rows: Sequence[Row], path: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=100)
    gs = groups(rows)
    modes = {g.mode for g in gs if g.scheduler != KUBE}
    if "static-raw" in modes and len(modes) > 1:
        # v1.0's runs are an order of magnitude off; they have their own plot.
        gs = [g for g in gs if g.mode != "static-raw"]
        title += " (static-raw: see its own plot)"
    markers = {"static-raw": "s", "normalized": "o", "hybrid": "^", "cluster-energy": "D"}
    by_mode: dict[str, list[tuple[float, float, float, float, str]]] = defaultdict(list)
    for g in gs:
        e = mean_sd(g.values("cluster_joules"))
        t = mean_sd(g.values("makespan_s"))
        if not e or not t:
            continue
        if g.scheduler == KUBE:
            ax.errorbar(
                t[0],
                e[0] / 1000,
                xerr=t[1],
                yerr=e[1] / 1000,
                fmt="X",
                color="black",
                markersize=10,
                label="kube-scheduler",
                capsize=3,
            )
        else:
            by_mode[g.mode].append((t[0], e[0] / 1000, t[1], e[1] / 1000, g.weight))
    for mode, pts in sorted(by_mode.items()):
        pts.sort(key=lambda p: float(p[4]))
        xs, ys = [p[0] for p in pts], [p[1] for p in pts]
        ax.errorbar(
            xs,
            ys,
            xerr=[p[2] for p in pts],
            yerr=[p[3] for p in pts],
            fmt=markers.get(mode, "o") + "-",
            capsize=3,
            label=f"energysched {mode}",
        )
        same: dict[tuple[float, float], list[str]] = defaultdict(list)
        for p in pts:
            same[(round(p[0], 1), round(p[1], 2))].append(p[4])
        for (x, y), ws in same.items():
            ax.annotate(
                "w=" + ",".join(ws),
                (x, y),
                textcoords="offset points",
                xytext=(5, 4 if mode != "hybrid" else -10),
                fontsize=8,
            )
    by_seed: dict[str, Row] = {}
    for r in rows:
        by_seed.setdefault(r["seed"], r)
    for key_e, key_t, lab, mk in (
        ("opt_energy_joules", "opt_energy_makespan_s", "optimum: least energy", "*"),
        ("opt_makespan_joules", "opt_makespan_s", "optimum: least makespan", "P"),
    ):
        es = [v for r in by_seed.values() if (v := _f(r, key_e)) is not None]
        ts = [v for r in by_seed.values() if (v := _f(r, key_t)) is not None]
        if es and ts:
            kind = next(iter(by_seed.values())).get(
                "opt_energy_kind" if "energy" in key_e else "opt_makespan_kind", ""
            )
            suffix = "" if kind.startswith("exact") else " (lower bound)"
            ax.plot(
                statistics.fmean(ts),
                statistics.fmean(es) / 1000,
                mk,
                markersize=12,
                label=lab + suffix,
            )
    _log_if_wide(ax)
    measured = any(str(r.get("source", "")).startswith("measured") for r in rows)
    ax.set_xlabel(f"makespan (s, {'measured' if measured else 'simulated'})")
    ax.set_ylabel("cluster energy (kJ, idle included)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:  # nothing to plot where no energy was measured
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def power_run(rows: Sequence[Row]) -> Row | None:
    """The run whose power per node is plotted: energysched's first, not a v1.0 one if possible."""
    es = [r for r in rows if r["scheduler"] != KUBE]
    return next((r for r in es if r["mode"] != "static-raw"), es[0] if es else None)


def plots_available() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _log_if_wide(ax: Any) -> None:
    """Log axes when points span more than a factor of 8 (v1.0's runs are 20x the rest)."""
    xs: list[float] = []
    ys: list[float] = []
    for line in ax.get_lines():
        xs.extend(float(x) for x in line.get_xdata())
        ys.extend(float(y) for y in line.get_ydata())
    if xs and min(xs) > 0 and max(xs) / min(xs) > 8:
        ax.set_xscale("log")
    if ys and min(ys) > 0 and max(ys) / min(ys) > 8:
        ax.set_yscale("log")


def plot_power(
    traces: Mapping[str, Sequence[tuple[float, float]]],
    path: Path,
    title: str,
    *,
    measured: bool = False,
) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 3.6), dpi=100)
    for node, pts in sorted(traces.items()):
        ax.step([p[0] for p in pts], [p[1] for p in pts], where="post", label=node)
    ax.set_xlabel(f"time (s, {'measured' if measured else 'simulated'})")
    ax.set_ylabel("wall power (W)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_modes(rows: Sequence[Row], path: Path, title: str) -> Path | None:
    """v1.0 (static-raw) vs v1.1 (normalized): does the weight change anything?"""
    gs = [g for g in groups(rows) if g.scheduler != KUBE]
    modes = sorted({g.mode for g in gs} & {"static-raw", "normalized"})
    if len(modes) < 2:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(8, 3.6), dpi=100)
    for mode in modes:
        pts = sorted(
            (
                (
                    float(g.weight),
                    mean_sd(g.values("cluster_joules")),
                    mean_sd(g.values("makespan_s")),
                )
                for g in gs
                if g.mode == mode
            ),
            key=lambda p: p[0],
        )
        pts = [p for p in pts if p[1] and p[2]]
        a1.plot([p[0] for p in pts], [p[1][0] / 1000 for p in pts if p[1]], "o-", label=mode)
        a2.plot([p[0] for p in pts], [p[2][0] for p in pts if p[2]], "o-", label=mode)
    for a in (a1, a2):
        _log_if_wide(a)
    a1.set_xlabel("performance weight")
    a1.set_ylabel("cluster energy (kJ)")
    a2.set_xlabel("performance weight")
    a2.set_ylabel("makespan (s)")
    for a in (a1, a2):
        a.grid(alpha=0.3)
        a.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def write_section(
    out: Path,
    batch: str,
    scenario: str,
    rows: Sequence[Row],
    command: str,
    header: Sequence[str] = (),
    plots: bool = True,
    stages: Sequence[Row] = (),
) -> tuple[str, list[Path]]:
    """Append the batch's section to out/report.md; return its text and the plots made."""
    lines, verdicts = table(rows)
    made: list[Path] = []
    if plots and not plots_available():
        header = [*header, "", "Plots skipped: matplotlib is not installed (pip install '.[lab]')."]
        plots = False
    if plots:
        pdir = out / "plots"
        pdir.mkdir(parents=True, exist_ok=True)
        made.append(
            plot_tradeoff(
                rows,
                pdir / f"tradeoff_{batch}.png",
                f"{scenario}: cluster energy vs makespan ({batch})",
            )
        )
        modes = plot_modes(
            rows, pdir / f"modes_{batch}.png", f"{scenario}: static-raw (v1.0) vs normalized (v1.1)"
        )
        if modes:
            made.append(modes)
    text = "\n".join(
        [
            f"## {scenario}, batch {batch}",
            "",
            f"Command: `{command}`",
            "",
            *header,
            "",
            *lines,
            "",
            *(f"- {v}" for v in verdicts),
            *mode_differences(rows),
            *power_lines(rows),
            *stage_lines(stages),
            "",
            *(f"![{p.stem}](plots/{p.name})" for p in made),
            "",
        ]
    )
    report = out / "report.md"
    with report.open("a") as fh:
        if report.stat().st_size == 0:
            fh.write("# Experiment results (appended per batch, newest last)\n\n")
        fh.write(text + "\n")
    return text, made


def main(argv: Sequence[str] | None = None) -> int:
    """Redraw a batch's plots from runs.csv and its traces (the report text stays)."""
    import argparse

    from energysched_lab.experiment.accounting import read_trace
    from energysched_lab.experiment.results import read_runs

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("batch")
    ap.add_argument("--out", type=Path, default=Path("results"))
    ap.add_argument("--print", action="store_true", help="also print the table and verdicts")
    args = ap.parse_args(argv)
    rows = [r for r in read_runs(args.out / "runs.csv") if r["batch"] == args.batch]
    if not rows:
        print(f"no runs of batch {args.batch} in {args.out / 'runs.csv'}")
        return 1
    pdir = args.out / "plots"
    pdir.mkdir(parents=True, exist_ok=True)
    scenario = rows[0]["scenario"]
    made = [
        plot_tradeoff(
            rows,
            pdir / f"tradeoff_{args.batch}.png",
            f"{scenario}: cluster energy vs makespan ({args.batch})",
        ),
        plot_modes(
            rows,
            pdir / f"modes_{args.batch}.png",
            f"{scenario}: static-raw (v1.0) vs normalized (v1.1)",
        ),
    ]
    first = power_run(rows) or rows[0]
    prefix = f"metrics_{first['run_id']}_"
    traces = {
        f.name.removeprefix(prefix).removesuffix(".txt"): read_trace(f)
        for f in sorted(args.out.glob(f"{prefix}*.txt"))
    }
    made.append(
        plot_power(
            traces, pdir / f"power_{args.batch}.png", f"power per node, run {first['run_id']}"
        )
    )
    if args.print:
        lines, verdicts = table(rows)
        print(
            "\n".join(
                [
                    *lines,
                    "",
                    *(f"- {v}" for v in verdicts),
                    *mode_differences(rows),
                    *power_lines(rows),
                ]
            )
        )
    print("\n".join(str(p) for p in made if p))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
