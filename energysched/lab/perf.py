"""``make perf``: how fast energysched binds a burst of pods, next to kube-scheduler.

A benchmark, not a test: nothing here asserts on time. One local cluster (real
etcd, kube-apiserver, kube-controller-manager, kube-scheduler; KWOK nodes) is
started with ``--nodes N`` generated nodes and kube-scheduler's client limited
to ``--qps``/``--burst``; energysched runs as a subprocess with the same
limits, leader election on and its metrics on a free loopback port. Both
schedulers run for the whole benchmark (as they would side by side in a
cluster); each gets one burst of ``--pods`` pods in a namespace of its own, one
after the other, the first burst's pods deleted and gone before the second.

Per burst, a separate unthrottled client creates the pods (``--concurrency``
creates in flight) and records when each create call returned; a watch on the
namespace records when each pod was first seen with a ``nodeName``. From that:

* pods/s over the bind phase (first bind to last bind) and overall (first
  create to last bind), plus scheduler_perf's figure: per-second samples of how
  many pods are bound, as average / p50 / p90 of the per-second rates;
* creation-to-bound latency per pod (create call returned -> bind seen), p50/p99;
* the scheduler's CPU seconds (``cpu_times`` at both ends of its burst) and peak
  RSS (sampled every 0.5 s; ``VmHWM`` too), for both schedulers;
* energysched's per-pod decision time from its
  ``energysched_scheduling_algorithm_duration_seconds`` histogram (and kube-
  scheduler's ``scheduler_scheduling_algorithm_duration_seconds`` when its
  secure metrics endpoint answers).

Results go to ``--out`` (JSON; one entry per nodes x pods size, others kept)
and to a section of BENCHMARKS.md (between markers; other sections kept).
``--profile PATH`` runs energysched under cProfile (its timings are then
inflated; use it to find where the time goes, not for the figures).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import datetime as dt
import io
import json
import math
import os
import platform
import pstats
import re
import shutil
import ssl
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import psutil
import yaml
from prometheus_client.parser import text_string_to_metric_families

from energysched import contract
from energysched.kb.io import dump_profile, load_profiles
from energysched.kube.client import JSON, ApiError, KubeClient, api_path
from energysched.kube.config import ClusterAccess, load_kubeconfig
from energysched.kube.reflector import EventType, Reflector
from energysched.lab.cluster import nodes as node_classes
from energysched.lab.cluster import versions
from energysched.lab.cluster.local import LocalCluster
from energysched.lab.cluster.processes import free_port
from energysched.scheduler.process import SchedulerProcess

ROOT = Path(__file__).resolve().parents[2]
CRD_PATH = ROOT / "manifests" / "crd" / "energyprofiles.yaml"
PROFILES_DIR = ROOT / "kb" / "profiles"
INSTANCE_TYPE_LABEL = "node.kubernetes.io/instance-type"
CRD_API = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
PROFILES_PATH = api_path(contract.API_VERSION, contract.PROFILE_PLURAL)
ALGO_METRIC = "energysched_scheduling_algorithm_duration_seconds"
KUBE_ALGO_METRIC = "scheduler_scheduling_algorithm_duration_seconds"
KUBE_SCHEDULER = "kube-scheduler"
ENERGYSCHED = "energysched"
MIB = 1 << 20


def say(msg: str) -> None:
    print(f"[perf {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# -- pure computations (unit-tested) ---------------------------------------------------


def quantile(values: Sequence[float], q: float) -> float | None:
    """The ``q`` quantile (0..1) with linear interpolation between order statistics."""
    if not values:
        return None
    s = sorted(values)
    pos = q * (len(s) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def throughput_from_samples(samples: Sequence[tuple[float, int]]) -> dict[str, Any]:
    """scheduler_perf's SchedulingThroughput from (time, pods bound so far) samples.

    Per-interval rates from the first interval in which the count rose through the
    interval in which it reached its final value (idle intervals before the first
    and after the last bind are not counted; stalls in between are).
    """
    empty: dict[str, Any] = {"average": None, "p50": None, "p90": None, "p99": None, "intervals": 0}
    first = next((i for i in range(1, len(samples)) if samples[i][1] > samples[i - 1][1]), None)
    if first is None:
        return empty
    final = samples[-1][1]
    last = next(i for i in range(len(samples)) if samples[i][1] == final)
    rates = []
    for i in range(first, last + 1):
        dt_ = samples[i][0] - samples[i - 1][0]
        if dt_ > 0:
            rates.append((samples[i][1] - samples[i - 1][1]) / dt_)
    if not rates:
        return empty
    return {
        "average": statistics.fmean(rates),
        "p50": quantile(rates, 0.50),
        "p90": quantile(rates, 0.90),
        "p99": quantile(rates, 0.99),
        "intervals": len(rates),
    }


def bind_rates(bound_at: Sequence[float], start: float) -> dict[str, float | None]:
    """Pods/s over the bind phase (first to last bind) and overall (``start`` to last)."""
    if not bound_at:
        return {"bind_phase": None, "overall": None, "bind_phase_seconds": None}
    first, last = min(bound_at), max(bound_at)
    phase = last - first
    return {
        "bind_phase": (len(bound_at) - 1) / phase if phase > 0 else None,
        "overall": len(bound_at) / (last - start) if last > start else None,
        "bind_phase_seconds": phase,
    }


def latencies(created: Mapping[str, float], bound: Mapping[str, float]) -> dict[str, Any]:
    """Creation (create call returned) to bound (seen by the watch), per pod, in seconds.

    A pod seen bound before its create call returned counts as 0 (and is counted).
    """
    values = []
    early = 0
    for name, t_bound in bound.items():
        t_created = created.get(name)
        if t_created is None:
            continue
        d = t_bound - t_created
        if d < 0:
            early += 1
            d = 0.0
        values.append(d)
    return {
        "p50": quantile(values, 0.50),
        "p90": quantile(values, 0.90),
        "p99": quantile(values, 0.99),
        "max": max(values) if values else None,
        "pods": len(values),
        "bound_before_create_returned": early,
    }


Buckets = list[tuple[float, float]]  # (upper bound, cumulative count), sorted; last is +Inf


def parse_histogram(text: str, name: str) -> tuple[Buckets, float, float] | None:
    """(buckets, count, sum) of an unlabelled-or-summed Prometheus histogram, or None."""
    for family in text_string_to_metric_families(text):
        if family.name != name:
            continue
        by_le: dict[float, float] = {}
        count = total = 0.0
        for s in family.samples:
            if s.name == f"{name}_bucket":
                le = float(s.labels["le"])
                by_le[le] = by_le.get(le, 0.0) + float(s.value)
            elif s.name == f"{name}_count":
                count += float(s.value)
            elif s.name == f"{name}_sum":
                total += float(s.value)
        return sorted(by_le.items()), count, total
    return None


def histogram_delta(
    after: tuple[Buckets, float, float], before: tuple[Buckets, float, float] | None
) -> tuple[Buckets, float, float]:
    if before is None:
        return after
    prev = dict(before[0])
    return (
        [(le, c - prev.get(le, 0.0)) for le, c in after[0]],
        after[1] - before[1],
        after[2] - before[2],
    )


def histogram_quantile(q: float, buckets: Buckets) -> float | None:
    """Prometheus' histogram_quantile: linear interpolation inside the bucket."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    total = buckets[-1][1]
    rank = q * total
    prev_le, prev_c = 0.0, 0.0
    for le, c in buckets:
        if c >= rank:
            if math.isinf(le):
                return prev_le  # above the highest finite bound: say that bound
            if c == prev_c:
                return le
            return prev_le + (le - prev_le) * (rank - prev_c) / (c - prev_c)
        prev_le, prev_c = le, c
    return prev_le


