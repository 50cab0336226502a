"""The experiment on a real cluster, only when named explicitly.

``energysched experiment --cluster current`` (the cluster of ``$KUBECONFIG``) or
``--kubeconfig FILE``; never because ``KUBECONFIG`` happens to be set. The
scenario's workflows are submitted as Jobs running the workflow image's stages
(``energysched_mlworkflow``: the stage and its amount of work as arguments, the
stages of one workflow sharing a directory on the data volume), placed by
kube-scheduler (``default-scheduler``) and by the energysched Deployment already
running in the cluster (its mode is whatever it was deployed with: recorded as
``as-deployed``). Nothing is simulated:

- durations are the containers' ``startedAt`` .. ``finishedAt`` (whole seconds, as
  the API gives them); what each stage reports of itself in its result line is
  read from the pod's log: its own compute time to the microsecond
  (``stage_seconds``) and its accuracy (``accuracy``: on the training images for
  training, on the test set for inference);
- power is what the monitor publishes: every node's ``current-watts`` annotation,
  sampled once a second into the same ``metrics_<run>_<node>.txt`` traces; a
  sample whose timestamp is older than ``--staleness`` seconds is **not measured**
  (``nan``), and joules over a window with such a sample are left empty with the
  reason, never filled in;
- there is no ground truth, so no offline optimum: the columns say so.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeGuard

from energysched import contract
from energysched.kube.client import JSON, ApiError, KubeClient, api_path
from energysched.kube.config import load_access
from energysched_lab.experiment import results
from energysched_lab.experiment.accounting import integrate_rows
from energysched_lab.experiment.finish import finish
from energysched_lab.experiment.jobs import JOB_LABEL, RUN_LABEL, Job, instantiate
from energysched_lab.experiment.runner import KUBE, Progress, RunSpec, new_batch_id
from energysched_lab.experiment.scenario import Scenario
from energysched_lab.experiment.simulator import KUBE_SCHEDULER, job_manifest
from energysched_mlworkflow.pipeline import DATA_PATH, IMAGE, data_volume, make_runnable
from energysched_mlworkflow.stages import STAGE_INFO, parse_result

SOURCE = "measured: real cluster, durations from container status, power from the monitor"
NOT_COMPUTED = "not computed: a real cluster has no ground truth"


@dataclass(frozen=True)
class Workload:
    """How the scenario's stages run: image, data volume, where, and how much work."""

    image: str = IMAGE
    pull_policy: str = "IfNotPresent"
    #: The volume mounted at /data in every stage (pipeline.data_volume).
    data: dict[str, Any] = field(default_factory=data_volume)
    #: Added to every pod: e.g. only nodes that run containers in a mixed test cluster.
    node_selector: dict[str, str] = field(default_factory=dict)
    pod_annotations: dict[str, str] = field(default_factory=dict)
    #: Factor on every stage's work (a short real run); the annotation says the same.
    work_scale: float = 1.0


@dataclass
class RealRecord:
    job: Job
    status: str = "waiting"
    reason: str = ""
    node: str | None = None
    start: float | None = None
    end: float | None = None
    accuracy: float | None = None
    stage_seconds: float | None = None


def check_runnable(scenario: Scenario) -> None:
    """The real cluster runs the workflow image's stages; anything else is refused up front."""
    if scenario.workload.kind != "workflows":
        raise ValueError(
            f"scenario {scenario.name}: a real cluster runs workflows of the workflow image's "
            f"stages ({', '.join(STAGE_INFO)}); this scenario has {scenario.workload.kind}"
        )
    unknown = [st.name for st in scenario.workload.stages if st.name not in STAGE_INFO]
    if unknown:
        raise ValueError(
            f"scenario {scenario.name}: stage(s) {', '.join(unknown)} are not stages of the "
            f"workflow image ({', '.join(STAGE_INFO)})"
        )


