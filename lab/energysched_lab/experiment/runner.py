"""``energysched experiment`` / ``make experiment``: runs, sweeps, results.

For every seed: kube-scheduler (the real one, default plugins) and energysched in
each chosen mode at each weight place the scenario's workload on the local KWOK
cluster; the simulator runs the truth; every run is written as soon as it ends
(CSV rows appended, traces), then the batch's report section and plots.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from energysched import contract
from energysched.kube.client import ApiError, KubeClient, api_path
from energysched.kube.config import load_kubeconfig
from energysched_lab.experiment import results
from energysched_lab.experiment.engine import ClusterSim
from energysched_lab.experiment.jobs import Job, instantiate
from energysched_lab.experiment.optimum import Optimum, candidates, solve
from energysched_lab.experiment.powersim import PowerManagerSim
from energysched_lab.experiment.scenario import (
    Scenario,
    ScenarioError,
)
from energysched_lab.experiment.simulator import (
    KUBE_SCHEDULER,
    LiveRun,
    PowerPublisher,
)
from energysched_lab.scheduler_process import SchedulerProcess

ROOT = Path(__file__).resolve().parents[3]
CRD = ROOT / "manifests" / "crd" / "energyprofiles.yaml"
KUBE = "kube-scheduler"
ENERGY = "energysched"
SOURCE = "simulated: KWOK placement by the real scheduler, durations and power from truth.yaml"


@dataclass(frozen=True)
class RunSpec:
    scheduler: str  # KUBE or ENERGY
    mode: str  # "" for kube-scheduler
    weight: float | None
    seed: int
    #: With the power manager (idle nodes sleep, pods that fit no awake node wake one).
    power: bool = False

    def run_id(self, batch: str) -> str:
        pm = "-pm" if self.power else ""
        if self.scheduler == KUBE:
            return f"{batch}-ks{pm}-s{self.seed}"
        w = f"{self.weight:g}".replace(".", "")
        return f"{batch}-es-{self.mode}-w{w}{pm}-s{self.seed}"


def plan(
    schedulers: Sequence[str],
    modes: Sequence[str],
    weights: Sequence[float],
    seeds: Sequence[int],
    powers: Sequence[bool] = (False,),
) -> list[RunSpec]:
    specs: list[RunSpec] = []
    for seed in seeds:
        for power in powers:
            if KUBE in schedulers:
                specs.append(RunSpec(KUBE, "", None, seed, power))
            if ENERGY in schedulers:
                specs.extend(RunSpec(ENERGY, m, w, seed, power) for m in modes for w in weights)
    return specs


async def _apply(kube: KubeClient, path: str, obj: dict[str, Any]) -> None:
    name = obj["metadata"]["name"]
    try:
        await kube.create(path, obj)
    except ApiError as exc:
        if not exc.conflict:
            raise
        current = await kube.get(f"{path}/{name}")
        meta = {**obj["metadata"], "resourceVersion": current["metadata"]["resourceVersion"]}
        await kube.replace(f"{path}/{name}", {**obj, "metadata": meta})


async def install_profiles(kube: KubeClient, scenario: Scenario) -> None:
    """The CRD and exactly the scenario's EnergyProfiles (what the scheduler is told)."""
    crd = yaml.safe_load(CRD.read_text())
    crds = api_path("apiextensions.k8s.io/v1", "customresourcedefinitions")
    await _apply(kube, crds, crd)

    async def established() -> bool:
        got = await kube.get(f"{crds}/{crd['metadata']['name']}")
        conds = (got.get("status") or {}).get("conditions") or []
        return any(c["type"] == "Established" and c["status"] == "True" for c in conds)

    from energysched_lab.waiting import wait_for

    await wait_for(established, 60, "the EnergyProfile CRD to be established", 0.1)
    path = api_path(contract.API_VERSION, contract.PROFILE_PLURAL)
    wanted: list[dict[str, Any]] = []
    for file in sorted(scenario.profiles_dir.glob("*.y*ml")):
        wanted.extend(d for d in yaml.safe_load_all(file.read_text()) if d)
    names = {d["metadata"]["name"] for d in wanted}
    for obj in (await kube.list_all(path))["items"]:
        if obj["metadata"]["name"] not in names:
            await kube.delete(f"{path}/{obj['metadata']['name']}")
    for doc in wanted:
        await _apply(kube, path, doc)