def share_at_most(limit: float, buckets: Buckets) -> float | None:
    """Fraction of observations <= ``limit`` (exact when ``limit`` is a bucket bound)."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    below = [c for le, c in buckets if le <= limit]
    return (below[-1] if below else 0.0) / buckets[-1][1]


def histogram_summary(h: tuple[Buckets, float, float] | None) -> dict[str, Any] | None:
    if h is None:
        return None
    buckets, count, total = h
    return {
        "count": count,
        "mean_ms": total / count * 1e3 if count else None,
        "p50_ms": _ms(histogram_quantile(0.50, buckets)),
        "p99_ms": _ms(histogram_quantile(0.99, buckets)),
        "share_under_5ms": share_at_most(0.005, buckets),
        "buckets": [[le if math.isfinite(le) else "+Inf", c] for le, c in buckets],
    }


def _ms(v: float | None) -> float | None:
    return None if v is None else v * 1e3


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


# -- process accounting -----------------------------------------------------------------


def _cpu_seconds(proc: psutil.Process) -> float:
    t = proc.cpu_times()
    return float(t.user + t.system)


def _vm_hwm(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


class ProcessWatch:
    """CPU seconds and peak RSS of one process over a window (RSS sampled every 0.5 s)."""

    def __init__(self, pid: int, interval: float = 0.5) -> None:
        self.pid = pid
        self.proc = psutil.Process(pid)
        self.interval = interval
        self.peak_rss = 0
        self._cpu0 = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self) -> None:
        with contextlib.suppress(psutil.Error):
            self.peak_rss = max(self.peak_rss, int(self.proc.memory_info().rss))

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def start(self) -> None:
        self._cpu0 = _cpu_seconds(self.proc)
        self._sample()
        self._thread = threading.Thread(target=self._loop, name=f"rss-{self.pid}", daemon=True)
        self._thread.start()

    def stop(self) -> dict[str, Any]:
        self._sample()
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        try:
            cpu: float | None = _cpu_seconds(self.proc) - self._cpu0
            cpu_total: float | None = _cpu_seconds(self.proc)
        except psutil.Error:
            cpu = cpu_total = None
        return {
            "pid": self.pid,
            "cpu_seconds": cpu,
            "cpu_seconds_since_start": cpu_total,
            "peak_rss_mib": self.peak_rss / MIB,
            "vm_hwm_mib": (h / MIB) if (h := _vm_hwm(self.pid)) is not None else None,
        }


def _cpu_by_process(pids: Mapping[str, int]) -> dict[str, float]:
    out = {}
    for name, pid in pids.items():
        with contextlib.suppress(psutil.Error):
            out[name] = _cpu_seconds(psutil.Process(pid))
    return out


def _machine_busy(t0: Any, t1: Any) -> float:
    """Share of all CPUs busy between two ``psutil.cpu_times()`` readings."""
    total0, total1 = sum(t0), sum(t1)
    idle0 = t0.idle + getattr(t0, "iowait", 0.0)
    idle1 = t1.idle + getattr(t1, "iowait", 0.0)
    span = total1 - total0
    return 1.0 - (idle1 - idle0) / span if span > 0 else 0.0


def _loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


# -- metrics endpoints ------------------------------------------------------------------


def _fetch(url: str, ctx: ssl.SSLContext | None = None) -> str:
    with urllib.request.urlopen(url, timeout=10, context=ctx) as resp:
        body: bytes = resp.read()
        return body.decode()


def _kube_scheduler_ctx(kubeconfig: Path) -> ssl.SSLContext:
    """Client-certificate TLS to kube-scheduler's self-signed secure port (loopback)."""
    doc = yaml.safe_load(kubeconfig.read_text())
    user = doc["users"][0]["user"]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.load_cert_chain(user["client-certificate"], user["client-key"])
    return ctx