def stage_manifest(
    job: Job, *, run_id: str, scheduler_name: str, weight: float | None, workload: Workload
) -> dict[str, Any]:
    """The Job of one stage: placed as the simulator places it, run by the workflow image."""
    manifest = job_manifest(
        job,
        run_id=run_id,
        scheduler_name=scheduler_name,
        weight=weight,
        image=workload.image,
        work_scale=workload.work_scale,
    )
    tmpl = manifest["spec"]["template"]
    tmpl["metadata"]["annotations"].update(workload.pod_annotations)
    if workload.node_selector:
        tmpl["spec"]["nodeSelector"] = dict(workload.node_selector)
    # one directory per workflow instance and run: the stages of a workflow hand on files
    folder = job.id if job.workflow is None else f"wf{job.workflow}"
    make_runnable(
        tmpl["spec"],
        job.stage,
        job.work * workload.work_scale,
        image=workload.image,
        data=workload.data,
        data_dir=f"{DATA_PATH}/{run_id}/{folder}",
        pull_policy=workload.pull_policy,
    )
    return manifest


@dataclass(frozen=True)
class StageReport:
    """What a stage says of itself in its result line (``energysched_mlworkflow``)."""

    #: Its accuracy: on the training images for training, on the test set for inference.
    accuracy: float | None = None
    #: Its own compute time, to the microsecond (container timestamps have whole seconds).
    seconds: float | None = None
    problem: str = ""


def stage_report(log: str) -> StageReport:
    """The stage's result line read from its log; a problem, never an exception."""
    try:
        results = parse_result(log)
    except ValueError as exc:  # a result line that is not JSON
        return StageReport(problem=f"unreadable result line in the log ({exc})")
    if len(results) != 1:
        return StageReport(problem=f"{len(results)} result lines in the log, expected 1")
    doc = results[0]
    acc, seconds = doc.get("accuracy"), doc.get("seconds")
    if acc is not None and not (_is_number(acc) and 0 <= acc <= 1):
        return StageReport(problem=f"accuracy {acc!r} in the log is not a fraction")
    if not (_is_number(seconds) and 0 <= seconds < math.inf):
        return StageReport(problem=f"seconds {seconds!r} in the log is not a duration")
    return StageReport(None if acc is None else float(acc), float(seconds))


def _is_number(value: object) -> TypeGuard[float]:
    """A JSON number (not a boolean, not NaN)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and value == value


@dataclass
class Sampler:
    """Samples every node's published watts once a second: (t, watts or nan)."""

    kube: KubeClient
    t0: float
    staleness_s: float = 60.0
    interval_s: float = 1.0
    samples: dict[str, list[tuple[float, float]]] = field(default_factory=dict)

    def sample(self, nodes: Sequence[JSON], now: float) -> None:
        for n in nodes:
            ann = n["metadata"].get("annotations") or {}
            watts = math.nan
            raw, ts = (
                ann.get(contract.CURRENT_WATTS_ANNOTATION),
                ann.get(contract.CURRENT_WATTS_TIMESTAMP_ANNOTATION),
            )
            with contextlib.suppress(ValueError, TypeError):
                stamp = datetime.fromisoformat(str(ts)).timestamp()
                value = float(str(raw))
                if now - stamp <= self.staleness_s and value >= 0 and math.isfinite(value):
                    watts = value
            self.samples.setdefault(n["metadata"]["name"], []).append((now - self.t0, watts))

    async def run(self) -> None:
        while True:
            with contextlib.suppress(ApiError):
                nodes = (await self.kube.list_all(api_path("v1", "nodes")))["items"]
                self.sample(nodes, time.time())
            await asyncio.sleep(self.interval_s)


def measured_joules(rows: Sequence[tuple[float, float]], t0: float, t1: float) -> float | None:
    """The integral over [t0, t1], or None when a sample in the window is not measured."""
    covering = [(t, w) for t, w in rows if t <= t1]
    before = [r for r in covering if r[0] <= t0]
    inside = [r for r in covering if r[0] > t0]
    window = ([before[-1]] if before else []) + inside
    if not window or window[0][0] > t0 or any(math.isnan(w) for _, w in window):
        return None
    return integrate_rows([*window, (t1, window[-1][1])], t0, t1)


