"""``energysched bench run``: benchmark every Ready node, turn the results into EnergyProfiles.

Cluster path: one Job per Ready node, pinned by ``kubernetes.io/hostname``
(:func:`energysched.kbtools.bench_job.build_bench_job`); wait until each completes; read
its pod's log; :func:`~energysched_bench.result.extract_result`;
:func:`~energysched.kbtools.convert.convert_result`; write one manifest per node
(and server-side apply it with ``--apply``).

Simulated (KWOK) nodes run no container at all: a Job pinned to one would stay
"running" with an empty log forever. They are skipped (and said so) unless
``--include-simulated`` asks for the Jobs anyway (to exercise the Job path,
which then times out honestly). Real figures for a simulated cluster come from
running ``python -m energysched_bench --json`` on real machines and feeding the
output through ``--local-results``, which takes the same extraction and
conversion path as pod logs.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from energysched.contract import API_VERSION, KWOK_NODE_ANNOTATION, PROFILE_PLURAL
from energysched.kb.io import dump_yaml
from energysched.kb.profiles import KnowledgeBase
from energysched.kube.client import ApiError, KubeClient, api_path

FIELD_MANAGER = "energysched-bench"
JOB_POLL_SECONDS = 2.0
LOG_SUFFIXES = (".json", ".log", ".txt")


@dataclass
class Collected:
    """One node's raw outcome: the log text holding its result, or why there is none."""

    node: str
    origin: str  # "pod energysched/energysched-bench-wyse-...-x7k2p" or a file path
    text: str | None = None
    error: str | None = None


@dataclass
class Converted:
    node: str
    origin: str
    manifest: dict[str, Any] | None = None
    error: str | None = None
    path: Path | None = None
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ConvertOptions:
    power_from: KnowledgeBase | None = None
    gpu_for: tuple[str, ...] = ("training",)
    allow_nonstandard: bool = False
    accept_package_power: bool = False


# -- conversion (shared by the cluster path and --local-results) ---------------------------


def convert_collected(collected: Iterable[Collected], options: ConvertOptions) -> list[Converted]:
    """extract_result → convert_result for every collected log, errors kept per node."""
    from energysched.kbtools.convert import ConversionError, convert_result
    from energysched_bench.result import ResultNotFound, extract_result

    out = []
    for item in collected:
        if item.text is None:
            out.append(Converted(item.node, item.origin, error=item.error or "no log"))
            continue
        try:
            doc = extract_result(item.text)
            manifest = convert_result(
                doc,
                power_from=options.power_from,
                gpu_for=options.gpu_for,
                allow_nonstandard=options.allow_nonstandard,
                accept_package_power=options.accept_package_power,
            )
        except (ResultNotFound, ConversionError) as exc:
            out.append(Converted(item.node, item.origin, error=str(exc)))
            continue
        node = str(doc.get("node") or item.node)
        sources = sorted({str(w.get("source")) for w in manifest["spec"]["workloads"].values()})
        notes = [f"figures: {', '.join(sources)}"]
        if "estimated" in sources:
            notes.append("power NOT measured: taken from --power-from (marked estimated)")
        out.append(Converted(node, item.origin, manifest=manifest, notes=notes))
    return out


def collect_local(paths: Sequence[Path]) -> list[Collected]:
    """Result documents from files (JSON documents, ``--json`` output or pod logs).

    Each document becomes the same marked text a pod log holds, so it takes the
    same extraction path as a log read from the cluster.
    """
    from energysched.kbtools.convert import read_results
    from energysched_bench.result import ResultNotFound, format_result

    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.iterdir() if p.suffix in LOG_SUFFIXES))
        else:
            files.append(path)
    out = []
    for file in files:
        try:
            docs = read_results(file)
        except (OSError, ResultNotFound) as exc:
            out.append(Collected(file.stem, str(file), error=f"cannot be read: {exc}"))
            continue
        if not docs:
            out.append(
                Collected(file.stem, str(file), error="no energysched-bench result document in it")
            )
            continue
        for doc in docs:
            out.append(Collected(str(doc.get("node") or file.stem), str(file), format_result(doc)))
    return out


