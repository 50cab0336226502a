"""One benchmark: the cluster up, every (client limit x scheduler) run one after the other,
each on a fresh namespace with a freshly started scheduler, the cluster down."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import io
import pstats
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import psutil

from energysched import contract
from energysched.kube.config import ClusterAccess, load_kubeconfig
from energysched_lab.cluster.local import LocalCluster
from energysched_lab.perf.burst import delete_pods, run_pods
from energysched_lab.perf.checks import pace_checks
from energysched_lab.perf.common import (
    ALGO_CPU_METRIC,
    ALGO_METRIC,
    ATTEMPT_METRIC,
    ENERGYSCHED,
    KUBE_ALGO_METRIC,
    KUBE_ATTEMPT_METRIC,
    KUBE_SCHEDULER,
    say,
)
from energysched_lab.perf.prepare import (
    core_bench,
    install_profiles,
    machine_info,
    wait_for_readings,
)
from energysched_lab.perf.report import compare, limit_key, result_key
from energysched_lab.perf.schedulers import EnergyschedProcess, MonitorProcess
from energysched_lab.perf.stats import cpu_between, histogram_summary
from energysched_lab.perf.watch import (
    MetricsPoller,
    ProcessWatch,
    alive,
    cpu_by_process,
    fetch,
    histogram_from,
    kube_scheduler_ctx,
    loadavg,
    machine_busy,
)


@dataclasses.dataclass(frozen=True)
class Contender:
    label: str  # kube-scheduler, energysched-normalized, energysched-hybrid
    scheduler: str  # KUBE_SCHEDULER or ENERGYSCHED
    mode: str | None = None  # energysched's scoring mode


def contenders(args: argparse.Namespace) -> list[Contender]:
    out = []
    for which in args.schedulers:
        if which == KUBE_SCHEDULER:
            out.append(Contender(KUBE_SCHEDULER, KUBE_SCHEDULER))
        else:
            out += [Contender(f"{ENERGYSCHED}-{m}", ENERGYSCHED, m) for m in args.modes]
    return out


@dataclasses.dataclass
class Started:
    """What the harness holds on the scheduler it started for one run."""

    pid: int
    metrics: Callable[[], str]
    stop: Callable[[], int | None]
    watch: ProcessWatch
    poller: MetricsPoller
    cpu0: dict[str, float]
    machine0: Any
    es: EnergyschedProcess | None = None


def one_run(
    cluster: LocalCluster,
    access: ClusterAccess,
    args: argparse.Namespace,
    who: Contender,
    qps: float,
    burst: int,
    components: Mapping[str, int],
    workdir: Path,
) -> dict[str, Any]:
    """One scheduler, one client limit, one fresh namespace; the scheduler started for it
    (after the pods are created in backlog mode) and stopped after it."""
    lk = limit_key(qps, burst)
    namespace = f"perf-{who.label}-{lk}"
    backlog = args.mode == "backlog"
    state = cluster.load_state()
    assert state is not None
    ks_ctx = kube_scheduler_ctx(cluster.kubeconfig)
    ks_url = f"https://127.0.0.1:{state.ports['scheduler']}/metrics"
    holder: list[Started] = []

    def start() -> None:
        if who.scheduler == KUBE_SCHEDULER:
            proc = cluster.start_kube_scheduler(qps, burst, wait_healthy=False)
            pid = proc.pid

            def ks_metrics() -> str:
                return fetch(ks_url, ks_ctx)

            def ks_stop() -> int | None:
                cluster.stop_kube_scheduler()
                return None

            metrics, stop, es = ks_metrics, ks_stop, None
        else:
            profile = None
            if args.profile:  # one stats file per run: results/es.prof -> es-<run>.prof
                base = Path(args.profile).resolve()
                profile = base.with_name(f"{base.stem}-{who.label}-{lk}{base.suffix or '.prof'}")
            es = EnergyschedProcess(
                cluster.kubeconfig,
                workdir,
                qps,
                burst,
                args.log_level,
                profile,
                leader_election=not args.no_leader_election,
                tag=f"{args.nodes}x{args.pods}-{who.label}-{lk}",
                mode=who.mode or "normalized",
            )
            pid, metrics, stop = es.proc.pid, es.metrics, es.stop
        watch = ProcessWatch(pid)
        watch.start()
        poller = MetricsPoller(metrics)
        poller.start()
        holder.append(
            Started(
                pid,
                metrics,
                stop,
                watch,
                poller,
                cpu_by_process(components),
                psutil.cpu_times(),
                es,
            )
        )

    say(f"{who.label} at {lk}: {args.pods} pods into {namespace} ({args.mode})")
    load0 = loadavg()
    try:
        res = asyncio.run(
            run_pods(
                access,
                namespace,
                args.pods,
                None if who.scheduler == KUBE_SCHEDULER else contract.SCHEDULER_NAME,
                args.concurrency,
                args.run_timeout,
                backlog=backlog,
                start_scheduler=start,
            )
        )
    except BaseException:
        for s in holder:
            s.stop()
        raise
    s = holder[0]
    machine1 = psutil.cpu_times()
    proc = s.watch.stop()
    cpu1 = cpu_by_process({**components, who.label: s.pid})
    text = s.poller.stop()
    still_alive = alive(s.pid)
    rc = s.stop()
    res.update(
        {
            "label": who.label,
            "scheduler": who.scheduler,
            "energysched_mode": who.mode,
            "client_qps": qps,
            "client_burst": burst,
            "scheduler_process": proc,
            "component_cpu_seconds": {
                k: round(cpu1[k] - s.cpu0[k], 2) for k in cpu1 if k in s.cpu0
            },
            "machine_cpu_busy": machine_busy(s.machine0, machine1),
            "loadavg_before": load0,
            "loadavg_after": loadavg(),
            "scheduler_alive_at_end": still_alive,
            "scheduler_exit_code": rc,
            "metrics_error": None if text else s.poller.last_error,
        }
    )
    algo, attempt = (
        (KUBE_ALGO_METRIC, KUBE_ATTEMPT_METRIC)
        if who.scheduler == KUBE_SCHEDULER
        else (ALGO_METRIC, ATTEMPT_METRIC)
    )
    res["decision"] = histogram_summary(histogram_from(text, algo))
    res["attempt"] = histogram_summary(histogram_from(text, attempt))
    if who.scheduler != KUBE_SCHEDULER:
        res["decision_cpu"] = histogram_summary(histogram_from(text, ALGO_CPU_METRIC))
    if s.es is not None:
        res["energysched_log"] = str(s.es.log_path)
        if s.es.profile is not None:
            res["profile"] = summarize_profile(s.es.profile)
    clock = res["clock"]
    if clock["first_bind"] is not None:
        drain_cpu = cpu_between(s.watch.cpu_samples, clock["first_bind"], clock["last_bind"])
        proc["cpu_seconds_first_to_last_bind"] = drain_cpu
        proc["cpu_ms_per_pod_first_to_last_bind"] = (
            drain_cpu / max(res["pods_bound"] - 1, 1) * 1e3 if drain_cpu is not None else None
        )
    res["checks"] = pace_checks(res, qps=qps, backlog=backlog)
    rate = res["pods_per_second"]["bind_phase"]
    say(
        f"{who.label} at {lk}: {res['pods_bound']}/{res['pods_created']} bound, "
        f"{rate or 0:.1f} pods/s (first to last bind), CPU {proc['cpu_seconds'] or 0:.1f} s, "
        f"peak RSS {proc['peak_rss_mib']:.0f} MiB; paced by {res['checks']['paced_by']}"
    )
    say(f"{who.label} at {lk}: deleting the run's pods")
    res["delete_seconds"] = asyncio.run(delete_pods(access, namespace))
    return res


def benchmark(args: argparse.Namespace) -> dict[str, Any]:
    monitor_on = args.monitor == "on" or (args.monitor == "auto" and "hybrid" in args.modes)
    out: dict[str, Any] = {
        "what": "time for each scheduler to bind a burst of pods ("
        + (
            "backlog: created before the scheduler starts, then drained"
            if args.mode == "backlog"
            else "stream: created while the scheduler runs"
        )
        + "), energysched vs kube-scheduler, on the local KWOK cluster (simulated nodes), "
        "same client QPS/burst for both",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": "make perf PERF_ARGS='" + " ".join(args.argv) + "'"
        if args.argv
        else "make perf",
        "mode": args.mode,
        "nodes_generated": args.nodes,
        "pods": args.pods,
        "limits": [list(lim) for lim in args.limits],
        "create_concurrency": args.concurrency,
        "energysched_modes": list(args.modes),
        "monitor_model_running": monitor_on,
        "energysched_profiled": bool(args.profile),
        "energysched_leader_election": not args.no_leader_election,
        "machine": machine_info(),
        "loadavg_start": loadavg(),
        "notes": [],
    }
    if not args.no_core_bench:
        out["core_bench"] = core_bench()
    cluster = LocalCluster(args.cluster_name)
    t0 = time.monotonic()
    say(f"cluster {args.cluster_name!r} up with {args.nodes} generated nodes")
    # kube-scheduler is started by each of its runs, with that run's limits.
    cluster.up(generated_nodes=args.nodes, log=say, start_scheduler=False)
    out["cluster_up_seconds"] = time.monotonic() - t0
    monitor: MonitorProcess | None = None
    try:
        state = cluster.load_state()
        assert state is not None
        components = {p.name: p.pid for p in state.processes}
        access = load_kubeconfig(cluster.kubeconfig)
        out["energy_profiles"] = asyncio.run(install_profiles(access))
        workdir = Path(args.out).resolve().parent / "perf-logs"
        if monitor_on:
            writes = max(args.monitor_writes, 2.0 * args.nodes / args.monitor_heartbeat)
            monitor = MonitorProcess(cluster.kubeconfig, workdir, writes, args.monitor_heartbeat)
            components["monitor-model"] = monitor.proc.pid
            say(f"monitor model mode started ({writes:g} writes/s); waiting for every node")
            out["monitor"] = {
                "writes_per_second_budget": writes,
                "heartbeat_seconds": args.monitor_heartbeat,
                "log": str(monitor.log_path),
                **asyncio.run(wait_for_readings(access, timeout=120 + 2 * args.nodes / writes)),
            }
            say(f"readings on {out['monitor']['nodes_with_reading']} nodes")
        runs: dict[str, dict[str, Any]] = {}
        for qps, burst in args.limits:
            lk = limit_key(qps, burst)
            for who in contenders(args):
                runs.setdefault(lk, {})[who.label] = one_run(
                    cluster, access, args, who, qps, burst, components, workdir
                )
        out["runs"] = runs
        out["ratios"] = {lk: compare(r) for lk, r in runs.items()}
    finally:
        if monitor is not None:
            out.setdefault("monitor", {})["exit_code"] = monitor.stop()
        if args.keep_cluster:
            say(f"cluster {args.cluster_name!r} kept: KUBECONFIG={cluster.kubeconfig}")
        else:
            stopped = cluster.down()
            say(f"cluster {args.cluster_name!r} down ({len(stopped)} processes stopped)")
    out["loadavg_end"] = loadavg()
    out["key"] = result_key(out)
    return out


def summarize_profile(path: Path, top: int = 30) -> dict[str, Any]:
    if not path.exists():
        return {"error": f"{path} not written"}
    text = {}
    for order in ("tottime", "cumulative"):
        buf = io.StringIO()
        pstats.Stats(str(path), stream=buf).strip_dirs().sort_stats(order).print_stats(top)
        text[order] = buf.getvalue()
    report = path.with_suffix(".txt")
    report.write_text(text["tottime"] + "\n" + text["cumulative"])
    return {"stats": str(path), "report": str(report)}
