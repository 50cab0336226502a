"""Reading EnergyProfiles from files and writing them back as manifests.

A knowledge base on disk is a directory of YAML files (``kb/profiles/``) or one
multi-document YAML file; ``kubectl get energyprofiles -o yaml`` output (a ``List`` with
``items``) works too. Bad documents are reported and skipped, good ones kept:
one typo must not take the whole knowledge base down.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from energysched.contract import API_VERSION, PROFILE_KIND, WORKLOAD_TYPES
from energysched.kb.profiles import KnowledgeBase, ProfileSpec
from energysched.kb.validate import ValidationFailure, parse_profile
from energysched.strict import Problem

YAML_SUFFIXES = (".yaml", ".yml")
#: The repository's kb/ folder (node classes and thesis profiles), found relative to
#: the package in a source checkout.
REPO_KB_DIR = Path(__file__).resolve().parents[2] / "kb"


@dataclass(frozen=True, slots=True)
class LoadFailure:
    """A document that could not be used, and where it came from ("file.yaml#2")."""

    origin: str
    failure: ValidationFailure

    def __str__(self) -> str:
        return f"{self.origin}: {self.failure}"


@dataclass(frozen=True, slots=True)
class LoadResult:
    profiles: tuple[ProfileSpec, ...] = ()
    failures: tuple[LoadFailure, ...] = ()
    #: Where each profile came from, by name.
    origins: Mapping[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failures

    def knowledge_base(self) -> KnowledgeBase:
        return KnowledgeBase.of(self.profiles)


def _failure(origin: str, name: str, path: str, message: str) -> LoadFailure:
    return LoadFailure(origin, ValidationFailure(name, (Problem(path, message),)))


def _documents(origin: str, docs: Iterable[object]) -> Iterator[tuple[str, object]]:
    """Flatten ``List`` objects; yield (origin, document), skipping empty documents."""
    for index, doc in enumerate(docs, start=1):
        if doc is None:
            continue
        where = f"{origin}#{index}"
        items = doc.get("items") if isinstance(doc, Mapping) else None
        kind = doc.get("kind") if isinstance(doc, Mapping) else None
        if isinstance(kind, str) and kind.endswith("List") and isinstance(items, list):
            for i, item in enumerate(items):
                yield f"{where}.items[{i}]", item
        else:
            yield where, doc


def load_objects(objects: Iterable[tuple[str, object]]) -> LoadResult:
    """Validate (origin, object) pairs; duplicates by name are reported, the first kept."""
    profiles: list[ProfileSpec] = []
    failures: list[LoadFailure] = []
    origins: dict[str, str] = {}
    for origin, obj in objects:
        if not isinstance(obj, Mapping):
            failures.append(_failure(origin, "", "", f"is a {type(obj).__name__}, not an object"))
            continue
        result = parse_profile(obj)
        if isinstance(result, ValidationFailure):
            failures.append(LoadFailure(origin, result))
            continue
        if result.name in origins:
            failures.append(
                _failure(
                    origin,
                    result.name,
                    "metadata.name",
                    f"{result.name!r} is already defined in {origins[result.name]}; "
                    "names must be unique (the first is kept)",
                )
            )
            continue
        origins[result.name] = origin
        profiles.append(result)
    return LoadResult(tuple(profiles), tuple(failures), origins)


def _yaml_documents(path: Path) -> tuple[list[tuple[str, object]], LoadFailure | None]:
    """All documents of a YAML file up to the first syntax error (which is reported)."""
    docs: list[object] = []
    try:
        with path.open(encoding="utf-8") as stream:
            for doc in yaml.safe_load_all(stream):
                docs.append(doc)
    except OSError as exc:
        return [], _failure(str(path), "", "", f"cannot be read: {exc.strerror or exc}")
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        reason = f"not valid YAML: {exc}"
    except RecursionError:  # PyYAML composes nested nodes recursively
        reason = "not usable YAML: nested too deeply"
    except (ValueError, TypeError, OverflowError) as exc:
        # e.g. an integer of more than 4,300 digits (Python's int() limit), a bad date
        reason = f"not usable YAML: {exc}"
    else:
        return list(_documents(str(path), docs)), None
    where = f"{path}#{len(docs) + 1}"
    reason = " ".join(reason.split())
    return list(_documents(str(path), docs)), _failure(where, "", "", reason)


def profile_files(path: Path) -> list[Path]:
    """The YAML files of a directory (recursively, sorted), or the file itself."""
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.suffix in YAML_SUFFIXES and p.is_file())
    return [path]


def load_profiles(*paths: Path) -> LoadResult:
    """Load EnergyProfiles from directories and/or (multi-document) YAML files.

    Good documents are kept, bad ones reported in ``failures`` with their origin
    ("kb/profiles/wyse.yaml#1") and every validation error.
    """
    objects: list[tuple[str, object]] = []
    syntax: list[LoadFailure] = []
    for path in paths:
        if not path.exists():
            syntax.append(_failure(str(path), "", "", "does not exist"))
            continue
        for file in profile_files(path):
            docs, failure = _yaml_documents(file)
            objects.extend(docs)
            if failure is not None:
                syntax.append(failure)
    result = load_objects(objects)
    return LoadResult(result.profiles, result.failures + tuple(syntax), result.origins)


def _number(value: float) -> float | int:
    return int(value) if value.is_integer() else value


def dump_profile(spec: ProfileSpec, *, labels: Mapping[str, str] | None = None) -> dict[str, Any]:
    """An EnergyProfile manifest for ``spec`` (round-trips through :func:`parse_profile`)."""
    workloads: dict[str, dict[str, Any]] = {}
    for wtype in WORKLOAD_TYPES:
        figures = spec.workloads.get(wtype)
        if figures is None:
            continue
        entry: dict[str, Any] = {
            "performance": _number(figures.performance),
            "powerWatts": _number(figures.power_watts),
        }
        if figures.unit:
            entry["unit"] = figures.unit
        if figures.source is not None:
            entry["source"] = figures.source
        if figures.provenance:
            entry["provenance"] = figures.provenance
        workloads[wtype] = entry
    body: dict[str, Any] = {
        "nodeSelector": dict(spec.node_selector),
        "idlePowerWatts": _number(spec.idle_power_watts),
    }
    if spec.max_power_watts is not None:
        body["maxPowerWatts"] = _number(spec.max_power_watts)
    body["workloads"] = workloads
    if spec.power_states is not None:
        ps = spec.power_states
        states: dict[str, Any] = {
            "sleepWatts": _number(ps.sleep_watts),
            "sleepKind": ps.sleep_kind,
            "suspendSeconds": _number(ps.suspend_seconds),
            "wakeSeconds": _number(ps.wake_seconds),
            "wakeJoules": _number(ps.wake_joules),
        }
        if ps.source is not None:
            states["source"] = ps.source
        if ps.provenance:
            states["provenance"] = ps.provenance
        body["powerStates"] = states
    if spec.provenance:
        body["provenance"] = spec.provenance
    metadata: dict[str, Any] = {"name": spec.name}
    if labels:
        metadata["labels"] = dict(labels)
    return {"apiVersion": API_VERSION, "kind": PROFILE_KIND, "metadata": metadata, "spec": body}


def dump_yaml(manifests: Iterable[Mapping[str, Any]]) -> str:
    """Manifests as a multi-document YAML string, keys in manifest order."""
    return yaml.safe_dump_all(
        [dict(m) for m in manifests], sort_keys=False, default_flow_style=False, width=100
    )
