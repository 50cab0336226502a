"""A "trace + node list" scenario: the node list and GPU table become files the rest reads.

``scenario.yaml`` names ``nodeList`` (and optionally ``gpuModels``); the node
classes (with counts), the EnergyProfiles and the truth are generated from them
into ``<scenario>/generated/`` (inspectable: what the cluster, energysched and the
simulator get), so the cluster, the profile installer and the truth parser read
them as they read hand-written ones. ``workload.yaml`` (``kind: jobs``) then reads
the pod list with a window, a sample and a time scale (:mod:`.tracelist`).
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from energysched_lab.experiment import tracelist
from energysched_lab.experiment.scenario import (
    SCENARIOS_DIR,
    ScenarioError,
    TraceJob,
    Workload,
    _check_keys,
    _mapping,
    _num,
    _yaml,
)

DEFAULT_GPU_TABLE = SCENARIOS_DIR / "gpu-models.yaml"
GENERATED = "generated"
#: Per run and job: speed x exp(N(0, 0.05)) (the truth's runNoise of generated truths).
RUN_NOISE = 0.05


@dataclass(frozen=True)
class TraceNodes:
    node_groups: tuple[tracelist.NodeGroup, ...]
    table: tracelist.GpuTable
    nodes_dir: Path
    profiles_dir: Path
    truth_file: Path

    @property
    def node_count(self) -> int:
        return sum(g.count for g in self.node_groups)


def _file(path: Path, meta: Mapping[str, Any], key: str, meta_file: Path, default: Path) -> Path:
    rel = meta.get(key)
    if rel is None:
        return default
    if not isinstance(rel, str):
        raise ScenarioError(f"{meta_file}: {key} must be a file path, got {rel!r}")
    f = (path / rel).resolve()
    if not f.is_file():
        raise ScenarioError(f"{meta_file}: {key}: no file {f}")
    return f


def _write(file: Path, doc: Any) -> None:
    file.write_text(yaml.safe_dump(doc, sort_keys=False))


def trace_nodes(path: Path, meta: Mapping[str, Any], meta_file: Path) -> TraceNodes:
    table_file = _file(path, meta, "gpuModels", meta_file, DEFAULT_GPU_TABLE)
    node_list = _file(path, meta, "nodeList", meta_file, path / "nodes.csv")
    try:
        table = tracelist.parse_gpu_table(_yaml(table_file), table_file)
        groups = tracelist.read_node_list(node_list, table)
    except tracelist.TraceError as exc:
        raise ScenarioError(str(exc)) from exc
    out = path / GENERATED
    nodes_dir, profiles_dir = out / "nodes", out / "profiles"
    # Regenerated on every load: the node list is the source, these are its rendering.
    shutil.rmtree(out, ignore_errors=True)
    nodes_dir.mkdir(parents=True)
    profiles_dir.mkdir()
    header = "# Generated from the scenario's node list and GPU table; do not edit.\n"
    (out / "README").write_text(header)
    for g in groups:
        _write(nodes_dir / f"{g.name}.yaml", tracelist.node_class_doc(g))
        _write(profiles_dir / f"{g.name}.yaml", tracelist.profile_doc(g, table))
    truth_file = out / "truth.yaml"
    _write(truth_file, tracelist.truth_doc(groups, table, RUN_NOISE))
    return TraceNodes(tuple(groups), table, nodes_dir, profiles_dir, truth_file)


def trace_workload(top: Mapping[str, Any], file: Path, trace: TraceNodes) -> Workload:
    allowed = {
        "kind",
        "jobsFile",
        "referenceModel",
        "timeScale",
        "window",
        "sample",
        "description",
    }
    _check_keys(top, allowed, file, "")
    rel = top.get("jobsFile")
    if not isinstance(rel, str):
        raise ScenarioError(f"{file}: jobsFile must name a CSV file, got {rel!r}")
    ref = top.get("referenceModel")
    if not isinstance(ref, str):
        raise ScenarioError(
            f"{file}: referenceModel must name a model of the GPU table, got {ref!r}"
        )
    scale = _num(top, "timeScale", file, "", 1.0, strict_low=True)
    win = _mapping(top.get("window", {}), file, "window")
    _check_keys(win, {"fromDay", "toDay"}, file, "window")
    from_day = _num(win, "fromDay", file, "window", 0.0)
    to_day = _num(win, "toDay", file, "window", 1e9) if "toDay" in win else float("inf")
    if to_day <= from_day:
        raise ScenarioError(f"{file}: window.toDay must be > fromDay {from_day:g}, got {to_day:g}")
    smp = _mapping(top.get("sample", {}), file, "sample")
    _check_keys(smp, {"every", "seed"}, file, "sample")
    every = smp.get("every", 1)
    seed = smp.get("seed", 1)
    if isinstance(every, bool) or not isinstance(every, int) or every < 1:
        raise ScenarioError(f"{file}: sample.every must be an integer >= 1, got {every!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ScenarioError(f"{file}: sample.seed must be an integer, got {seed!r}")
    return trace_jobs(
        file.parent / rel,
        trace,
        reference_model=ref,
        window=tracelist.Window(from_day, to_day),
        sample=tracelist.Sample(every, seed),
        time_scale=scale,
    )


def trace_jobs(
    pod_list: Path,
    trace: TraceNodes,
    *,
    reference_model: str,
    window: tracelist.Window = tracelist.ALL_DAYS,
    sample: tracelist.Sample = tracelist.EVERY_POD,
    time_scale: float = 1.0,
) -> Workload:
    try:
        pods, cuts = tracelist.read_pod_list(
            pod_list,
            trace.node_groups,
            reference_model=reference_model,
            table=trace.table,
            window=window,
            sample=sample,
            time_scale=time_scale,
        )
    except tracelist.TraceError as exc:
        raise ScenarioError(str(exc)) from exc
    if not pods:
        raise ScenarioError(f"{pod_list}: no pod left to replay ({'; '.join(cuts.lines())})")
    width = max(4, len(str(len(pods) - 1)))
    jobs = tuple(
        TraceJob(
            name=f"j{i:0{width}d}",
            workload_type=p.workload_type,
            work=p.work,
            arrival_s=p.arrival_s,
            cpu_milli=p.cpu_milli,
            memory_mib=p.memory_mib,
            num_gpu=0,
            gpu_milli=p.gpu_milli,
            gpu_models=p.gpu_models,
            units=p.units,
        )
        for i, p in enumerate(sorted(pods, key=lambda p: p.arrival_s))
    )
    return Workload(kind="jobs", jobs=jobs, cuts=tuple(cuts.lines()))
