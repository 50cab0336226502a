"""A trace's node list and pod list as a scenario (format: kb/scenarios/README.md).

Pure (no cluster, no clock): the Alibaba GPU cluster trace 2023 node list
(``sn, cpu_milli, memory_mib, gpu, model``) and a GPU model table become node
classes with a count, EnergyProfiles and a truth; its pod list becomes jobs,
cut to a window of days and sampled every k-th pod (seeded), with every pod left
out counted by reason. :mod:`.scenario` calls it when ``scenario.yaml`` names a
``nodeList``.

Rules (documented in kb/scenarios/README.md):

- nodes with the same (model, gpu, cpu_milli, memory_mib) form one class, named
  ``<model>-<gpu>g-<cores>c-<GiB>gi`` (``cpu`` for the model of a node without GPU);
  its nodes are ``<class>-NNNN``;
- GPU sharing: a pod asks for ``num_gpu x gpu_milli`` of the extended resource
  ``GPU_MILLI`` (a node offers ``gpu x 1000``); ``nvidia.com/gpu`` is not requested;
- ``gpu_spec`` (``|``-separated models) becomes required node affinity on ``MODEL_LABEL``;
- a pod occupies ``units`` of its class's per-unit figures: GPUs (``num_gpu x gpu_milli
  / 1000``) for a GPU pod, cores (``cpu_milli / 1000``) for a CPU pod.
"""

from __future__ import annotations

import csv
import math
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from energysched.contract import WorkloadType

#: The extended resource a trace pod's GPU share is requested in (1000 = one whole GPU).
GPU_MILLI = "lab.energysched.io/gpu-milli"
#: The node label holding the trace's GPU model (the target of gpu_spec affinity).
MODEL_LABEL = "lab.energysched.io/gpu-model"
INSTANCE_TYPE_LABEL = "node.kubernetes.io/instance-type"
NODE_LIST_COLUMNS = ("sn", "cpu_milli", "memory_mib", "gpu", "model")
POD_LIST_COLUMNS = (
    "name",
    "cpu_milli",
    "memory_mib",
    "num_gpu",
    "gpu_milli",
    "creation_time",
    "scheduled_time",
    "deletion_time",
)
#: Optional pod-list columns read when present (others, e.g. qos, pod_phase, are ignored).
POD_LIST_OPTIONAL = ("gpu_spec",)
DAY_S = 86400.0
#: Work unit of every trace job: seconds on the reference (GPU jobs: on the reference model).
CPU_MODEL = "cpu"


class TraceError(ValueError):
    """A trace file or the GPU table is malformed; the message names file, line and value."""


# -- the GPU model table ---------------------------------------------------------------------


@dataclass(frozen=True)
class GpuModel:
    name: str
    tdp_watts: float
    idle_watts: float
    fp32_tflops: float
    source: str


@dataclass(frozen=True)
class GpuTable:
    models: Mapping[str, GpuModel]
    host_idle_watts: float
    watts_per_core: float
    path: str = ""


def _positive(doc: Mapping[str, Any], key: str, where: str, *, zero_ok: bool = False) -> float:
    v = doc.get(key)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise TraceError(f"{where}.{key} must be a number, got {v!r}")
    if v < 0 or (v == 0 and not zero_ok):
        raise TraceError(f"{where}.{key} must be {'>=' if zero_ok else '>'} 0, got {v!r}")
    return float(v)