def _wall(ts: str | None) -> float | None:
    if not ts:
        return None
    try:
        return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _pod_times(pod: JSON) -> tuple[float | None, float | None, str]:
    """Container start and end (wall), and a failure reason if it failed."""
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    for cs in statuses:
        term = (cs.get("state") or {}).get("terminated")
        if term:
            reason = (
                ""
                if term.get("exitCode") == 0
                else (
                    f"exit {term.get('exitCode')}: {term.get('reason', '')} "
                    f"{term.get('message', '')}"
                ).strip()
            )
            return _wall(term.get("startedAt")), _wall(term.get("finishedAt")), reason
    return None, None, ""


async def run_one(
    kube: KubeClient,
    scenario: Scenario,
    spec: RunSpec,
    *,
    out: Path,
    batch: str,
    workload: Workload,
    staleness_s: float,
    max_wall_s: float,
    progress: Progress,
) -> dict[str, Any]:
    run_id = spec.run_id(batch)
    ns = f"exp-{run_id}"
    jobs = instantiate(scenario, spec.seed)
    recs = {j.id: RealRecord(j) for j in jobs}
    t0 = time.time()
    sampler = Sampler(kube, t0, staleness_s)
    await kube.create(api_path("v1", "namespaces"), {"metadata": {"name": ns}})
    task = asyncio.create_task(sampler.run())
    release = {j.id: j.arrival_s for j in jobs if j.after is None}
    interrupted = False
    try:
        while any(r.status not in ("succeeded", "failed") for r in recs.values()):
            now = time.time() - t0
            for jid, at in sorted(release.items(), key=lambda kv: kv[1]):
                if at <= now:
                    del release[jid]
                    manifest = stage_manifest(
                        recs[jid].job,
                        run_id=run_id,
                        scheduler_name=KUBE_SCHEDULER
                        if spec.scheduler == KUBE
                        else contract.SCHEDULER_NAME,
                        weight=spec.weight,
                        workload=workload,
                    )
                    await kube.create(api_path("batch/v1", "jobs", ns), manifest)
                    recs[jid].status = "submitted"
            pods = (
                await kube.get(api_path("v1", "pods", ns), labelSelector=f"{RUN_LABEL}={run_id}")
            )["items"]
            for pod in pods:
                rec = recs.get(pod["metadata"]["labels"].get(JOB_LABEL, ""))
                if rec is None or rec.status in ("succeeded", "failed"):
                    continue
                rec.node = pod["spec"].get("nodeName") or rec.node
                phase = (pod.get("status") or {}).get("phase")
                for c in (pod.get("status") or {}).get("conditions") or []:
                    if c.get("type") == "PodScheduled" and c.get("status") == "False":
                        rec.reason = f"{c.get('reason')}: {c.get('message', '')}"
                if phase in ("Succeeded", "Failed"):
                    start, end, why = _pod_times(pod)
                    rec.start = None if start is None else start - t0
                    rec.end = None if end is None else end - t0
                    rec.status = "succeeded" if phase == "Succeeded" else "failed"
                    rec.reason = why or ("" if phase == "Succeeded" else "pod failed")
                    if rec.status == "succeeded":
                        report = await _stage_report(kube, ns, pod["metadata"]["name"])
                        rec.accuracy, rec.stage_seconds = report.accuracy, report.seconds
                        rec.reason = report.problem
                    for succ in (j for j in jobs if j.after == rec.job.id):
                        if rec.status == "succeeded":
                            release[succ.id] = now
                        else:
                            recs[succ.id].status = "failed"
                            recs[succ.id].reason = f"not run: {rec.job.id} failed"
                elif rec.node:
                    rec.status = "running"
            done = sum(r.status in ("succeeded", "failed") for r in recs.values())
            progress.update(done, len(recs), now)
            if now > max_wall_s:
                for r in recs.values():
                    if r.status not in ("succeeded", "failed"):
                        r.status = "failed"
                        r.reason = (r.reason + "; " if r.reason else "") + (
                            f"not finished within {max_wall_s:g} s"
                        )
                break
            await asyncio.sleep(1.0)
    except (asyncio.CancelledError, KeyboardInterrupt):
        interrupted = True
        raise
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        with contextlib.suppress(ApiError):
            await asyncio.shield(
                kube.delete(api_path("batch/v1", "jobs", ns), propagationPolicy="Background")
            )
        with contextlib.suppress(ApiError):
            await asyncio.shield(kube.delete(api_path("v1", "namespaces", name=ns)))
        row = _write(
            out, scenario, spec, batch, run_id, recs, sampler, time.time() - t0, interrupted
        )
    return row