async def node_classes(kube: KubeClient, scenario: Scenario) -> dict[str, str]:
    """Node name -> node class for the cluster's nodes; every class must have a node."""
    nodes = (await kube.list_all(api_path("v1", "nodes")))["items"]
    out = {}
    for n in nodes:
        ann = n["metadata"].get("annotations") or {}
        cls = ann.get(contract.NODE_CLASS_ANNOTATION, n["metadata"]["name"])
        if cls in scenario.truth.nodes:
            out[n["metadata"]["name"]] = cls
    missing = set(scenario.truth.nodes) - set(out.values())
    if missing:
        raise ScenarioError(
            f"{scenario.path}: the cluster has no node of class {', '.join(sorted(missing))} "
            f"(its nodes: {', '.join(sorted(n['metadata']['name'] for n in nodes))})"
        )
    return out


def max_wall(
    scenario: Scenario, jobs: Sequence[Job], classes: dict[str, str], factor: float
) -> float:
    """A generous wall-time budget for one run: every job on its slowest node, one after another."""
    cand = candidates(scenario.truth, classes, scenario.node_classes, jobs)
    worst = 0.0
    for j in jobs:
        durs = [
            j.work
            / (
                scenario.truth.nodes[classes[n]].workloads[j.workload_type].performance
                * j.speed_noise
            )
            for n in cand[j.id]
        ]
        worst += max(durs, default=0.0)
    last = max((j.arrival_s for j in jobs), default=0.0)
    return 120.0 + 2.0 * factor * (last + worst)


class Progress:
    def __init__(self, total: int, stream: Any = sys.stderr) -> None:
        self.total = total
        self.stream = stream
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self.index = 0
        self.label = ""
        self.t0 = time.monotonic()

    def begin(self, index: int, label: str) -> None:
        self.index, self.label = index, label
        self.update(0, 0, 0.0)

    def update(self, done: int, jobs: int, sim_t: float) -> None:
        if not self.tty:
            return
        bar = "#" * int(20 * done / jobs) if jobs else ""
        self.stream.write(
            f"\r[{self.index}/{self.total}] {self.label:<42} [{bar:<20}] {done}/{jobs} jobs, "
            f"t={sim_t:7.1f} s sim, {time.monotonic() - self.t0:5.0f} s wall "
        )
        self.stream.flush()

    def end(self, text: str) -> None:
        prefix = "\r" if self.tty else ""
        self.stream.write(
            f"{prefix}[{self.index}/{self.total}] {self.label:<42} {text}\x1b[K\n"
            if self.tty
            else f"[{self.index}/{self.total}] {self.label:<42} {text}\n"
        )
        self.stream.flush()


class _Quiet:
    def write(self, text: str) -> None:
        pass

    def flush(self) -> None:
        pass


def _scheduler_config(mode: str) -> dict[str, Any]:
    return {
        "profiles": [
            {"schedulerName": contract.SCHEDULER_NAME, "mode": mode, "defaultWeight": 0.5}
        ],
        "leaderElection": {"enabled": False},
        "metricsAddress": "",
        # The same client limits as the local kube-scheduler (fairness).
        "clientConnection": {"qps": 50, "burst": 100},
    }


async def _cleanup(kube: KubeClient, ns: str) -> None:
    with contextlib.suppress(ApiError, OSError, asyncio.TimeoutError):
        await kube.delete(api_path("batch/v1", "jobs", ns), propagationPolicy="Background")
    with contextlib.suppress(ApiError, OSError, asyncio.TimeoutError):
        await kube.delete(api_path("v1", "namespaces", name=ns))