def parse_gpu_table(doc: Any, file: Path) -> GpuTable:
    if not isinstance(doc, Mapping):
        raise TraceError(f"{file}: must be a mapping with host and models")
    unknown = sorted(set(doc) - {"host", "models"})
    if unknown:
        raise TraceError(f"{file}: unknown field {unknown[0]!r} (allowed: host, models)")
    host = doc.get("host")
    models = doc.get("models")
    if not isinstance(host, Mapping) or not isinstance(models, Mapping) or not models:
        raise TraceError(f"{file}: host and models must be mappings (models non-empty)")
    out: dict[str, GpuModel] = {}
    for name, raw in models.items():
        where = f"{file}: models.{name}"
        if not isinstance(raw, Mapping):
            raise TraceError(f"{where} must be a mapping, got {raw!r:.60}")
        tdp = _positive(raw, "tdpWatts", where)
        idle = _positive(raw, "idleWatts", where, zero_ok=True)
        if idle > tdp:
            raise TraceError(f"{where}.idleWatts must be <= tdpWatts {tdp:g}, got {idle:g}")
        out[str(name)] = GpuModel(
            str(name), tdp, idle, _positive(raw, "fp32Tflops", where), str(raw.get("source", ""))
        )
    return GpuTable(
        out,
        _positive(host, "idleWatts", f"{file}: host", zero_ok=True),
        _positive(host, "wattsPerCore", f"{file}: host", zero_ok=True),
        str(file),
    )


# -- the node list ---------------------------------------------------------------------------


@dataclass(frozen=True)
class NodeGroup:
    """Nodes of one shape: a node class with a count."""

    name: str
    model: str  # CPU_MODEL for nodes without GPU
    gpu: int
    cpu_milli: int
    memory_mib: int
    count: int


def _ints(row: Mapping[str, str], keys: Sequence[str], where: str) -> list[int]:
    out = []
    for k in keys:
        raw = (row.get(k) or "").strip()
        try:
            v = int(float(raw))
        except ValueError:
            raise TraceError(f"{where}: {k} must be an integer, got {raw!r}") from None
        if v < 0:
            raise TraceError(f"{where}: {k} must be >= 0, got {v}")
        out.append(v)
    return out


def _read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    try:
        with path.open(newline="") as fh:
            reader = csv.DictReader(fh)
            rows = list(reader)
            return list(reader.fieldnames or []), rows
    except OSError as exc:
        raise TraceError(f"{path}: cannot read: {exc}") from exc
    except csv.Error as exc:
        raise TraceError(f"{path}: not valid CSV: {exc}") from exc


def class_name(model: str, gpu: int, cpu_milli: int, memory_mib: int) -> str:
    base = model.lower() if gpu else CPU_MODEL
    return f"{base}-{gpu}g-{cpu_milli // 1000}c-{memory_mib // 1024}gi"


def read_node_list(path: Path, table: GpuTable) -> list[NodeGroup]:
    """Groups of identical nodes; every error names the line and value."""
    columns, rows = _read_csv(path)
    unknown = [c for c in columns if c not in NODE_LIST_COLUMNS]
    if unknown:
        raise TraceError(
            f"{path}: unknown column {unknown[0]!r} "
            f"(a node list has {', '.join(NODE_LIST_COLUMNS)})"
        )
    missing = [c for c in NODE_LIST_COLUMNS if c not in columns]
    if missing:
        raise TraceError(f"{path}: column {missing[0]!r} is missing")
    counts: dict[tuple[str, int, int, int], int] = {}
    seen: set[str] = set()
    for line, row in enumerate(rows, start=2):
        where = f"{path}: line {line}"
        sn = (row.get("sn") or "").strip()
        if not sn or sn in seen:
            raise TraceError(f"{where}: sn must be a unique name, got {sn!r}")
        seen.add(sn)
        cpu, mem, gpu = _ints(row, ("cpu_milli", "memory_mib", "gpu"), where)
        model = (row.get("model") or "").strip()
        if gpu and model not in table.models:
            raise TraceError(
                f"{where}: GPU model {model!r} is not in the GPU table {table.path} "
                f"(has {', '.join(sorted(table.models))}); add it with its TDP and idle watts"
            )
        key = (model if gpu else CPU_MODEL, gpu, cpu, mem)
        counts[key] = counts.get(key, 0) + 1
    if not counts:
        raise TraceError(f"{path}: no nodes")
    return [
        NodeGroup(class_name(m, g, c, mm), m, g, c, mm, n)
        for (m, g, c, mm), n in sorted(counts.items(), key=lambda kv: class_name(*kv[0]))
    ]