# -- the energysched subprocess ----------------------------------------------------------


class EnergyschedProcess(SchedulerProcess):
    """energysched with a metrics port, optionally under cProfile."""

    def __init__(
        self,
        kubeconfig: Path,
        workdir: Path,
        qps: float,
        burst: int,
        log_level: str,
        profile: Path | None,
        leader_election: bool = True,
        tag: str = "perf",
    ) -> None:
        self.port = free_port()
        self.metrics_url = f"http://127.0.0.1:{self.port}/metrics"
        self.profile = profile
        self.leader_election = leader_election
        config = {
            "profiles": [{"schedulerName": contract.SCHEDULER_NAME, "mode": "normalized"}],
            "leaderElection": {"enabled": leader_election, "name": "energy-scheduler-perf"},
            "metricsAddress": f"127.0.0.1:{self.port}",
            "clientConnection": {"qps": qps, "burst": burst},
        }
        super().__init__(
            kubeconfig,
            config,
            workdir,
            f"energysched-{tag}",
            log_level=log_level,
            python_args=("-m", "cProfile", "-o", str(profile)) if profile else (),
        )

    def metrics(self) -> str:
        return _fetch(self.metrics_url)

    def wait_leader(self, timeout: float) -> float:
        """Seconds from start until it holds the lease (caches synced), or until its
        caches are synced when it runs without leader election."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"energysched exited: {self.tail()}")
            with contextlib.suppress(OSError):
                ready = (
                    re.search(r"^energysched_leader 1(\.0)?$", self.metrics(), re.MULTILINE)
                    if self.leader_election
                    else "caches synced" in self.log()
                )
                if ready:
                    return time.monotonic() - self.started
            time.sleep(0.25)
        raise RuntimeError(f"energysched not leader after {timeout:.0f} s: {self.tail()}")

    def stop(self, timeout: float = 60) -> int | None:
        return super().stop(timeout)


# -- one burst ---------------------------------------------------------------------------


def pod_manifest(name: str, scheduler_name: str | None, index: int) -> JSON:
    spec: JSON = {
        "containers": [
            {
                "name": "main",
                "image": "registry.example/energysched/noop:1",
                "resources": {"requests": {"cpu": "1m", "memory": "1Mi"}},
            }
        ],
        "restartPolicy": "Never",
        "terminationGracePeriodSeconds": 0,
    }
    if scheduler_name:
        spec["schedulerName"] = scheduler_name
    wt = contract.WORKLOAD_TYPES[index % len(contract.WORKLOAD_TYPES)]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "labels": {contract.WORKLOAD_TYPE_LABEL: wt, "app.kubernetes.io/part-of": "perf"},
        },
        "spec": spec,
    }


async def pod_count(kube: KubeClient, namespace: str) -> int:
    page = await kube.get(api_path("v1", "pods", namespace), limit=1)
    meta = page.get("metadata") or {}
    return len(page.get("items") or []) + int(meta.get("remainingItemCount") or 0)


async def run_burst(
    access: ClusterAccess,
    namespace: str,
    count: int,
    scheduler_name: str | None,
    concurrency: int,
    timeout: float,
) -> dict[str, Any]:
    """Create ``count`` pods as fast as possible; watch them bind. Times are monotonic."""
    created: dict[str, float] = {}
    bound: dict[str, float] = {}
    failures: list[str] = []

    def on_pod(event: EventType, obj: JSON, old: JSON | None) -> None:
        name = str(obj["metadata"]["name"])
        if name not in bound and (obj.get("spec") or {}).get("nodeName"):
            bound[name] = time.monotonic()

    async with (
        KubeClient(access, qps=0, timeout=120, max_connections=concurrency + 10) as kube,
        KubeClient(access, qps=0, timeout=120, user_agent="energysched-perf-watch") as wkube,
    ):
        await kube.create(
            api_path("v1", "namespaces"),
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
        )
        watch = Reflector(wkube, api_path("v1", "pods", namespace), on_pod, name=namespace)
        watch_task = asyncio.create_task(watch.run())
        await asyncio.wait_for(watch.synced.wait(), 60)

        samples: list[tuple[float, int]] = []

        async def sample() -> None:
            while True:
                samples.append((time.monotonic(), len(bound)))
                await asyncio.sleep(1.0)

        sem = asyncio.Semaphore(concurrency)

        async def create(i: int) -> None:
            name = f"perf-{i:05d}"
            async with sem:
                try:
                    await kube.create(
                        api_path("v1", "pods", namespace), pod_manifest(name, scheduler_name, i)
                    )
                except ApiError as exc:
                    failures.append(f"{name}: {exc}")
                    return
                created[name] = time.monotonic()

        t_start = time.monotonic()
        sampler = asyncio.create_task(sample())
        await asyncio.gather(*(create(i) for i in range(count)))
        t_created = time.monotonic()
        say(
            f"{namespace}: created {len(created)} pods in {t_created - t_start:.1f} s "
            f"({len(failures)} failed); {len(bound)} bound so far"
        )
        deadline = t_start + timeout
        last_report = time.monotonic()
        while len(bound) < len(created) and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            if time.monotonic() - last_report > 15:
                last_report = time.monotonic()
                say(f"{namespace}: {len(bound)}/{len(created)} bound")
        await asyncio.sleep(1.05)  # one more sample after the last bind
        sampler.cancel()
        watch_task.cancel()
        await asyncio.gather(sampler, watch_task, return_exceptions=True)

    bound_times = [bound[n] for n in created if n in bound]
    return {
        "namespace": namespace,
        "scheduler_name": scheduler_name or "default-scheduler",
        "pods_requested": count,
        "pods_created": len(created),
        "pods_bound": len(bound_times),
        "complete": len(bound_times) == count,
        "create_failures": failures[:10],
        "creation_seconds": t_created - t_start,
        "creation_pods_per_second": len(created) / (t_created - t_start),
        "pods_per_second": bind_rates(bound_times, t_start),
        "scheduler_perf_throughput": throughput_from_samples(
            [(t - t_start, c) for t, c in samples]
        ),
        "latency_seconds": latencies(created, bound),
        "first_bind_after_seconds": (min(bound_times) - t_start) if bound_times else None,
        "last_bind_after_seconds": (max(bound_times) - t_start) if bound_times else None,
        "watch_stats": dataclasses.asdict(watch.stats),
    }


async def delete_pods(access: ClusterAccess, namespace: str, timeout: float = 900) -> float:
    """Delete every pod of ``namespace`` (grace 0) and the namespace; wait for the pods.

    A DELETE of thousands of pods can outlast the API server's request timeout (504)
    while the deletion goes on server-side: keep polling, and re-issue it now and then.
    """
    t0 = time.monotonic()
    path = api_path("v1", "pods", namespace)
    async with KubeClient(access, qps=0, timeout=120) as kube:
        issued = -1e9
        while True:
            if time.monotonic() - issued > 30:
                issued = time.monotonic()
                try:
                    await kube.delete(path, gracePeriodSeconds=0)
                except ApiError as exc:
                    if exc.status not in (0, 429, 500, 503, 504):
                        raise
                    say(f"{namespace}: delete pods: {exc.status} {exc.reason}; still deleting")
            left = await pod_count(kube, namespace)
            if left == 0:
                break
            if time.monotonic() - t0 > timeout:
                raise RuntimeError(f"{left} pods of {namespace} still there after {timeout} s")
            await asyncio.sleep(2)
        with contextlib.suppress(ApiError):
            await kube.delete(api_path("v1", "namespaces", name=namespace))
    return time.monotonic() - t0


# -- cluster set-up ----------------------------------------------------------------------


def class_profiles() -> list[JSON]:
    """kb/profiles, each re-targeted at its node class (instance-type label of kb/nodes)."""
    result = load_profiles(PROFILES_DIR)
    if result.failures:
        raise RuntimeError("kb/profiles: " + "; ".join(str(f) for f in result.failures))
    classes = {c.name: c for c in node_classes.load_node_classes()}
    out = []
    for spec in result.profiles:
        cls = classes.get(spec.name)
        if cls is None or INSTANCE_TYPE_LABEL not in cls.labels:
            raise RuntimeError(f"profile {spec.name!r}: no node class with {INSTANCE_TYPE_LABEL}")
        selector = {INSTANCE_TYPE_LABEL: cls.labels[INSTANCE_TYPE_LABEL]}
        out.append(dump_profile(dataclasses.replace(spec, node_selector=selector)))
    return out


async def install_profiles(access: ClusterAccess) -> int:
    crd = yaml.safe_load(CRD_PATH.read_text())
    async with KubeClient(access, qps=0) as kube:
        await kube.create(CRD_API, crd)
        name = crd["metadata"]["name"]
        deadline = time.monotonic() + 60
        while True:
            obj = await kube.get(f"{CRD_API}/{name}")
            conds = (obj.get("status") or {}).get("conditions") or []
            if any(c.get("type") == "Established" and c.get("status") == "True" for c in conds):
                break
            if time.monotonic() > deadline:
                raise RuntimeError("EnergyProfile CRD not Established after 60 s")
            await asyncio.sleep(0.5)
        profiles = class_profiles()
        for manifest in profiles:
            for attempt in range(40):  # discovery of a fresh CRD can lag a moment
                try:
                    await kube.create(PROFILES_PATH, manifest)
                    break
                except ApiError as exc:
                    if exc.status != 404 or attempt == 39:
                        raise
                    await asyncio.sleep(0.5)
    return len(profiles)


# -- orchestration -------------------------------------------------------------------------


def core_bench() -> dict[str, Any]:
    cmd = [sys.executable, "-m", "energysched.lab.microbench"]
    say("pure-core timing: " + " ".join(["python", *cmd[1:]]))
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=ROOT)
    return {
        "command": "python -m energysched.lab.microbench",
        "output": proc.stdout.strip(),
        "returncode": proc.returncode,
        "loadavg": _loadavg(),
    }


def machine_info() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    from importlib.metadata import version

    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "memory_gib": round(psutil.virtual_memory().total / (1 << 30), 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "energysched": version("energysched"),
        "kubernetes": versions.KUBERNETES_VERSION,
        "kwok": versions.KWOK_VERSION,
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
    }


def _git(*args: str) -> str:
    git = shutil.which("git")
    if git is None:
        return ""
    proc = subprocess.run([git, *args], capture_output=True, text=True, cwd=ROOT, check=False)
    return proc.stdout.strip()


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
    cpu0 = _cpu_by_process(component_pids)
    mt0 = psutil.cpu_times()
    load0 = _loadavg()
    watch.start()
    say(f"{label}: burst of {args.pods} pods into {namespace}")
    res = asyncio.run(
        run_burst(access, namespace, args.pods, scheduler_name, args.concurrency, args.run_timeout)
    )
    proc = watch.stop()
    mt1 = psutil.cpu_times()
    cpu1 = _cpu_by_process(component_pids)
    res["scheduler_process"] = proc
    res["component_cpu_seconds"] = {k: round(cpu1[k] - cpu0[k], 2) for k in cpu1 if k in cpu0}
    res["machine_cpu_busy"] = _machine_busy(mt0, mt1)
    res["loadavg_before"] = load0
    res["loadavg_after"] = _loadavg()
    after = poller.stop()
    res["decision"] = histogram_summary(histogram_delta(after, before)) if after else None
    res["scheduler_alive_at_end"] = _alive(watch_pid)
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


def _alive(pid: int) -> bool:
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


class MetricsPoller:
    """Scrapes a histogram every few seconds and keeps the last good one, so that the
    figures survive a scheduler that exits before its burst is over."""

    def __init__(self, get: Any, interval: float = 5.0) -> None:
        self.get = get
        self.interval = interval
        self.last: tuple[Buckets, float, float] | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="metrics", daemon=True)

    def _poll(self) -> None:
        got = self.get()
        if got is not None:
            self.last = got

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._poll()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> tuple[Buckets, float, float] | None:
        self._stop.set()
        self._thread.join()
        self._poll()
        return self.last


def _histogram_getter(fetch: Any, name: str, errors: list[str]) -> Any:
    def get() -> tuple[Buckets, float, float] | None:
        try:
            return parse_histogram(fetch(), name)
        except Exception as exc:  # a benchmark keeps going without one figure
            errors.append(f"{name}: {type(exc).__name__}: {exc}")
            return None

    return get


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
        "loadavg_start": _loadavg(),
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
        ks_ctx = _kube_scheduler_ctx(cluster.kubeconfig)
        ks_url = f"https://127.0.0.1:{state.ports['scheduler']}/metrics"
        ks_metrics = _histogram_getter(lambda: _fetch(ks_url, ks_ctx), KUBE_ALGO_METRIC, errors)
        es_metrics = _histogram_getter(es.metrics, ALGO_METRIC, errors)
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
    out["loadavg_end"] = _loadavg()
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


# -- reporting -----------------------------------------------------------------------------


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
                "Written by `energysched/perf.py` (one subsection per cluster size; re-running "
                "a size replaces its subsection).\n"
            )
        md.write_text(replace_section(text, f"perf:{key}", render_section(result)))
        say(f"updated {md}")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="python -m energysched.lab.perf", description=__doc__.split("\n")[0]
    )
    ap.add_argument("--nodes", type=int, default=1000, help="generated KWOK nodes (default 1000)")
    ap.add_argument("--pods", type=int, default=5000, help="pods per burst (default 5000)")
    ap.add_argument("--qps", type=float, default=50.0, help="client QPS of both schedulers")
    ap.add_argument("--burst", type=int, default=100, help="client burst of both schedulers")
    ap.add_argument("--concurrency", type=int, default=50, help="pod creates in flight")
    ap.add_argument("--out", default="results/perf.json")
    ap.add_argument("--benchmarks-md", default="BENCHMARKS.md", help="'' to skip")
    ap.add_argument("--cluster-name", default="perf")
    ap.add_argument("--keep-cluster", action="store_true", help="leave the cluster running")
    ap.add_argument(
        "--schedulers",
        nargs="+",
        choices=(KUBE_SCHEDULER, ENERGYSCHED),
        default=[KUBE_SCHEDULER, ENERGYSCHED],
        help="which bursts to run, in this order",
    )
    ap.add_argument("--run-timeout", type=float, default=0.0, help="s per burst (0: auto)")
    ap.add_argument("--log-level", default="info", help="energysched's log level")
    ap.add_argument(
        "--no-leader-election",
        action="store_true",
        help="run energysched without leader election (the local kube-scheduler has none)",
    )
    ap.add_argument("--profile", default="", help="run energysched under cProfile, stats here")
    ap.add_argument("--no-core-bench", action="store_true", help="skip energysched.lab.microbench")
    ap.add_argument("--note", action="append", default=[], help="a note for BENCHMARKS.md")
    args = ap.parse_args(argv)
    args.argv = list(argv if argv is not None else sys.argv[1:])
    if args.run_timeout <= 0:
        args.run_timeout = max(300.0, 4 * args.pods / max(args.qps, 1.0))
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    result = benchmark(args)
    result["notes"] = list(args.note)
    md = Path(args.benchmarks_md) if args.benchmarks_md else None
    write_results(result, Path(args.out), md)
    runs = result.get("runs") or {}
    return 0 if runs and all(r["complete"] for r in runs.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