async def _stage_report(kube: KubeClient, ns: str, pod: str) -> StageReport:
    try:
        # bounded: the API server fetches a log from the node's kubelet, and a simulated
        # node has none to answer
        log = await kube.get_text(api_path("v1", "pods", ns, pod, "log"), timeout=10)
    except ApiError as exc:
        return StageReport(problem=f"log not readable: {exc}")
    return stage_report(log)


def _write(
    out: Path,
    scenario: Scenario,
    spec: RunSpec,
    batch: str,
    run_id: str,
    recs: dict[str, RealRecord],
    sampler: Sampler,
    elapsed: float,
    interrupted: bool,
) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    for node, rows in sampler.samples.items():
        lines = [
            f"# run {run_id}: real cluster, node {node}; {SOURCE}",
            "# nan = not measured (no reading, or older than the staleness window)",
            "# t_s watts",
        ]
        lines += [f"{t:.3f} {w:.6f}" for t, w in rows]
        (out / f"metrics_{run_id}_{node}.txt").write_text("\n".join(lines) + "\n")
    stage_rows = []
    ends = [r.end for r in recs.values() if r.end is not None]
    makespan = max(ends) if ends else elapsed
    for r in recs.values():
        row: dict[str, Any] = {
            "run_id": run_id,
            "scenario": scenario.name,
            "seed": spec.seed,
            "scheduler": spec.scheduler,
            "mode": "" if spec.scheduler == KUBE else "as-deployed",
            "weight": spec.weight,
            "stage": r.job.stage,
            "job": r.job.id,
            "workload_type": r.job.workload_type,
            "node": r.node,
            "start_s": r.start,
            "end_s": r.end,
            "duration_s": None if r.start is None or r.end is None else r.end - r.start,
            "stage_seconds": r.stage_seconds,
            "accuracy": r.accuracy,
            "status": "interrupted" if interrupted and r.status != "succeeded" else r.status,
            "reason": r.reason,
            "source": SOURCE,
        }
        if r.node and r.start is not None and r.end is not None:
            j = measured_joules(sampler.samples.get(r.node, []), r.start, r.end)
            if j is None:
                row["reason"] = (r.reason + "; " if r.reason else "") + (
                    f"power not measured on {r.node} for the whole stage"
                )
            else:
                row["joules"] = j
                row["mean_watts"] = j / (r.end - r.start) if r.end > r.start else None
        stage_rows.append(row)
    results.append_csv(out / "thesis_results.csv", results.STAGE_COLUMNS, stage_rows)
    cluster = [measured_joules(rows, 0.0, makespan) for rows in sampler.samples.values()]
    complete = all(r.status == "succeeded" for r in recs.values()) and not interrupted
    run = {
        "run_id": run_id,
        "batch": batch,
        "scenario": scenario.name,
        "seed": spec.seed,
        "scheduler": spec.scheduler,
        "mode": "" if spec.scheduler == KUBE else "as-deployed",
        "weight": spec.weight,
        "jobs": len(recs),
        "succeeded": sum(r.status == "succeeded" for r in recs.values()),
        "not_completed": sum(r.status != "succeeded" for r in recs.values()),
        "makespan_s": makespan,
        "cluster_joules": None
        if not cluster or any(c is None for c in cluster)
        else sum(c for c in cluster if c is not None),
        "opt_energy_kind": NOT_COMPUTED,
        "opt_makespan_kind": NOT_COMPUTED,
        "time_factor": 1.0,
        "source": SOURCE,
        "status": "complete" if complete else ("interrupted" if interrupted else "incomplete"),
        "placement": " ".join(f"{r.job.id}={r.node or '-'}" for r in recs.values()),
    }
    results.append_csv(out / "runs.csv", results.RUN_COLUMNS, [run])
    return run


