"""Turn bench result documents into EnergyProfile manifests.

Performance is always the measured median. Power is ``source: measured`` only
where the bench measured it at the wall. Where it did not, nothing is invented:
power figures are taken from an existing profile (``--power-from``) and the
figures are marked ``estimated`` with a provenance that says so, or the
conversion is refused with the reason.

Usage::

    python -m energysched.kbtools.convert tvpc.json wyse.log \\
        [--power-from kb/profiles] [-o out.yaml]

A result file is either the JSON document or a pod log holding it between markers.
This module runs where the energysched package is installed (not in the bench image).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from energysched.contract import API_VERSION, PROFILE_KIND, WORKLOAD_TYPES
from energysched.kb.io import dump_profile, dump_yaml, load_profiles
from energysched.kb.profiles import KnowledgeBase, ProfileSpec, WorkloadFigures
from energysched.kb.validate import ValidationFailure, parse_profile
from energysched.kbtools.bench_job import HOSTNAME_LABEL
from energysched_bench.kernels import STANDARD
from energysched_bench.result import SCHEMA, ResultNotFound, extract_results
from energysched_bench.runner import busy_warning

_PROVENANCE_MAX = 4000


class ConversionError(ValueError):
    """A result that cannot become a profile without inventing figures."""


def _clip(text: str) -> str:
    return text if len(text) <= _PROVENANCE_MAX else text[: _PROVENANCE_MAX - 3] + "..."


def _profile_name(node: str) -> str:
    name = re.sub(r"[^a-z0-9.-]+", "-", node.lower()).strip("-.")
    return name[:253] or "node"


def _pick_kernel(
    doc: Mapping[str, Any], workload: str, gpu_for: frozenset[str]
) -> Mapping[str, Any] | None:
    kernels = [
        k
        for k in doc.get("kernels", [])
        if isinstance(k, Mapping) and k.get("workload") == workload and k.get("available")
    ]
    by_device = {k.get("device"): k for k in kernels}
    if workload in gpu_for and "gpu" in by_device:
        return by_device["gpu"]
    return by_device.get("cpu")


def _power_profile(kb: KnowledgeBase | None, node: str) -> ProfileSpec | None:
    if kb is None:
        return None
    resolution = kb.resolve({HOSTNAME_LABEL: node})
    if resolution is not None:
        return resolution.profile
    return kb.profiles.get(_profile_name(node))


def _describe_source(figures: WorkloadFigures) -> str:
    return figures.source or "source not stated"


def convert_result(
    doc: Mapping[str, Any],
    *,
    power_from: KnowledgeBase | None = None,
    gpu_for: Iterable[str] = ("training",),
    allow_nonstandard: bool = False,
    accept_package_power: bool = False,
) -> dict[str, Any]:
    """One EnergyProfile manifest from one node's result document.

    Raises :class:`ConversionError` when power was not measured and no
    ``power_from`` profile covers the node, when the kernels ran with
    non-standard sizes (not comparable with other nodes) unless
    ``allow_nonstandard``, when power is CPU-package (RAPL) power unless
    ``accept_package_power``, or when the result fails validation.
    """
    if doc.get("schema") != SCHEMA:
        raise ConversionError(f"not an energysched-bench result (schema {doc.get('schema')!r})")
    node = str(doc.get("node") or "")
    if not node:
        raise ConversionError("the result names no node")
    who = f"node {node}"
    if not doc.get("standard_config") and not allow_nonstandard:
        raise ConversionError(
            f"{who}: kernels ran with non-standard sizes ({doc.get('config')}); their figures are "
            f"not comparable with other nodes (standard: {STANDARD.as_dict()}). "
            "Re-run with the standard sizes, or pass --allow-nonstandard"
        )
    scope = doc.get("power_scope")
    source_name = doc.get("power_source")
    package_power = scope is not None and scope != "wall"
    if package_power and not accept_package_power:
        raise ConversionError(
            f"{who}: power was measured by {source_name} with scope {scope!r}, not at the wall; "
            "profiles hold wall power. Use --power-from to take wall power from an existing "
            "profile, or --accept-package-power to use it anyway (provenance will say so)"
        )
    gpu = frozenset(gpu_for)
    fallback = _power_profile(power_from, node)
    started = doc.get("started_at", "?")
    machine = (
        f"{doc.get('cpu_model') or '?'}, {doc.get('arch')}, avx {'yes' if doc.get('avx') else 'no'}"
        + (f", gpu {doc['gpu']}" if doc.get("gpu") else "")
        + f", python {doc.get('python')}, numpy {doc.get('numpy')}"
    )
    scope_note = (
        " (CPU package only, NOT wall power: underestimates the node)" if package_power else ""
    )

    workloads: dict[str, dict[str, Any]] = {}
    missing_power: list[str] = []
    for wtype in WORKLOAD_TYPES:
        kernel = _pick_kernel(doc, wtype, gpu)
        if kernel is None:
            continue
        s = kernel["spread"]
        perf_note = (
            f"performance measured by energysched_bench on {node} at {started}: "
            f"{kernel['name']}, {kernel['config']}; median of {kernel['repeats']} repeats "
            f"(IQR {s['q1']:.4g}..{s['q3']:.4g}, range {s['min']:.4g}..{s['max']:.4g} "
            f"{kernel['unit']})"
        )
        entry: dict[str, Any] = {"performance": float(kernel["median"]), "unit": kernel["unit"]}
        watts = kernel.get("watts")
        if watts is not None:
            entry.update(
                powerWatts=float(watts),
                source="measured",
                provenance=_clip(
                    f"{perf_note}; powerWatts measured by {kernel.get('power_source')} "
                    f"({kernel.get('power_scope')}){scope_note}, average over the timed run"
                    + (
                        f", sample coverage {kernel['power_coverage']:.0%}"
                        if kernel.get("power_coverage") is not None
                        else ""
                    )
                ),
            )
        elif fallback is not None and wtype in fallback.workloads:
            figures = fallback.workloads[wtype]
            entry.update(
                powerWatts=figures.power_watts,
                source="estimated",
                provenance=_clip(
                    f"{perf_note}; powerWatts NOT measured (no power source in the run): "
                    f"taken from profile {fallback.name} ({_describe_source(figures)}"
                    + (f": {figures.provenance}" if figures.provenance else "")
                    + ")"
                ),
            )
        else:
            missing_power.append(wtype)
            continue
        workloads[wtype] = entry
    if missing_power:
        where = (
            f"profile {fallback.name} has no figures for {', '.join(missing_power)}"
            if fallback is not None
            else "no --power-from profile matches this node"
        )
        raise ConversionError(
            f"{who}: power was not measured for {', '.join(missing_power)} "
            f"(power source: {source_name or 'none'}) and {where}; refusing to invent power "
            "figures. Run the bench with a power source (--power shelly --shelly-url ...), or "
            "pass --power-from with a profile for this node"
        )
    if not workloads:
        raise ConversionError(f"{who}: the result holds no available kernel")

    idle = doc.get("idle")
    if isinstance(idle, Mapping) and idle.get("watts") is not None:
        idle_watts = float(idle["watts"])
        idle_note = (
            f"idlePowerWatts measured by {source_name} ({scope}){scope_note} "
            f"over {float(idle.get('seconds', 0)):.0f} s before the kernels"
        )
    elif fallback is not None:
        idle_watts = fallback.idle_power_watts
        idle_note = f"idlePowerWatts NOT measured: taken from profile {fallback.name}"
    else:
        raise ConversionError(
            f"{who}: idle power was not measured (power source: {source_name or 'none'}) and no "
            "--power-from profile matches this node; refusing to invent an idle power figure"
        )
    manifest: dict[str, Any] = {
        "apiVersion": API_VERSION,
        "kind": PROFILE_KIND,
        "metadata": {"name": _profile_name(node)},
        "spec": {
            "nodeSelector": {HOSTNAME_LABEL: node},
            "idlePowerWatts": idle_watts,
            "workloads": workloads,
            "provenance": _clip(
                f"generated by energysched.kbtools.convert from the bench result of {node} "
                f"({machine}) started {started}; {idle_note}"
                + (f"; {busy}" if (busy := busy_warning(dict(doc))) else "")
            ),
        },
    }
    parsed = parse_profile(manifest)
    if isinstance(parsed, ValidationFailure):
        raise ConversionError(f"{who}: the converted profile is invalid: {parsed.message}")
    return dump_profile(parsed)


def convert_results(docs: Iterable[Mapping[str, Any]], **kwargs: Any) -> list[dict[str, Any]]:
    """Convert several results; the first failure raises (naming its node)."""
    return [convert_result(doc, **kwargs) for doc in docs]


def read_results(path: Path) -> list[dict[str, Any]]:
    """Result documents from a JSON file or from a pod log (marker lines)."""
    text = path.read_text(encoding="utf-8", errors="replace")
    try:
        doc = json.loads(text)
    except json.JSONDecodeError:
        return extract_results(text)
    if isinstance(doc, dict) and doc.get("schema") == SCHEMA:
        return [doc]
    if isinstance(doc, list):
        return [d for d in doc if isinstance(d, dict) and d.get("schema") == SCHEMA]
    return []


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m energysched.kbtools.convert",
        description="Turn energysched-bench results into EnergyProfile manifests.",
    )
    p.add_argument("results", nargs="+", type=Path, help="result JSON files or pod logs")
    p.add_argument(
        "--power-from",
        action="append",
        type=Path,
        default=[],
        help="profile file or directory whose power figures fill in where power "
        "was not measured (marked estimated)",
    )
    p.add_argument(
        "--gpu-for",
        default="training",
        help="workloads whose GPU figures are used when available (comma list, "
        "or 'none'; default %(default)s)",
    )
    p.add_argument(
        "--allow-nonstandard",
        action="store_true",
        help="accept results of non-standard kernel sizes",
    )
    p.add_argument(
        "--accept-package-power",
        action="store_true",
        help="accept RAPL CPU-package power as powerWatts (marked in provenance)",
    )
    p.add_argument("-o", "--output", type=Path, help="write the manifests here (default stdout)")
    args = p.parse_args(argv)

    power_from: KnowledgeBase | None = None
    if args.power_from:
        loaded = load_profiles(*args.power_from)
        for failure in loaded.failures:
            print(f"warning: --power-from {failure}", file=sys.stderr)
        power_from = loaded.knowledge_base()
    docs: list[dict[str, Any]] = []
    for path in args.results:
        try:
            found = read_results(path)
        except (OSError, ResultNotFound) as exc:
            print(f"{path}: {exc}", file=sys.stderr)
            return 1
        if not found:
            print(f"{path}: no energysched-bench result document in it", file=sys.stderr)
            return 1
        docs.extend(found)
    gpu_for = (
        ()
        if args.gpu_for == "none"
        else tuple(w.strip() for w in args.gpu_for.split(",") if w.strip())
    )
    try:
        manifests = convert_results(
            docs,
            power_from=power_from,
            gpu_for=gpu_for,
            allow_nonstandard=args.allow_nonstandard,
            accept_package_power=args.accept_package_power,
        )
    except ConversionError as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 1
    text = dump_yaml(manifests)
    if args.output:
        args.output.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