# -- what the cluster, the scheduler and the simulator get -----------------------------------


def node_class_doc(g: NodeGroup) -> dict[str, Any]:
    """A kb/nodes-format node class with ``count`` (nodes ``<class>-NNNN``)."""
    res = {
        "cpu": f"{g.cpu_milli}m",
        "memory": f"{g.memory_mib}Mi",
        "pods": "110",
    }
    if g.gpu:
        res["nvidia.com/gpu"] = str(g.gpu)
        res[GPU_MILLI] = str(g.gpu * 1000)
    labels = {
        "kubernetes.io/arch": "amd64",
        "kubernetes.io/os": "linux",
        INSTANCE_TYPE_LABEL: g.name,
        MODEL_LABEL: g.model if g.gpu else CPU_MODEL,
    }
    return {
        "name": g.name,
        "count": g.count,
        "labels": labels,
        "capacity": res,
        "allocatable": res,
        "nodeInfo": {"architecture": "amd64", "operatingSystem": "linux"},
    }


@dataclass(frozen=True)
class ClassFigures:
    """Per unit (one GPU, one core) of a class: what a job adds and how fast it runs."""

    idle_watts: float
    #: workload type -> (performance, powerWatts per unit incl. idle, resource, demand/unit)
    workloads: Mapping[str, tuple[float, float, str, float]]


def class_figures(g: NodeGroup, table: GpuTable) -> ClassFigures:
    cores = max(g.cpu_milli / 1000.0, 1e-3)
    idle = table.host_idle_watts
    wl: dict[str, tuple[float, float, str, float]] = {}
    if g.gpu:
        m = table.models[g.model]
        idle += g.gpu * m.idle_watts
        # One GPU busy at its TDP; speed by its FP32 peak.
        wl["training"] = (m.fp32_tflops, idle + (m.tdp_watts - m.idle_watts), "gpu", 1.0 / g.gpu)
    # CPU work: one work unit per second of a core on any node (the trace names no CPU).
    cpu_fig = (1.0, idle + table.watts_per_core, "cpu", 1.0 / cores)
    wl["sequential"] = cpu_fig
    wl["inference"] = cpu_fig
    return ClassFigures(idle, wl)


def truth_doc(groups: Sequence[NodeGroup], table: GpuTable, run_noise: float) -> dict[str, Any]:
    nodes: dict[str, Any] = {}
    for g in groups:
        f = class_figures(g, table)
        nodes[g.name] = {
            "idlePowerWatts": round(f.idle_watts, 3),
            "workloads": {
                wt: {
                    "performance": perf,
                    "powerWatts": round(power, 3),
                    "resource": res,
                    "demand": round(demand, 9),
                }
                for wt, (perf, power, res, demand) in f.workloads.items()
            },
        }
    return {
        "provenance": f"generated from the node list and the GPU table {table.path}",
        "runNoise": run_noise,
        "nodes": nodes,
    }


_UNITS = {"training": "reference-GPU s", "inference": "core s", "sequential": "core s"}


def profile_doc(g: NodeGroup, table: GpuTable) -> dict[str, Any]:
    """What energysched is told: the same public figures (per GPU / per core)."""
    f = class_figures(g, table)
    src = table.models[g.model].source if g.gpu else "host defaults"
    gpu_dynamic = 0.0
    if g.gpu:
        m = table.models[g.model]
        gpu_dynamic = g.gpu * (m.tdp_watts - m.idle_watts)
    max_w = f.idle_watts + gpu_dynamic + table.watts_per_core * g.cpu_milli / 1000.0
    return {
        "apiVersion": "energy.thesis.io/v1alpha1",
        "kind": "EnergyProfile",
        "metadata": {"name": g.name},
        "spec": {
            "nodeSelector": {INSTANCE_TYPE_LABEL: g.name},
            "idlePowerWatts": round(f.idle_watts, 3),
            "maxPowerWatts": round(max_w, 3),
            "workloads": {
                wt: {
                    "performance": perf,
                    "powerWatts": round(power, 3),
                    "unit": _UNITS[wt],
                    "source": "estimated",
                    "provenance": f"per GPU or core, from {table.path}: {src}",
                }
                for wt, (perf, power, _res, _d) in f.workloads.items()
            },
            "provenance": f"generated from a trace node list and {table.path}",
        },
    }