async def run_real(
    kubeconfig: str | None,
    scenario: Scenario,
    specs: Sequence[RunSpec],
    *,
    out: Path,
    batch: str,
    workload: Workload | None = None,
    staleness_s: float = 60.0,
    max_wall_s: float = 6 * 3600.0,
    progress: Progress | None = None,
) -> list[dict[str, Any]]:
    prog = progress or Progress(len(specs))
    rows = []
    async with KubeClient(load_access(kubeconfig), qps=20, burst=40) as kube:
        for i, spec in enumerate(specs, start=1):
            prog.begin(i, f"{spec.scheduler} w={spec.weight} seed {spec.seed} (real cluster)")
            row = await run_one(
                kube,
                scenario,
                spec,
                out=out,
                batch=batch,
                workload=workload or Workload(),
                staleness_s=staleness_s,
                max_wall_s=max_wall_s,
                progress=prog,
            )
            e = row["cluster_joules"]
            prog.end(
                (f"{e / 1000:8.2f} kJ" if e is not None else "energy not measured")
                + f" {row['makespan_s']:8.1f} s ({row['status']})"
            )
            rows.append(row)
    return rows


def workload_from(args: argparse.Namespace) -> Workload:
    """The Workload the command line asks for; ValueError naming a bad option."""
    selector: dict[str, str] = {}
    for item in args.node_selector:
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise ValueError(f"--node-selector: expected KEY=VALUE, got {item!r}")
        selector[key] = value
    if not 0 < args.work_scale <= 100:
        raise ValueError(f"--work-scale must be within (0, 100], got {args.work_scale:g}")
    return Workload(
        image=args.image or IMAGE,
        pull_policy=args.image_pull_policy,
        data=data_volume(claim=args.data_claim, host_path=args.data_host_path),
        node_selector=selector,
        work_scale=args.work_scale,
    )


def main(args: argparse.Namespace, scenario: Scenario, specs: Sequence[RunSpec]) -> int:
    kubeconfig = str(args.kubeconfig) if args.kubeconfig else None  # None: $KUBECONFIG
    try:
        check_runnable(scenario)
        workload = workload_from(args)
    except ValueError as exc:
        print(f"energysched experiment: {exc}", file=sys.stderr)
        return 2
    if args.mode != [contract.DEFAULT_SCORING_MODE]:
        print(
            "energysched experiment: on a real cluster energysched runs as deployed; "
            f"--mode {','.join(args.mode)} is recorded as 'as-deployed', not applied",
            file=sys.stderr,
        )
        specs = [s for s in specs if s.scheduler == KUBE or s.mode == args.mode[0]]
    batch = new_batch_id()
    print(
        f"batch {batch}: REAL cluster ({kubeconfig or '$KUBECONFIG'}), {len(specs)} runs",
        file=sys.stderr,
    )
    try:
        asyncio.run(
            run_real(kubeconfig, scenario, specs, out=args.out, batch=batch, workload=workload)
        )
    except KeyboardInterrupt:
        print("\ninterrupted: partial rows written, Jobs deleted", file=sys.stderr)
        return 130
    return finish(args, scenario.name, batch, "energysched experiment --cluster current", [], 1.0)
