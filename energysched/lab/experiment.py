"""``energysched experiment`` / ``make experiment WEIGHT=0.5``: the ML workflow with each scheduler.

Runs preprocessing → training → inference as Jobs, once placed by the default
kube-scheduler and once by energysched, and records per stage the node, the
duration, the watts and the joules, then compares the two runs.

On the local cluster (KWOK) no container really runs. There the duration of a
stage is the knowledge base's prediction for the chosen node (work divided by
the profile's performance for that workload type) and the watts are the
profile's working power: the KWOK pod completes after that duration (scaled by
``--time-scale`` so a run takes minutes, not hours). Every figure in the
result says where it came from; kb/profiles holds estimates, so these are
simulated figures, never measurements.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from energysched import contract
from energysched.kb.io import load_profiles
from energysched.kb.profiles import KnowledgeBase
from energysched.kb.validate import ValidationFailure, parse_profile
from energysched.kube.client import JSON, ApiError, KubeClient, api_path
from energysched.kube.config import load_kubeconfig
from energysched.kube.waiting import wait_for
from energysched.lab.cluster.local import LocalCluster
from energysched.scheduler.process import SchedulerProcess
from energysched_mlworkflow.pipeline import PIPELINE, Stage, stage_job

ROOT = Path(__file__).resolve().parents[2]
CRD = ROOT / "manifests" / "crd" / "energyprofiles.yaml"
PROFILES = ROOT / "kb" / "profiles"
DEFAULT_SCHEDULER = "default-scheduler"


@dataclass
class StageResult:
    scheduler: str
    stage: str
    workload_type: str
    node: str
    profile: str | None
    duration_s: float | None  # simulated: work / profile performance
    watts: float | None  # simulated: the profile's working power
    joules: float | None
    wall_s: float  # Running -> Succeeded on the local cluster (scaled)
    source: str


async def _apply(kube: KubeClient, path: str, obj: dict[str, Any]) -> None:
    """Create, or replace what is there (server-side objects keep their resourceVersion)."""
    name = obj["metadata"]["name"]
    try:
        await kube.create(path, obj)
    except ApiError as exc:
        if not exc.conflict:
            raise
        current = await kube.get(f"{path}/{name}")
        obj = {
            **obj,
            "metadata": {
                **obj["metadata"],
                "resourceVersion": current["metadata"]["resourceVersion"],
            },
        }
        await kube.replace(f"{path}/{name}", obj)


async def install_knowledge_base(kube: KubeClient) -> KnowledgeBase:
    crd = yaml.safe_load(CRD.read_text())
    await _apply(kube, api_path("apiextensions.k8s.io/v1", "customresourcedefinitions"), crd)
    for _ in range(100):
        got = await kube.get(
            api_path(
                "apiextensions.k8s.io/v1", "customresourcedefinitions", name=crd["metadata"]["name"]
            )
        )
        conds = (got.get("status") or {}).get("conditions") or []
        if any(c["type"] == "Established" and c["status"] == "True" for c in conds):
            break
        await asyncio.sleep(0.1)
    loaded = load_profiles(PROFILES)
    if loaded.failures:
        raise SystemExit(f"kb/profiles has invalid profiles: {loaded.failures}")
    for file in sorted(PROFILES.glob("*.yaml")):
        for doc in yaml.safe_load_all(file.read_text()):
            await _apply(kube, api_path(contract.API_VERSION, contract.PROFILE_PLURAL), doc)
    # The knowledge base as the cluster holds it now (what both runs are judged by).
    listing = await kube.list_all(api_path(contract.API_VERSION, contract.PROFILE_PLURAL))
    specs = [
        p
        for p in (parse_profile(o) for o in listing["items"])
        if not isinstance(p, ValidationFailure)
    ]
    return KnowledgeBase.of(specs)


async def run_stage(
    kube: KubeClient,
    kb: KnowledgeBase,
    ns: str,
    stage: Stage,
    scheduler: str,
    weight: float,
    time_scale: float,
    run_id: str,
) -> StageResult:
    job = stage_job(
        stage,
        run_id=run_id,
        scheduler_name=scheduler,
        weight=weight if scheduler != DEFAULT_SCHEDULER else None,
    )
    await kube.create(api_path("batch/v1", "jobs", ns), job)
    selector = f"job-name={job['metadata']['name']}"

    async def bound_pod() -> JSON | None:
        pods = (await kube.get(api_path("v1", "pods", ns), labelSelector=selector))["items"]
        return next((p for p in pods if p["spec"].get("nodeName")), None)

    pod = await wait_for(bound_pod, 120, f"{stage.name} to be scheduled by {scheduler}")
    node_name = pod["spec"]["nodeName"]
    node = await kube.get(api_path("v1", "nodes", name=node_name))
    resolution = kb.resolve(node["metadata"].get("labels") or {})
    figures = resolution.profile.workloads.get(stage.workload_type) if resolution else None
    if figures is None or resolution is None:
        duration, watts, source = (
            None,
            None,
            f"node {node_name} has no profile for {stage.workload_type}",
        )
        delay = 1.0
    else:
        duration = stage.work / figures.performance
        watts = figures.power_watts
        source = (
            f"simulated on KWOK from EnergyProfile {resolution.profile.name!r} "
            f"({figures.source}): duration = {stage.work:g} {stage.unit} / "
            f"{figures.performance:g} {figures.unit or ''}".rstrip()
        )
        delay = max(0.5, duration * time_scale)
    started = time.monotonic()
    await kube.patch(
        api_path("v1", "pods", ns, pod["metadata"]["name"]),
        {"metadata": {"annotations": {contract.SIMULATED_DURATION_ANNOTATION: f"{delay:.3f}s"}}},
    )

    async def done() -> bool:
        status = (await kube.get(api_path("batch/v1", "jobs", ns, job["metadata"]["name"])))[
            "status"
        ]
        if status.get("failed"):
            raise RuntimeError(f"stage {stage.name} failed")
        return bool(status.get("succeeded"))

    await wait_for(done, delay + 120, f"{stage.name} to complete")
    return StageResult(
        scheduler=scheduler,
        stage=stage.name,
        workload_type=stage.workload_type,
        node=node_name,
        profile=resolution.profile.name if resolution else None,
        duration_s=duration,
        watts=watts,
        joules=None if duration is None or watts is None else duration * watts,
        wall_s=round(time.monotonic() - started, 2),
        source=source,
    )


def _totals(rows: list[StageResult]) -> dict[str, float | None]:
    def total(values: list[float | None]) -> float | None:
        return None if any(v is None for v in values) else sum(v for v in values if v is not None)

    return {
        "duration_s": total([r.duration_s for r in rows]),
        "joules": total([r.joules for r in rows]),
    }


def render(result: dict[str, Any]) -> str:
    lines = [
        f"ML workflow, weight {result['weight']}, energysched mode {result['mode']} "
        f"(SIMULATED on KWOK from kb/profiles estimates)",
        f"{'scheduler':<18} {'stage':<14} {'node':<8} "
        f"{'duration s':>11} {'watts':>7} {'joules':>10}",
    ]
    for r in result["stages"]:
        lines.append(
            f"{r['scheduler']:<18} {r['stage']:<14} {r['node']:<8} {_fmt(r['duration_s']):>11} "
            f"{_fmt(r['watts']):>7} {_fmt(r['joules'], 0):>10}"
        )
    for name, tot in result["totals"].items():
        lines.append(
            f"{'total ' + name:<41} {_fmt(tot['duration_s']):>11} "
            f"{'':>7} {_fmt(tot['joules'], 0):>10}"
        )
    cmp = result.get("comparison")
    if cmp:
        lines.append(
            f"energysched vs default: energy {cmp['energy_change_pct']:+.1f} %, "
            f"time {cmp['time_change_pct']:+.1f} %"
        )
    return "\n".join(lines)


def _fmt(v: float | None, d: int = 1) -> str:
    return "-" if v is None else f"{v:.{d}f}"


async def run_experiment(
    kubeconfig: Path,
    *,
    weight: float,
    mode: str,
    time_scale: float,
    workdir: Path,
    schedulers: tuple[str, ...] = (DEFAULT_SCHEDULER, contract.SCHEDULER_NAME),
) -> dict[str, Any]:
    run_id = f"exp{int(time.time())}"
    async with KubeClient(load_kubeconfig(kubeconfig), qps=0) as kube:
        kb = await install_knowledge_base(kube)
        sched_proc = None
        if contract.SCHEDULER_NAME in schedulers:
            sched_proc = _start_energysched(
                kubeconfig, workdir, mode=mode, weight=weight, run_id=run_id
            )
        rows: list[StageResult] = []
        try:
            for scheduler in schedulers:
                ns = f"{run_id}-{'default' if scheduler == DEFAULT_SCHEDULER else 'energy'}"
                await kube.create(api_path("v1", "namespaces"), {"metadata": {"name": ns}})
                for stage in PIPELINE:
                    row = await run_stage(
                        kube, kb, ns, stage, scheduler, weight, time_scale, run_id
                    )
                    print(f"  {scheduler}: {stage.name} on {row.node}", file=sys.stderr)
                    rows.append(row)
        finally:
            if sched_proc is not None:
                sched_proc.stop()
            for scheduler in schedulers:
                ns = f"{run_id}-{'default' if scheduler == DEFAULT_SCHEDULER else 'energy'}"
                with contextlib.suppress(ApiError):
                    await kube.delete(api_path("v1", "namespaces", name=ns))
    result: dict[str, Any] = {
        "weight": weight,
        "mode": mode,
        "time_scale": time_scale,
        "simulated": True,
        "stages": [asdict(r) for r in rows],
        "totals": {s: _totals([r for r in rows if r.scheduler == s]) for s in schedulers},
    }
    d, e = (result["totals"].get(DEFAULT_SCHEDULER), result["totals"].get(contract.SCHEDULER_NAME))
    if (
        d
        and e
        and d["joules"]
        and e["joules"] is not None
        and d["duration_s"]
        and e["duration_s"] is not None
    ):
        result["comparison"] = {
            "energy_change_pct": 100 * (e["joules"] - d["joules"]) / d["joules"],
            "time_change_pct": 100 * (e["duration_s"] - d["duration_s"]) / d["duration_s"],
        }
    return result


def _start_energysched(
    kubeconfig: Path, workdir: Path, *, mode: str, weight: float, run_id: str
) -> SchedulerProcess:
    config = {
        "profiles": [
            {"schedulerName": contract.SCHEDULER_NAME, "mode": mode, "defaultWeight": weight}
        ],
        "leaderElection": {"enabled": False},
        "metricsAddress": "",
    }
    return SchedulerProcess(kubeconfig, config, workdir, f"{run_id}-scheduler")


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "experiment", help="the ML workflow with the default scheduler and energysched"
    )
    p.add_argument(
        "--weight", type=float, default=0.5, help="performance weight 0..1 (default 0.5)"
    )
    p.add_argument("--mode", default="normalized", choices=contract.SCORING_MODES)
    p.add_argument(
        "--time-scale",
        type=float,
        default=0.002,
        help="KWOK runs each stage for its simulated duration times this (default 0.002)",
    )
    p.add_argument("--kubeconfig", type=Path, help="use this cluster instead of a local one")
    p.add_argument("--cluster-name", default="experiment")
    p.add_argument("--keep-cluster", action="store_true")
    p.add_argument("--out", type=Path, default=Path("results"))
    p.set_defaults(handler=_main)


def _main(args: argparse.Namespace) -> int:
    if not 0.0 <= args.weight <= 1.0:
        print(
            f"energysched experiment: --weight {args.weight} is outside 0.0..1.0", file=sys.stderr
        )
        return 2
    cluster = None
    kubeconfig = args.kubeconfig
    if kubeconfig is None:
        cluster = LocalCluster(args.cluster_name)
        if not cluster.is_running():
            cluster.up()
        kubeconfig = cluster.kubeconfig
    args.out.mkdir(parents=True, exist_ok=True)
    try:
        result = asyncio.run(
            run_experiment(
                kubeconfig,
                weight=args.weight,
                mode=args.mode,
                time_scale=args.time_scale,
                workdir=args.out,
            )
        )
    finally:
        if cluster is not None and not args.keep_cluster:
            cluster.down()
    out = args.out / f"experiment-w{args.weight:g}-{args.mode}.json"
    out.write_text(json.dumps(result, indent=2))
    print(render(result))
    print(f"results: {out}")
    return 0