# -- the pod list ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    from_day: float = 0.0
    to_day: float = math.inf


@dataclass(frozen=True)
class Sample:
    every: int = 1
    seed: int = 1


ALL_DAYS = Window()
EVERY_POD = Sample()


@dataclass(frozen=True)
class TracePod:
    name: str  # the trace's name
    workload_type: WorkloadType
    #: Seconds on the reference (GPU: the reference model; CPU: any core).
    work: float
    arrival_s: float
    cpu_milli: int
    memory_mib: int
    gpu_milli: int  # num_gpu x gpu_milli: the GPU_MILLI request
    gpu_models: tuple[str, ...]  # gpu_spec: required models (empty: any)
    units: float


@dataclass
class Cuts:
    """What was left out of the replay, by reason (the report states it)."""

    rows: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    kept: int = 0
    window: Window = Window()
    sample: Sample = Sample()
    time_scale: float = 1.0

    def add(self, reason: str) -> None:
        self.counts[reason] = self.counts.get(reason, 0) + 1

    def lines(self) -> list[str]:
        out = [f"{self.rows} pods in the pod list, {self.kept} replayed"]
        w = self.window
        if w.from_day > 0 or math.isfinite(w.to_day):
            out.append(
                f"window: pods created on days {w.from_day:g} .. {w.to_day:g} of the trace "
                "(from the first creation_time)"
            )
        if self.sample.every > 1:
            out.append(f"sample: every {self.sample.every}th pod, seed {self.sample.seed}")
        if self.time_scale != 1.0:
            out.append(f"time scale {self.time_scale:g} on arrivals and durations")
        out.extend(f"skipped {n}: {reason}" for reason, n in sorted(self.counts.items()))
        return out


def _float(raw: str | None) -> float | None:
    text = (raw or "").strip()
    if not text:
        return None
    return float(text)


def read_pod_list(
    path: Path,
    groups: Sequence[NodeGroup],
    *,
    reference_model: str,
    table: GpuTable,
    window: Window = ALL_DAYS,
    sample: Sample = EVERY_POD,
    time_scale: float = 1.0,
) -> tuple[list[TracePod], Cuts]:
    """The replayed pods, and a count of every pod left out by reason.

    Never ran (no scheduled_time or deletion_time, or zero), negative or reversed times,
    a request no node can hold (with its gpu_spec), a gpu_spec naming no node's model:
    skipped and counted. Unknown columns are ignored (the trace has qos, pod_phase).
    """
    columns, rows = _read_csv(path)
    missing = [c for c in POD_LIST_COLUMNS if c not in columns]
    if missing:
        raise TraceError(
            f"{path}: column {missing[0]!r} is missing (a pod list needs "
            f"{', '.join(POD_LIST_COLUMNS)})"
        )
    if reference_model not in table.models:
        raise TraceError(
            f"referenceModel {reference_model!r} is not in the GPU table {table.path} "
            f"(has {', '.join(sorted(table.models))})"
        )
    ref_speed = table.models[reference_model].fp32_tflops
    cuts = Cuts(rows=len(rows), window=window, sample=sample, time_scale=time_scale)
    models = {g.model for g in groups if g.gpu}
    parsed: list[tuple[int, dict[str, str], float]] = []
    for line, row in enumerate(rows, start=2):
        try:
            created = _float(row.get("creation_time"))
        except ValueError:
            cuts.add("creation_time not a number")
            continue
        if created is None or created < 0:
            cuts.add("creation_time missing or negative")
            continue
        parsed.append((line, row, created))
    if not parsed:
        return [], cuts
    t0 = min(c for _, _, c in parsed)
    offset = random.Random(f"sample:{sample.seed}").randrange(sample.every)
    pods: list[TracePod] = []
    for index, (line, row, created) in enumerate(parsed):
        day = (created - t0) / DAY_S
        if not window.from_day <= day < window.to_day:
            cuts.add("outside the window")
            continue
        if index % sample.every != offset:
            cuts.add("not sampled")
            continue
        pod = _pod(row, line, created, groups, models, ref_speed, time_scale, cuts)
        if pod is not None:
            pods.append(pod)
    cuts.kept = len(pods)
    if pods:
        first = min(p.arrival_s for p in pods)
        pods = [
            TracePod(
                p.name,
                p.workload_type,
                p.work,
                p.arrival_s - first,
                p.cpu_milli,
                p.memory_mib,
                p.gpu_milli,
                p.gpu_models,
                p.units,
            )
            for p in pods
        ]
    return pods, cuts


