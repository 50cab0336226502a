"""``energysched kb show``: which profile each node got, and its figures (pure).

The table has one row per node and workload type. A node that no profile
matches says so ("none") instead of showing zeros: no data must never look like
good data.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from energysched.contract import WORKLOAD_TYPES, WorkloadType
from energysched.kb.profiles import KnowledgeBase

NO_PROFILE = "none"
HOSTNAME_LABEL = "kubernetes.io/hostname"


@dataclass(frozen=True, slots=True)
class NodeRef:
    """What ``kb show`` needs of a node."""

    name: str
    labels: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class Row:
    node: str
    workload: WorkloadType
    profile: str  # NO_PROFILE when no profile matched
    also_matched: tuple[str, ...]
    performance: float | None
    unit: str
    power_watts: float | None
    efficiency: float | None  # work units per joule
    source: str  # "measured", "estimated", "" (unknown) or "-" (no figures)
    note: str  # why figures are missing, "" otherwise

    def as_dict(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "workload": self.workload,
            "profile": None if self.profile == NO_PROFILE else self.profile,
            "alsoMatched": list(self.also_matched),
            "performance": self.performance,
            "unit": self.unit or None,
            "powerWatts": self.power_watts,
            "efficiency": self.efficiency,
            "source": self.source if self.source not in ("", "-") else None,
            "note": self.note or None,
        }


def nodes_from_objects(objects: Iterable[Mapping[str, Any]]) -> list[NodeRef]:
    """NodeRefs from Node objects (``metadata.name``/``metadata.labels``, as listed from the
    cluster) or from offline node descriptions (``name``/``labels``, as in kb/nodes/).

    An offline description gets ``kubernetes.io/hostname: <name>`` when it lacks it, as the
    kubelet sets it on every real node; a Node object is taken as it is, so that the table
    resolves exactly the labels the scheduler sees. Objects without a name are skipped.
    """
    nodes = []
    for obj in objects:
        metadata = obj.get("metadata")
        if isinstance(metadata, Mapping):
            name, labels, offline = metadata.get("name"), metadata.get("labels"), False
        else:
            name, labels, offline = obj.get("name"), obj.get("labels"), True
        if not isinstance(name, str) or not name:
            continue
        clean = {str(k): str(v) for k, v in labels.items()} if isinstance(labels, Mapping) else {}
        if offline:
            clean.setdefault(HOSTNAME_LABEL, name)
        nodes.append(NodeRef(name, clean))
    return nodes


def kb_table(
    nodes: Iterable[NodeRef],
    kb: KnowledgeBase,
    workloads: Sequence[WorkloadType] = WORKLOAD_TYPES,
) -> list[Row]:
    """Rows per node and workload type, nodes sorted by name, workloads in contract order."""
    rows: list[Row] = []
    for node in sorted(nodes, key=lambda n: n.name):
        resolution = kb.resolve(node.labels)
        for wtype in workloads:
            if resolution is None:
                rows.append(
                    Row(
                        node.name,
                        wtype,
                        NO_PROFILE,
                        (),
                        None,
                        "",
                        None,
                        None,
                        "-",
                        "no profile matches this node's labels",
                    )
                )
                continue
            profile = resolution.profile
            figures = profile.workloads.get(wtype)
            if figures is None:
                rows.append(
                    Row(
                        node.name,
                        wtype,
                        profile.name,
                        resolution.also_matched,
                        None,
                        "",
                        None,
                        None,
                        "-",
                        f"profile {profile.name} has no {wtype} figures",
                    )
                )
                continue
            rows.append(
                Row(
                    node.name,
                    wtype,
                    profile.name,
                    resolution.also_matched,
                    figures.performance,
                    figures.unit,
                    figures.power_watts,
                    figures.efficiency,
                    figures.source or "",
                    "",
                )
            )
    return rows


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if value == 0 or not math.isfinite(value):
        return f"{value:g}"
    magnitude = math.floor(math.log10(abs(value)))
    decimals = max(0, 2 - magnitude)  # three significant digits, no exponent
    return f"{value:,.{decimals}f}"


HEADER = (
    "NODE",
    "WORKLOAD",
    "PERFORMANCE",
    "UNIT",
    "POWER W",
    "EFFICIENCY /J",
    "SOURCE",
    "PROFILE",
    "ALSO MATCHED",
)


def render_table(rows: Sequence[Row]) -> str:
    """A plain-text table in the style of ``kubectl get`` (columns padded, no borders)."""
    lines: list[tuple[str, ...]] = [HEADER]
    for r in rows:
        lines.append(
            (
                r.node,
                r.workload,
                _fmt(r.performance),
                r.unit or "-",
                _fmt(r.power_watts),
                _fmt(r.efficiency),
                r.source or "?",
                r.profile,
                ",".join(r.also_matched) or "-",
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(HEADER))]
    numeric = {2, 4, 5}
    out = []
    for line in lines:
        header = line is lines[0]
        cells = [
            cell.rjust(widths[i]) if i in numeric and not header else cell.ljust(widths[i])
            for i, cell in enumerate(line)
        ]
        out.append("   ".join(cells).rstrip())
    return "\n".join(out)


def show(nodes: Iterable[NodeRef], kb: KnowledgeBase) -> str:
    """The text ``energysched kb show`` prints."""
    rows = kb_table(nodes, kb)
    if not rows:
        return "no nodes"
    return render_table(rows)
