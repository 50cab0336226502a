"""Scenarios: what the cluster is, what the scheduler is told, what is true, what is submitted.

A scenario is a directory (format documented in ``kb/scenarios/README.md``)::

    scenario.yaml   optional: description, and where nodes/ and profiles/ are
    nodes/          node classes, as kb/nodes (one KWOK node per class)
    profiles/       EnergyProfiles: what the scheduler is told
    truth.yaml      what the simulator runs: real performance and power per node
                    class and workload type, idle power, the sharing model
    workload.yaml   what is submitted: N workflows with seeded arrivals, or a job list

Every error names the file, the field and the offending value; nothing is
half-loaded.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from energysched.contract import WORKLOAD_TYPES, WorkloadType
from energysched.kb.io import load_profiles
from energysched.kb.profiles import KnowledgeBase
from energysched_lab.cluster.nodes import NodeClass, NodeClassError, load_node_classes

#: The repository's kb/scenarios (editable install, as kb/nodes).
SCENARIOS_DIR = Path(__file__).resolve().parents[3] / "kb" / "scenarios"
DEFAULT_SCENARIO = SCENARIOS_DIR / "thesis"


class ScenarioError(ValueError):
    """A scenario file is malformed; the message names file, field and value."""


# -- truth ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkTruth:
    """How one workload type really runs on one node class."""

    performance: float  # work units/s when the pod has its resource to itself
    power_watts: float  # wall power of the node while running it alone (idle included)
    #: The node resource the pod occupies ("cpu", "gpu", ...) and which fraction of it.
    resource: str = "cpu"
    demand: float = 1.0


@dataclass(frozen=True)
class PowerTruth:
    """How a node class really sleeps and wakes (truth.yaml ``nodes.<class>.powerStates``)."""

    sleep_watts: float  # wall power while asleep
    suspend_seconds: float  # falling asleep, at idle power
    wake_seconds: float  # median time from the wake request until Ready
    wake_joules: float  # energy of a wake (drawn evenly over it)
    #: Probability that a wake fails (the node stays asleep: a lost WoL packet, a relay
    #: that does not switch); the power manager notices at its wake timeout.
    wake_failure_probability: float = 0.0
    #: Per wake: wake_seconds x exp(N(0, jitter)), the long tail of resume times.
    wake_jitter: float = 0.0

    @property
    def wake_watts(self) -> float:
        return self.wake_joules / self.wake_seconds


@dataclass(frozen=True)
class NodeTruth:
    node_class: str
    idle_watts: float
    workloads: Mapping[str, WorkTruth]
    #: None: the node class cannot sleep in the simulation.
    power: PowerTruth | None = None


@dataclass(frozen=True)
class Truth:
    nodes: Mapping[str, NodeTruth]
    #: Per run and job: duration x exp(N(0, run_noise)), seeded by the run's seed.
    run_noise: float = 0.0
    provenance: str = ""


# -- workload ------------------------------------------------------------------------------


@dataclass(frozen=True)
class StageSpec:
    name: str
    workload_type: WorkloadType
    work: float  # in the knowledge base's unit of the workload type
    cpu: str = "500m"
    memory: str = "256Mi"
    gpu: int = 0


@dataclass(frozen=True)
class TraceJob:
    """One pod of a trace-shaped job list (Alibaba GPU trace columns)."""

    name: str
    workload_type: WorkloadType
    work: float
    arrival_s: float
    cpu_milli: int
    memory_mib: int
    num_gpu: int


Process = Literal["fixed", "poisson", "diurnal"]


@dataclass(frozen=True)
class Workload:
    kind: Literal["workflows", "jobs"]
    stages: tuple[StageSpec, ...] = ()
    count: int = 1
    process: Process = "fixed"
    interval_s: float = 0.0  # fixed: between arrivals; poisson: mean
    work_jitter: float = 0.0  # per workflow: work x exp(N(0, jitter))
    jobs: tuple[TraceJob, ...] = ()
    #: diurnal: workflows per day on average, and the relative arrival rate of each hour
    #: of the day (24 weights); arrivals are a Poisson process with that hourly rate over
    #: one day, ``count`` at most.
    per_day: float = 0.0
    hourly_weights: tuple[float, ...] = ()


@dataclass(frozen=True)
class Scenario:
    name: str
    path: Path
    description: str
    nodes_dir: Path
    profiles_dir: Path
    node_classes: tuple[NodeClass, ...]
    knowledge_base: KnowledgeBase
    truth: Truth
    workload: Workload
    time_factor: float = 0.01
    extra: Mapping[str, Any] = field(default_factory=dict)
    #: A run lasts at least this many simulated seconds (0: until its last job ends).
    horizon_s: float = 0.0


# -- helpers -------------------------------------------------------------------------------


def _yaml(file: Path) -> Any:
    try:
        return yaml.safe_load(file.read_text())
    except OSError as exc:
        raise ScenarioError(f"{file}: cannot read: {exc}") from exc
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{file}: not valid YAML: {exc}") from exc


def _mapping(value: Any, file: Path, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ScenarioError(f"{file}: {where} must be a mapping, got {value!r:.80}")
    return value


def _check_keys(doc: Mapping[str, Any], allowed: set[str], file: Path, where: str) -> None:
    unknown = sorted(set(doc) - allowed)
    if unknown:
        raise ScenarioError(
            f"{file}: {where}: unknown field {unknown[0]!r} (allowed: {', '.join(sorted(allowed))})"
        )


def _num(
    doc: Mapping[str, Any],
    key: str,
    file: Path,
    where: str,
    default: float | None = None,
    *,
    low: float = 0.0,
    high: float = math.inf,
    strict_low: bool = False,
) -> float:
    value = doc.get(key, default)
    field_name = f"{where}.{key}" if where else key
    if value is None:
        raise ScenarioError(f"{file}: {field_name} is required")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ScenarioError(f"{file}: {field_name} must be a number, got {value!r}")
    if value < low or value > high or (strict_low and value == low):
        rel = ">" if strict_low else ">="
        bound = f"{rel} {low:g}" + (f" and <= {high:g}" if math.isfinite(high) else "")
        raise ScenarioError(f"{file}: {field_name} must be {bound}, got {value!r}")
    return float(value)


def _workload_type(value: Any, file: Path, where: str) -> WorkloadType:
    for wt in WORKLOAD_TYPES:
        if value == wt:
            return wt
    raise ScenarioError(
        f"{file}: {where} must be one of {', '.join(WORKLOAD_TYPES)}, got {value!r}"
    )


# -- truth.yaml ----------------------------------------------------------------------------


def parse_truth(doc: Any, file: Path, classes: set[str] | None = None) -> Truth:
    top = _mapping(doc, file, "the document")
    _check_keys(
        top, {"seed", "generatedFrom", "noise", "runNoise", "provenance", "nodes"}, file, ""
    )
    run_noise = _num(top, "runNoise", file, "", 0.0, high=1.0)
    nodes_doc = _mapping(top.get("nodes"), file, "nodes")
    nodes: dict[str, NodeTruth] = {}
    for cls, raw in nodes_doc.items():
        where = f"nodes.{cls}"
        if classes is not None and cls not in classes:
            raise ScenarioError(
                f"{file}: {where}: no node class {cls!r} in nodes/ "
                f"(have {', '.join(sorted(classes))})"
            )
        n = _mapping(raw, file, where)
        _check_keys(n, {"idlePowerWatts", "workloads", "powerStates"}, file, where)
        idle = _num(n, "idlePowerWatts", file, where)
        power = _power_truth(n.get("powerStates"), idle, file, f"{where}.powerStates")
        wls: dict[str, WorkTruth] = {}
        for wt, wraw in _mapping(n.get("workloads"), file, f"{where}.workloads").items():
            ww = f"{where}.workloads.{wt}"
            _workload_type(wt, file, f"{where}.workloads key")
            w = _mapping(wraw, file, ww)
            _check_keys(w, {"performance", "powerWatts", "resource", "demand"}, file, ww)
            perf = _num(w, "performance", file, ww, strict_low=True)
            watts = _num(w, "powerWatts", file, ww)
            if watts < idle:
                raise ScenarioError(
                    f"{file}: {ww}.powerWatts must be >= idlePowerWatts {idle:g}, got {watts:g}"
                )
            resource = w.get("resource", "cpu")
            if not isinstance(resource, str) or not resource:
                raise ScenarioError(f"{file}: {ww}.resource must be a name, got {resource!r}")
            demand = _num(w, "demand", file, ww, 1.0, high=1.0, strict_low=True)
            wls[wt] = WorkTruth(perf, watts, resource, demand)
        nodes[str(cls)] = NodeTruth(str(cls), idle, wls, power)
    if not nodes:
        raise ScenarioError(f"{file}: nodes must name at least one node class")
    return Truth(nodes, run_noise, str(top.get("provenance", "")))


def _power_truth(raw: Any, idle: float, file: Path, where: str) -> PowerTruth | None:
    if raw is None:
        return None
    p = _mapping(raw, file, where)
    _check_keys(
        p,
        {
            "sleepWatts",
            "suspendSeconds",
            "wakeSeconds",
            "wakeJoules",
            "wakeFailureProbability",
            "wakeJitter",
        },
        file,
        where,
    )
    sleep = _num(p, "sleepWatts", file, where)
    if sleep >= idle:
        raise ScenarioError(
            f"{file}: {where}.sleepWatts must be below idlePowerWatts {idle:g} "
            f"(sleeping must draw less than idling), got {sleep:g}"
        )
    return PowerTruth(
        sleep_watts=sleep,
        suspend_seconds=_num(p, "suspendSeconds", file, where, 0.0),
        wake_seconds=_num(p, "wakeSeconds", file, where, strict_low=True),
        wake_joules=_num(p, "wakeJoules", file, where),
        wake_failure_probability=_num(p, "wakeFailureProbability", file, where, 0.0, high=1.0),
        wake_jitter=_num(p, "wakeJitter", file, where, 0.0, high=2.0),
    )


# -- workload.yaml -------------------------------------------------------------------------


def _stage(raw: Any, file: Path, where: str) -> StageSpec:
    s = _mapping(raw, file, where)
    _check_keys(s, {"name", "workloadType", "work", "requests"}, file, where)
    name = s.get("name")
    if not isinstance(name, str) or not name.replace("-", "").isalnum() or name != name.lower():
        raise ScenarioError(f"{file}: {where}.name must be a lower-case DNS label, got {name!r}")
    req = _mapping(s.get("requests", {}), file, f"{where}.requests")
    _check_keys(req, {"cpu", "memory", "nvidia.com/gpu"}, file, f"{where}.requests")
    gpu = req.get("nvidia.com/gpu", 0)
    if not isinstance(gpu, int) or gpu < 0:
        raise ScenarioError(f"{file}: {where}.requests.nvidia.com/gpu must be >= 0, got {gpu!r}")
    return StageSpec(
        name=name,
        workload_type=_workload_type(s.get("workloadType"), file, f"{where}.workloadType"),
        work=_num(s, "work", file, where, strict_low=True),
        cpu=str(req.get("cpu", "500m")),
        memory=str(req.get("memory", "256Mi")),
        gpu=gpu,
    )


TRACE_COLUMNS = (
    "name",
    "cpu_milli",
    "memory_mib",
    "num_gpu",
    "creation_time",
    "scheduled_time",
    "deletion_time",
)


def _trace_jobs(doc: Mapping[str, Any], file: Path, truth: Truth) -> tuple[TraceJob, ...]:
    """A pod list in the Alibaba GPU trace's columns (see kb/scenarios/README.md).

    Rows without scheduled_time or deletion_time (pods that never ran) are skipped.
    """
    rel = doc.get("jobsFile")
    if not isinstance(rel, str):
        raise ScenarioError(f"{file}: jobsFile must name a CSV file, got {rel!r}")
    ref = doc.get("referenceNode")
    if not isinstance(ref, str) or ref not in truth.nodes:
        raise ScenarioError(
            f"{file}: referenceNode must be a node class of truth.yaml "
            f"({', '.join(sorted(truth.nodes))}), got {ref!r}"
        )
    scale = _num(doc, "timeScale", file, "", 1.0, strict_low=True)
    path = file.parent / rel
    try:
        reader = csv.DictReader(path.read_text().splitlines())
        rows = list(reader)
    except OSError as exc:
        raise ScenarioError(f"{file}: jobsFile {rel!r}: cannot read: {exc}") from exc
    missing = [c for c in TRACE_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise ScenarioError(f"{path}: column {missing[0]!r} is missing (need {TRACE_COLUMNS})")
    jobs: list[TraceJob] = []
    for i, row in enumerate(rows, start=2):
        if not row["scheduled_time"] or not row["deletion_time"]:
            continue  # never ran in the trace
        try:
            cpu, mem, gpu = int(row["cpu_milli"]), int(row["memory_mib"]), int(row["num_gpu"])
            created = float(row["creation_time"])
            duration = float(row["deletion_time"]) - float(row["scheduled_time"])
        except ValueError as exc:
            raise ScenarioError(f"{path}: line {i}: {exc}") from exc
        if duration <= 0:
            raise ScenarioError(
                f"{path}: line {i}: deletion_time must be after scheduled_time, "
                f"got {row['scheduled_time']} .. {row['deletion_time']}"
            )
        # Mapping to workload types (documented): a GPU pod trains, a pod asking for
        # at most one core runs sequential work, any other CPU pod serves inference.
        wt: WorkloadType = "training" if gpu > 0 else ("sequential" if cpu <= 1000 else "inference")
        ref_figures = truth.nodes[ref].workloads.get(wt)
        if ref_figures is None:
            raise ScenarioError(f"{file}: referenceNode {ref!r} has no truth for {wt}")
        jobs.append(
            TraceJob(
                name=f"j{len(jobs):04d}",
                workload_type=wt,
                # The trace's duration was measured on its own hardware; we take it as
                # the duration on the reference node, so work = duration x its speed.
                work=duration * scale * ref_figures.performance,
                arrival_s=created * scale,
                cpu_milli=cpu,
                memory_mib=mem,
                num_gpu=gpu,
            )
        )
    if not jobs:
        raise ScenarioError(f"{path}: no job with a scheduled_time and a deletion_time")
    t0 = min(j.arrival_s for j in jobs)
    return tuple(
        TraceJob(j.name, j.workload_type, j.work, j.arrival_s - t0, *j_res(j)) for j in jobs
    )


def j_res(job: TraceJob) -> tuple[int, int, int]:
    return job.cpu_milli, job.memory_mib, job.num_gpu


def parse_workload(doc: Any, file: Path, truth: Truth) -> Workload:
    top = _mapping(doc, file, "the document")
    kind = top.get("kind")
    if kind == "jobs":
        allowed = {"kind", "jobsFile", "referenceNode", "timeScale", "description"}
        _check_keys(top, allowed, file, "")
        return Workload(kind="jobs", jobs=_trace_jobs(top, file, truth))
    if kind != "workflows":
        raise ScenarioError(f"{file}: kind must be 'workflows' or 'jobs', got {kind!r}")
    _check_keys(
        top, {"kind", "workflow", "count", "arrivals", "workJitter", "description"}, file, ""
    )
    raw_stages = top.get("workflow")
    if not isinstance(raw_stages, list) or not raw_stages:
        raise ScenarioError(
            f"{file}: workflow must be a non-empty list of stages, got {raw_stages!r:.80}"
        )
    stages = tuple(_stage(s, file, f"workflow[{i}]") for i, s in enumerate(raw_stages))
    names = [s.name for s in stages]
    if len(set(names)) != len(names):
        raise ScenarioError(f"{file}: workflow: stage names must be unique, got {names}")
    count = top.get("count", 1)
    if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= 1000:
        raise ScenarioError(f"{file}: count must be an integer 1..1000, got {count!r}")
    arr = _mapping(top.get("arrivals", {"process": "fixed"}), file, "arrivals")
    _check_keys(
        arr,
        {"process", "intervalSeconds", "perDay", "hourlyWeights", "source"},
        file,
        "arrivals",
    )
    process = arr.get("process", "fixed")
    if process not in ("fixed", "poisson", "diurnal"):
        raise ScenarioError(
            f"{file}: arrivals.process must be fixed, poisson or diurnal, got {process!r}"
        )
    per_day, weights = 0.0, tuple[float, ...]()
    if process == "diurnal":
        per_day = _num(arr, "perDay", file, "arrivals", strict_low=True, high=1000.0)
        raw = arr.get("hourlyWeights")
        if not isinstance(raw, list) or len(raw) != 24:
            raise ScenarioError(
                f"{file}: arrivals.hourlyWeights must be a list of 24 numbers (one per hour "
                f"of the day), got {raw!r:.80}"
            )
        weights = tuple(
            _num({"w": w}, "w", file, f"arrivals.hourlyWeights[{i}]") for i, w in enumerate(raw)
        )
        if sum(weights) <= 0:
            raise ScenarioError(f"{file}: arrivals.hourlyWeights must not all be 0")
    return Workload(
        kind="workflows",
        stages=stages,
        count=count,
        process="poisson"
        if process == "poisson"
        else "diurnal"
        if process == "diurnal"
        else "fixed",
        interval_s=_num(arr, "intervalSeconds", file, "arrivals", 0.0),
        work_jitter=_num(top, "workJitter", file, "", 0.0, high=1.0),
        per_day=per_day,
        hourly_weights=weights,
    )


# -- scenario ------------------------------------------------------------------------------


def load_scenario(path: Path) -> Scenario:
    path = Path(path)
    if not path.is_dir():
        raise ScenarioError(f"{path}: not a scenario directory")
    meta_file = path / "scenario.yaml"
    meta: Mapping[str, Any] = {}
    if meta_file.exists():
        meta = _mapping(_yaml(meta_file) or {}, meta_file, "the document")
        _check_keys(
            meta,
            {"name", "description", "nodes", "profiles", "timeFactor", "horizonSeconds"},
            meta_file,
            "",
        )
    time_factor = _num(meta, "timeFactor", meta_file, "", 0.01, high=10.0, strict_low=True)
    horizon = _num(meta, "horizonSeconds", meta_file, "", 0.0, high=366 * 86400.0)

    def sub(key: str) -> Path:
        rel = meta.get(key, key)
        if not isinstance(rel, str):
            raise ScenarioError(f"{meta_file}: {key} must be a directory path, got {rel!r}")
        d = (path / rel).resolve()
        if not d.is_dir():
            raise ScenarioError(f"{meta_file if key in meta else path}: {key}: no directory {d}")
        return d

    nodes_dir, profiles_dir = sub("nodes"), sub("profiles")
    try:
        classes = tuple(load_node_classes(nodes_dir))
    except NodeClassError as exc:
        raise ScenarioError(str(exc)) from exc
    loaded = load_profiles(profiles_dir)
    if loaded.failures:
        raise ScenarioError("; ".join(str(f) for f in loaded.failures))
    truth_file = path / "truth.yaml"
    truth = parse_truth(_yaml(truth_file), truth_file, {c.name for c in classes})
    workload_file = path / "workload.yaml"
    workload = parse_workload(_yaml(workload_file), workload_file, truth)
    name = meta.get("name", path.name)
    return Scenario(
        name=str(name),
        path=path.resolve(),
        description=str(meta.get("description", "")).strip(),
        nodes_dir=nodes_dir,
        profiles_dir=profiles_dir,
        node_classes=classes,
        knowledge_base=loaded.knowledge_base(),
        truth=truth,
        workload=workload,
        time_factor=time_factor,
        horizon_s=horizon,
    )