def _pod(
    row: Mapping[str, str],
    line: int,
    created: float,
    groups: Sequence[NodeGroup],
    models: set[str],
    ref_speed: float,
    time_scale: float,
    cuts: Cuts,
) -> TracePod | None:
    try:
        scheduled = _float(row.get("scheduled_time"))
        deleted = _float(row.get("deletion_time"))
        cpu, mem, num_gpu, gpu_milli = (
            int(float((row.get(k) or "0").strip() or 0))
            for k in ("cpu_milli", "memory_mib", "num_gpu", "gpu_milli")
        )
    except ValueError:
        cuts.add("a number column is not a number")
        return None
    if scheduled is None or deleted is None:
        cuts.add("never ran (no scheduled_time or deletion_time)")
        return None
    if min(cpu, mem, num_gpu, gpu_milli) < 0 or scheduled < 0 or deleted < 0:
        cuts.add("negative value")
        return None
    if deleted <= scheduled:
        cuts.add("deletion_time not after scheduled_time")
        return None
    spec = tuple(sorted({m.strip() for m in (row.get("gpu_spec") or "").split("|") if m.strip()}))
    if num_gpu and not gpu_milli:
        gpu_milli = 1000  # a whole-GPU pod written without its share
    want_gpu = num_gpu * gpu_milli if num_gpu else 0
    if spec and not (set(spec) & models):
        cuts.add("gpu_spec names no model of the node list")
        return None
    fits = any(
        g.cpu_milli >= cpu
        and g.memory_mib >= mem
        and g.gpu * 1000 >= want_gpu
        and (not want_gpu or not spec or g.model in spec)
        for g in groups
    )
    if not fits:
        cuts.add("bigger than every node (with its gpu_spec)")
        return None
    duration = (deleted - scheduled) * time_scale
    if want_gpu:
        wt: WorkloadType = "training"
        work = duration * ref_speed
        units = want_gpu / 1000.0
    else:
        wt = "sequential" if cpu <= 1000 else "inference"
        work = duration
        units = max(cpu, 1) / 1000.0
    return TracePod(
        name=str(row.get("name") or f"line-{line}"),
        workload_type=wt,
        work=work,
        arrival_s=created * time_scale,
        cpu_milli=cpu,
        memory_mib=mem,
        gpu_milli=want_gpu,
        gpu_models=spec if want_gpu else (),
        units=units,
    )


def affinity(models: Iterable[str]) -> dict[str, Any]:
    """gpu_spec as required node affinity (a pod spec's ``affinity``)."""
    return {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {
                        "matchExpressions": [
                            {"key": MODEL_LABEL, "operator": "In", "values": sorted(models)}
                        ]
                    }
                ]
            }
        }
    }