def write_manifests(converted: Sequence[Converted], out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    for item in converted:
        if item.manifest is None:
            continue
        name = item.manifest["metadata"]["name"]
        item.path = out_dir / f"{name}.yaml"
        header = (
            f"# Generated by `energysched bench run` from {item.origin}.\n"
            "# Check provenance and source of every figure before relying on it.\n"
        )
        item.path.write_text(header + dump_yaml([item.manifest]), encoding="utf-8")


async def apply_manifests(kube: KubeClient, converted: Sequence[Converted]) -> list[str]:
    """Server-side apply every manifest; returns the errors (one per failed profile)."""
    errors = []
    for item in converted:
        if item.manifest is None:
            continue
        name = item.manifest["metadata"]["name"]
        try:
            await kube.request(
                "PATCH",
                api_path(API_VERSION, PROFILE_PLURAL, name=name),
                params={"fieldManager": FIELD_MANAGER, "force": "true"},
                body=item.manifest,
                content_type="application/apply-patch+yaml",
            )
            item.notes.append("applied")
        except ApiError as exc:
            errors.append(f"{name}: apply failed: {exc}")
    return errors


# -- the cluster path ------------------------------------------------------------------------


@dataclass(frozen=True)
class JobOptions:
    image: str
    namespace: str = "energysched"
    timeout: float = 1800.0
    nodes: tuple[str, ...] = ()  # empty: every Ready node
    include_simulated: bool = False
    bench_args: tuple[str, ...] = ()
    gpu_nodes: tuple[str, ...] = ()
    gpu_runtime_class: str | None = None
    keep_jobs: bool = False
    #: (Secret, key): the plug's password, mounted into each Job (never an argument).
    password_secret: tuple[str, str] | None = None


def _ready(node: Mapping[str, Any]) -> bool:
    conditions = (node.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def is_simulated(node: Mapping[str, Any]) -> bool:
    annotations = (node.get("metadata") or {}).get("annotations") or {}
    return KWOK_NODE_ANNOTATION in annotations


@dataclass
class NodeSelection:
    nodes: list[str]
    simulated: list[str]
    not_ready: list[str]
    unknown: list[str]


def select_nodes(objects: Iterable[Mapping[str, Any]], options: JobOptions) -> NodeSelection:
    by_name = {str(o["metadata"]["name"]): o for o in objects}
    wanted = list(options.nodes) or sorted(by_name)
    sel = NodeSelection([], [], [], [n for n in wanted if n not in by_name])
    for name in wanted:
        node = by_name.get(name)
        if node is None:
            continue
        if not _ready(node):
            sel.not_ready.append(name)
        elif is_simulated(node) and not options.include_simulated:
            sel.simulated.append(name)
        else:
            sel.nodes.append(name)
    return sel


def run_id_now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")


def _job_state(job: Mapping[str, Any]) -> tuple[str, str]:
    """("complete" | "failed" | "running", message)."""
    for cond in (job.get("status") or {}).get("conditions") or []:
        if cond.get("status") != "True":
            continue
        if cond.get("type") == "Complete":
            return "complete", ""
        if cond.get("type") == "Failed":
            return "failed", f"{cond.get('reason', '')}: {cond.get('message', '')}".strip(": ")
    return "running", ""


async def _pod_of(kube: KubeClient, namespace: str, job: str) -> str | None:
    pods = await kube.get(
        api_path("v1", "pods", namespace), labelSelector=f"batch.kubernetes.io/job-name={job}"
    )
    items = pods.get("items") or []
    if not items:
        return None
    items.sort(key=lambda p: str((p.get("metadata") or {}).get("creationTimestamp", "")))
    return str(items[-1]["metadata"]["name"])


async def run_jobs(
    kube: KubeClient,
    nodes: Sequence[str],
    options: JobOptions,
    simulated: Iterable[str] = (),
    say: Any = print,
) -> list[Collected]:
    """Create one Job per node, wait, read logs; the Jobs are deleted afterwards."""
    from energysched.kbtools.bench_job import build_bench_job

    run_id = run_id_now()
    kwok = frozenset(simulated)
    jobs: dict[str, str] = {}  # node -> job name
    results: dict[str, Collected] = {}
    for node in nodes:
        manifest = build_bench_job(
            node,
            options.image,
            run_id=run_id,
            namespace=options.namespace,
            args=options.bench_args,
            gpu=node in options.gpu_nodes,
            runtime_class=options.gpu_runtime_class if node in options.gpu_nodes else None,
            active_deadline_seconds=max(60, int(options.timeout)),
            password_secret=options.password_secret,
        )
        name = manifest["metadata"]["name"]
        try:
            await kube.create(api_path("batch/v1", "jobs", options.namespace), manifest)
        except ApiError as exc:
            results[node] = Collected(
                node, f"job {options.namespace}/{name}", error=f"Job not created: {exc}"
            )
            continue
        jobs[node] = name
        say(f"{node}: job {options.namespace}/{name} created")
    deadline = time.monotonic() + options.timeout
    pending = dict(jobs)
    try:
        while pending and time.monotonic() < deadline:
            for node, name in list(pending.items()):
                try:
                    job = await kube.get(api_path("batch/v1", "jobs", options.namespace, name))
                except ApiError as exc:
                    if exc.not_found:
                        results[node] = Collected(
                            node,
                            f"job {options.namespace}/{name}",
                            error="the Job was deleted while waiting",
                        )
                        del pending[node]
                    continue
                state, message = _job_state(job)
                if state == "running":
                    continue
                del pending[node]
                results[node] = await _collect(kube, options.namespace, node, name, state, message)
                say(f"{node}: job {state}")
            if pending:
                await asyncio.sleep(JOB_POLL_SECONDS)
        for node, name in pending.items():
            results[node] = Collected(
                node,
                f"job {options.namespace}/{name}",
                error=f"timed out after {options.timeout:g} s waiting for the Job to complete"
                + (
                    " (a simulated KWOK node runs no container: no result can come)"
                    if node in kwok
                    else ""
                ),
            )
    finally:
        if not options.keep_jobs:
            for name in jobs.values():
                with contextlib.suppress(ApiError):
                    await kube.delete(
                        api_path("batch/v1", "jobs", options.namespace, name),
                        propagationPolicy="Background",
                    )
    return [results[n] for n in nodes if n in results]


async def _collect(
    kube: KubeClient, namespace: str, node: str, job: str, state: str, message: str
) -> Collected:
    origin = f"job {namespace}/{job}"
    try:
        pod = await _pod_of(kube, namespace, job)
    except ApiError as exc:
        return Collected(node, origin, error=f"cannot list the Job's pods: {exc}")
    if pod is None:
        return Collected(node, origin, error=f"the Job {state} without a pod ({message})")
    origin = f"pod {namespace}/{pod}"
    try:
        text = await kube.get_text(api_path("v1", "pods", namespace, pod, "log"), timeout=60.0)
    except ApiError as exc:
        return Collected(node, origin, error=f"cannot read the log: {exc}")
    if state == "failed":
        # A failed run may still have printed a result before dying: use it if it did.
        from energysched_bench.result import BEGIN_MARKER

        if BEGIN_MARKER not in text:
            tail = "\n".join(text.splitlines()[-5:])
            return Collected(node, origin, error=f"the Job failed ({message}); log tail: {tail}")
    return Collected(node, origin, text=text)
