"""One benchmark: the cluster up, both schedulers' runs one after the other, the cluster down."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import io
import pstats
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import psutil

from energysched import contract
from energysched.kube.config import ClusterAccess, load_kubeconfig
from energysched.lab.cluster.local import LocalCluster
from energysched.lab.perf.burst import delete_pods, run_burst
from energysched.lab.perf.common import (
    ALGO_METRIC,
    ENERGYSCHED,
    KUBE_ALGO_METRIC,
    KUBE_SCHEDULER,
    say,
)
from energysched.lab.perf.prepare import core_bench, install_profiles, machine_info
from energysched.lab.perf.report import compare, result_key
from energysched.lab.perf.schedulers import EnergyschedProcess
from energysched.lab.perf.stats import histogram_delta, histogram_summary, parse_histogram
from energysched.lab.perf.watch import (
    MetricsPoller,
    ProcessWatch,
    alive,
    cpu_by_process,
    fetch,
    histogram_getter,
    kube_scheduler_ctx,
    loadavg,
    machine_busy,
)


def scheduler_run(
    label: str,
    access: ClusterAccess,
    args: argparse.Namespace,
    watch_pid: int,
    component_pids: Mapping[str, int],
    scheduler_name: str | None,
    metrics: Any,
    delete_after: bool,
) -> dict[str, Any]:
    """One burst for one scheduler, with its process accounted over the burst."""
    namespace = f"perf-{label}"
    before = metrics()
    poller = MetricsPoller(metrics)
    poller.start()
    watch = ProcessWatch(watch_pid)
    cpu0 = cpu_by_process(component_pids)
    mt0 = psutil.cpu_times()
    load0 = loadavg()
    watch.start()
    say(f"{label}: burst of {args.pods} pods into {namespace}")
    res = asyncio.run(
        run_burst(access, namespace, args.pods, scheduler_name, args.concurrency, args.run_timeout)
    )
    proc = watch.stop()
    mt1 = psutil.cpu_times()
    cpu1 = cpu_by_process(component_pids)
    res["scheduler_process"] = proc
    res["component_cpu_seconds"] = {k: round(cpu1[k] - cpu0[k], 2) for k in cpu1 if k in cpu0}
    res["machine_cpu_busy"] = machine_busy(mt0, mt1)
    res["loadavg_before"] = load0
    res["loadavg_after"] = loadavg()
    after = poller.stop()
    res["decision"] = histogram_summary(histogram_delta(after, before)) if after else None
    res["scheduler_alive_at_end"] = alive(watch_pid)
    rate = res["pods_per_second"]["bind_phase"]
    say(
        f"{label}: {res['pods_bound']}/{res['pods_created']} bound, "
        f"{rate or 0:.1f} pods/s (bind phase), CPU {proc['cpu_seconds'] or 0:.1f} s, "
        f"peak RSS {proc['peak_rss_mib']:.0f} MiB"
    )
    if delete_after:
        say(f"{label}: deleting the burst's pods")
        res["delete_seconds"] = asyncio.run(delete_pods(access, namespace))
    return res


def benchmark(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {
        "what": "time to bind a burst of pods, energysched vs kube-scheduler, on the local "
        "KWOK cluster (simulated nodes), same client QPS/burst for both",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": "make perf PERF_ARGS='" + " ".join(args.argv) + "'"
        if args.argv
        else "make perf",
        "nodes_generated": args.nodes,
        "pods": args.pods,
        "client_qps": args.qps,
        "client_burst": args.burst,
        "create_concurrency": args.concurrency,
        "energysched_mode": "normalized",
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
    cluster.up(
        generated_nodes=args.nodes, scheduler_qps=args.qps, scheduler_burst=args.burst, log=say
    )
    out["cluster_up_seconds"] = time.monotonic() - t0
    es: EnergyschedProcess | None = None
    try:
        state = cluster.load_state()
        assert state is not None
        pids = {p.name: p.pid for p in state.processes}
        access = load_kubeconfig(cluster.kubeconfig)
        out["energy_profiles"] = asyncio.run(install_profiles(access))
        workdir = Path(args.out).resolve().parent / "perf-logs"
        es = EnergyschedProcess(
            cluster.kubeconfig,
            workdir,
            args.qps,
            args.burst,
            args.log_level,
            Path(args.profile).resolve() if args.profile else None,
            leader_election=not args.no_leader_election,
            tag=result_key(out),
        )
        out["energysched_seconds_to_leader"] = es.wait_leader(300)
        out["energysched_log"] = str(es.log_path)
        errors: list[str] = []
        ks_ctx = kube_scheduler_ctx(cluster.kubeconfig)
        ks_url = f"https://127.0.0.1:{state.ports['scheduler']}/metrics"
        ks_metrics = histogram_getter(lambda: fetch(ks_url, ks_ctx), KUBE_ALGO_METRIC, errors)
        es_metrics = histogram_getter(es.metrics, ALGO_METRIC, errors)
        components = {**pids, ENERGYSCHED: es.proc.pid}
        runs: dict[str, Any] = {}
        for i, which in enumerate(args.schedulers):
            last = i == len(args.schedulers) - 1
            runs[which] = scheduler_run(
                which,
                access,
                args,
                pids[KUBE_SCHEDULER] if which == KUBE_SCHEDULER else es.proc.pid,
                components,
                None if which == KUBE_SCHEDULER else contract.SCHEDULER_NAME,
                ks_metrics if which == KUBE_SCHEDULER else es_metrics,
                delete_after=not last or args.keep_cluster,
            )
        out["runs"] = runs
        out["ratio_energysched_to_kube_scheduler"] = compare(runs)
        out["metric_errors"] = errors
        with contextlib.suppress(OSError):
            m = es.metrics()
            out["energysched_e2e"] = histogram_summary(
                parse_histogram(m, "energysched_pod_scheduling_duration_seconds")
            )
            out["energysched_bind"] = histogram_summary(
                parse_histogram(m, "energysched_binding_duration_seconds")
            )
    finally:
        if es is not None:
            rc = es.stop()
            out["energysched_exit_code"] = rc
            if args.profile:
                out["profile"] = summarize_profile(Path(args.profile))
        if args.keep_cluster:
            say(f"cluster {args.cluster_name!r} kept: KUBECONFIG={cluster.kubeconfig}")
        else:
            stopped = cluster.down()
            say(f"cluster {args.cluster_name!r} down ({len(stopped)} processes stopped)")
    out["loadavg_end"] = loadavg()
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