async def run_batch(
    kubeconfig: Path,
    scenario: Scenario,
    specs: Sequence[RunSpec],
    *,
    out: Path,
    batch: str,
    time_factor: float | None = None,
    progress: Progress | None = None,
    workdir: Path | None = None,
    on_run: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    factor = time_factor or scenario.time_factor
    prog = progress or Progress(len(specs), _Quiet())
    logs = workdir or out / "logs"
    rows: list[dict[str, Any]] = []
    optima: dict[tuple[int, bool], tuple[Optimum | None, Optimum | None]] = {}
    sched: SchedulerProcess | None = None
    sched_mode = ""
    async with KubeClient(load_kubeconfig(kubeconfig), qps=0) as kube:
        await install_profiles(kube, scenario)
        classes = await node_classes(kube, scenario)
        publisher = PowerPublisher(kube)
        try:
            for i, spec in enumerate(specs, start=1):
                jobs = instantiate(scenario, spec.seed)
                key = (spec.seed, spec.power)
                if key not in optima:
                    try:
                        optima[key] = (
                            solve(
                                scenario.truth,
                                classes,
                                scenario.node_classes,
                                jobs,
                                "energy",
                                sleep=spec.power,
                                horizon_s=scenario.horizon_s,
                            ),
                            solve(
                                scenario.truth,
                                classes,
                                scenario.node_classes,
                                jobs,
                                "makespan",
                                horizon_s=scenario.horizon_s,
                            ),
                        )
                    except ImportError as exc:  # scipy: the 'lab' extra
                        print(f"offline optimum not computed: {exc}", file=sys.stderr)
                        optima[key] = (None, None)
                label = (
                    f"{KUBE} seed {spec.seed}"
                    if spec.scheduler == KUBE
                    else f"{ENERGY} {spec.mode} w={spec.weight:g} seed {spec.seed}"
                ) + (" +power" if spec.power else "")
                prog.begin(i, label)
                if spec.scheduler == ENERGY and sched_mode != spec.mode:
                    if sched is not None:
                        sched.stop()
                    sched = SchedulerProcess(
                        kubeconfig, _scheduler_config(spec.mode), logs, f"{batch}-{spec.mode}"
                    )
                    sched_mode = spec.mode
                    await asyncio.to_thread(sched.wait_synced, 120)
                run_id = spec.run_id(batch)
                ns = f"exp-{run_id}"
                await kube.create(api_path("v1", "namespaces"), {"metadata": {"name": ns}})
                power = (
                    PowerManagerSim(
                        kube,
                        ClusterSim(scenario.truth, classes),
                        classes,
                        list(scenario.node_classes),
                        scenario.knowledge_base,
                        seed=f"{scenario.name}:{spec.seed}",
                    )
                    if spec.power
                    else None
                )
                live = LiveRun(
                    kube,
                    truth=scenario.truth,
                    node_classes=classes,
                    jobs=jobs,
                    namespace=ns,
                    run_id=run_id,
                    scheduler_name=KUBE_SCHEDULER
                    if spec.scheduler == KUBE
                    else contract.SCHEDULER_NAME,
                    weight=spec.weight,
                    time_factor=factor,
                    publisher=publisher,
                    progress=prog.update,
                    power=power,
                    horizon_s=scenario.horizon_s,
                )
                meta = results.RunMeta(
                    run_id=run_id,
                    batch=batch,
                    scenario=scenario.name,
                    seed=spec.seed,
                    scheduler=spec.scheduler,
                    mode=spec.mode,
                    weight=spec.weight,
                    time_factor=factor,
                    source=SOURCE,
                    power=spec.power,
                )
                budget = max_wall(scenario, jobs, classes, factor) + factor * scenario.horizon_s
                try:
                    outcome = await live.run(budget)
                except BaseException:
                    partial = getattr(live, "outcome", None)
                    if partial is not None:
                        results.record(out, meta, partial, *optima[key])
                    prog.end("interrupted: partial rows written")
                    raise
                finally:
                    if power is not None:  # every node awake, Ready, untainted again
                        await asyncio.shield(power.wake_all())
                    await asyncio.shield(_cleanup(kube, ns))
                if power is not None and power.notes and outcome.power_summary is not None:
                    outcome.notes.extend(n for n in power.notes if n not in outcome.notes)
                row = results.record(out, meta, outcome, *optima[key])
                rows.append(row)
                if on_run:
                    on_run(row)
                ratio = row.get("energy_ratio")
                prog.end(
                    f"{row['cluster_joules'] / 1000:8.2f} kJ {row['makespan_s']:8.1f} s"
                    + (f"  x{ratio:.2f} of least energy" if ratio else "")
                    + ("" if row["status"] == "complete" else f"  ({row['status']})")
                )
        finally:
            if sched is not None:
                sched.stop()
            await asyncio.shield(_clear_power(kube, list(classes)))
    return rows


async def _clear_power(kube: KubeClient, nodes: Sequence[str]) -> None:
    """Remove the simulated readings: after the run no monitor keeps them fresh."""
    keys = (
        contract.CURRENT_WATTS_ANNOTATION,
        contract.CURRENT_WATTS_TIMESTAMP_ANNOTATION,
        contract.POWER_SOURCE_ANNOTATION,
    )
    for node in nodes:
        with contextlib.suppress(ApiError):
            await kube.patch(
                api_path("v1", "nodes", name=node),
                {"metadata": {"annotations": dict.fromkeys(keys)}},
            )


def new_batch_id() -> str:
    return datetime.now(UTC).strftime("b%m%d%H%M") + uuid.uuid4().hex[:3]
