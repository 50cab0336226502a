"""What the operator knows and what it should write (pure: no I/O, no clock).

The kopf handlers feed Node and EnergyProfile bodies into :class:`OperatorState`;
:func:`plan` turns the state into the status each profile should have and the
Warning events that are due. The I/O shell (:mod:`energysched.operator.runtime`)
patches only the statuses that differ from what the object already carries and
posts only the warnings whose situation is new, so a resync, a node heartbeat or
a status echo writes nothing.

Semantics shared with the scheduler (so that the status says what the scheduler
does): profiles are kept in a :class:`~energysched.kb.book.ProfileBook`,
so an invalid edit keeps the last valid version in use, and nodes resolve to
profiles through :meth:`KnowledgeBase.resolve` (most specific selector wins, then
the name that sorts first).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from energysched.contract import PROFILE_KIND
from energysched.kb.book import ProfileBook
from energysched.kb.profiles import KnowledgeBase, ProfileSpec
from energysched.kb.validate import ValidationFailure, best_efficiency, parse_profile

CONDITION_VALID: Final = "Valid"
REASON_VALIDATED: Final = "Validated"
REASON_INVALID: Final = "InvalidSpec"
#: Event reasons.
REASON_OVERLAP: Final = "ProfileOverlap"
REASON_NO_PROFILE: Final = "NoEnergyProfile"
#: Nodes named in one event message at most (the rest are counted).
MAX_NAMED_NODES: Final = 5
#: The CRD's limit on a condition message.
MAX_CONDITION_MESSAGE: Final = 32768

ObjectKind = Literal["Node", "EnergyProfile"]


@dataclass(frozen=True, slots=True)
class NodeFacts:
    """What of a node decides which profile it gets and whether it must have one."""

    name: str
    uid: str
    labels: Mapping[str, str]
    ready: bool


@dataclass(frozen=True, slots=True)
class ProfileRecord:
    """An EnergyProfile as last seen: identity, generation, its status, its validity."""

    name: str
    uid: str
    generation: int
    status: Mapping[str, Any]
    #: Why the current generation is invalid; None when it is valid.
    failure: ValidationFailure | None


@dataclass(frozen=True, slots=True)
class EventSpec:
    """A Warning event to post about one object."""

    kind: ObjectKind
    name: str
    uid: str
    reason: str
    message: str


@dataclass(frozen=True, slots=True)
class Plan:
    #: profile name -> the complete status it should carry (only those that differ).
    patches: Mapping[str, Mapping[str, Any]]
    warnings: tuple[EventSpec, ...]
    #: node name -> profile name (None: no profile), for logs and tests.
    assignments: Mapping[str, str | None]


def _metadata(body: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = body.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


def is_ready(body: Mapping[str, Any]) -> bool:
    """Whether the Node's Ready condition is True."""
    status = body.get("status")
    conditions = status.get("conditions") if isinstance(status, Mapping) else None
    if not isinstance(conditions, list):
        return False
    return any(
        isinstance(c, Mapping) and c.get("type") == "Ready" and c.get("status") == "True"
        for c in conditions
    )


def node_facts(body: Mapping[str, Any]) -> NodeFacts | None:
    meta = _metadata(body)
    name = meta.get("name")
    if not isinstance(name, str) or not name:
        return None
    labels = meta.get("labels")
    clean = {str(k): str(v) for k, v in labels.items()} if isinstance(labels, Mapping) else {}
    return NodeFacts(name, str(meta.get("uid") or ""), clean, is_ready(body))


@dataclass
class OperatorState:
    """Profiles and nodes as last seen; every method returns whether anything changed."""

    book: ProfileBook = field(default_factory=ProfileBook)
    profiles: dict[str, ProfileRecord] = field(default_factory=dict)
    nodes: dict[str, NodeFacts] = field(default_factory=dict)

    @property
    def kb(self) -> KnowledgeBase:
        """The profiles in use: the last valid version of each."""
        return self.book.kb

    def upsert_profile(self, body: Mapping[str, Any]) -> bool:
        meta = _metadata(body)
        name = meta.get("name")
        if not isinstance(name, str) or not name:
            return False
        generation = meta.get("generation")
        status = body.get("status")
        before_kb = self.book.kb.profiles.get(name)
        parsed = parse_profile(body)
        failure = parsed if isinstance(parsed, ValidationFailure) else None
        self.book.upsert(body)
        record = ProfileRecord(
            name=name,
            uid=str(meta.get("uid") or ""),
            generation=generation if isinstance(generation, int) else 0,
            status=dict(status) if isinstance(status, Mapping) else {},
            failure=failure,
        )
        old = self.profiles.get(name)
        self.profiles[name] = record
        return old != record or before_kb != self.book.kb.profiles.get(name)

    def delete_profile(self, name: str) -> bool:
        existed = self.profiles.pop(name, None) is not None
        in_use = name in self.book.kb.profiles
        self.book.delete(name)
        return existed or in_use

    def record_status(self, name: str, status: Mapping[str, Any]) -> None:
        """The status the API server returned after our patch."""
        old = self.profiles.get(name)
        if old is not None:
            self.profiles[name] = ProfileRecord(
                old.name, old.uid, old.generation, dict(status), old.failure
            )

    def upsert_node(self, body: Mapping[str, Any]) -> bool:
        facts = node_facts(body)
        if facts is None:
            return False
        if self.nodes.get(facts.name) == facts:
            return False  # heartbeats, readings, allocatable: nothing of ours changed
        self.nodes[facts.name] = facts
        return True

    def delete_node(self, name: str) -> bool:
        return self.nodes.pop(name, None) is not None

    def replace_all(
        self, profiles: Iterable[Mapping[str, Any]], nodes: Iterable[Mapping[str, Any]]
    ) -> None:
        """Seed from a full LIST (start-up); objects not in it are forgotten."""
        self.book = ProfileBook()
        self.profiles.clear()
        self.nodes.clear()
        for body in profiles:
            self.upsert_profile(body)
        for body in nodes:
            self.upsert_node(body)


# -- desired status ----------------------------------------------------------------------


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _condition(record: ProfileRecord, in_use: ProfileSpec | None) -> dict[str, Any]:
    if record.failure is None:
        return {
            "type": CONDITION_VALID,
            "status": "True",
            "reason": REASON_VALIDATED,
            "message": "The profile is valid; the energy-scheduler uses it.",
            "observedGeneration": record.generation,
        }
    if in_use is not None:
        consequence = (
            f"The energy-scheduler ignores this edit and keeps using the last valid version "
            f"(generation {in_use.generation})."
        )
    else:
        consequence = "The energy-scheduler does not use this profile."
    return {
        "type": CONDITION_VALID,
        "status": "False",
        "reason": REASON_INVALID,
        "message": _clip(f"{record.failure.message}\n{consequence}", MAX_CONDITION_MESSAGE),
        "observedGeneration": record.generation,
    }


def desired_status(
    record: ProfileRecord, in_use: ProfileSpec | None, matched: Iterable[str], now: str
) -> dict[str, Any]:
    """The complete status of one profile; ``now`` is used only when Valid flips."""
    condition = _condition(record, in_use)
    previous = _valid_condition(record.status)
    if previous is not None and previous.get("status") == condition["status"]:
        condition["lastTransitionTime"] = previous.get("lastTransitionTime") or now
    else:
        condition["lastTransitionTime"] = now
    nodes = sorted(matched)
    efficiency = best_efficiency(in_use) if in_use is not None else None
    return {
        "observedGeneration": record.generation,
        "matchedNodes": nodes,
        "matchedNodeCount": len(nodes),
        "bestEfficiency": efficiency,
        "conditions": [condition],
    }


def _valid_condition(status: Mapping[str, Any]) -> Mapping[str, Any] | None:
    conditions = status.get("conditions")
    if not isinstance(conditions, list):
        return None
    for c in conditions:
        if isinstance(c, Mapping) and c.get("type") == CONDITION_VALID:
            return c
    return None


def _number_equal(a: object, b: object) -> bool:
    if isinstance(a, int | float) and isinstance(b, int | float):
        return abs(float(a) - float(b)) <= 1e-9 * max(1.0, abs(float(a)))
    return a == b


def status_matches(current: Mapping[str, Any], desired: Mapping[str, Any]) -> bool:
    """Whether ``current`` already says what ``desired`` says (nothing to patch)."""
    for key in ("observedGeneration", "matchedNodes", "matchedNodeCount"):
        if current.get(key) != desired.get(key):
            return False
    if not _number_equal(current.get("bestEfficiency"), desired.get("bestEfficiency")):
        return False
    if "learned" in desired and current.get("learned") != desired["learned"]:
        return False
    conditions = current.get("conditions")
    if not isinstance(conditions, list) or len(conditions) != len(desired["conditions"]):
        return False
    return all(
        isinstance(have, Mapping) and all(have.get(k) == v for k, v in want.items())
        for have, want in zip(conditions, desired["conditions"], strict=True)
    )


# -- warnings ------------------------------------------------------------------------------


@dataclass
class WarningMemory:
    """The situations already warned about, so each is reported once per change.

    Kept in memory: after a restart each standing situation is reported once again.
    """

    node_overlaps: dict[str, tuple[str, tuple[str, ...]]] = field(default_factory=dict)
    profile_overlaps: dict[str, frozenset[tuple[str, str]]] = field(default_factory=dict)
    unmatched: set[str] = field(default_factory=set)
    invalid: dict[str, int] = field(default_factory=dict)  # profile -> generation warned


def _why(winner: ProfileSpec, loser: ProfileSpec) -> str:
    w, lo = len(winner.node_selector), len(loser.node_selector)
    if w != lo:
        return f"its nodeSelector has more labels ({w} vs {lo})"
    return f"both nodeSelectors have {w} label(s) and {winner.name!r} sorts first by name"


def _some(nodes: Iterable[str]) -> str:
    names = sorted(nodes)
    shown = ", ".join(names[:MAX_NAMED_NODES])
    more = len(names) - MAX_NAMED_NODES
    return shown + (f" and {more} more" if more > 0 else "")


def _selector_text(labels: Mapping[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(labels.items())) or "no labels"


def plan(
    state: OperatorState,
    memory: WarningMemory,
    now: str,
    learned: Mapping[str, Mapping[str, Any] | None] | None = None,
) -> Plan:
    """Statuses to patch and warnings to post; updates ``memory`` with what is reported.

    ``learned``: each profile's ``status.learned`` (None: nothing learned, or reset by a
    spec change: the key is removed); None: learning is off, the key is left alone.
    """
    kb = state.kb
    matched: dict[str, list[str]] = {name: [] for name in state.profiles}
    assignments: dict[str, str | None] = {}
    overlaps: dict[str, tuple[str, tuple[str, ...]]] = {}
    unmatched_ready: dict[str, NodeFacts] = {}
    for node in state.nodes.values():
        resolution = kb.resolve(node.labels)
        if resolution is None:
            assignments[node.name] = None
            if node.ready:
                unmatched_ready[node.name] = node
            continue
        winner = resolution.profile.name
        assignments[node.name] = winner
        matched.setdefault(winner, []).append(node.name)
        if resolution.also_matched:
            overlaps[node.name] = (winner, resolution.also_matched)

    patches: dict[str, dict[str, Any]] = {}
    for name, record in state.profiles.items():
        desired = desired_status(record, kb.profiles.get(name), matched.get(name, ()), now)
        if learned is not None:
            desired["learned"] = learned.get(name)
        if not status_matches(record.status, desired):
            patches[name] = desired

    warnings: list[EventSpec] = []
    warnings.extend(_invalid_warnings(state, memory))
    warnings.extend(_node_overlap_warnings(state, overlaps, memory))
    warnings.extend(_profile_overlap_warnings(state, overlaps, memory))
    for name in sorted(unmatched_ready):
        if name in memory.unmatched:
            continue
        node = unmatched_ready[name]
        memory.unmatched.add(name)
        warnings.append(
            EventSpec(
                "Node",
                name,
                node.uid,
                REASON_NO_PROFILE,
                f"No valid EnergyProfile matches node {name} (labels: "
                f"{_selector_text(node.labels)}). The energy-scheduler has no figures for it: "
                "it ranks the node after every node that has some and picks it only when none "
                "of those fits. Add an EnergyProfile whose nodeSelector matches this node.",
            )
        )
    memory.unmatched &= set(unmatched_ready)
    return Plan(patches, tuple(warnings), assignments)


def _invalid_warnings(state: OperatorState, memory: WarningMemory) -> list[EventSpec]:
    out = []
    for name in sorted(state.profiles):
        record = state.profiles[name]
        if record.failure is None:
            memory.invalid.pop(name, None)
            continue
        if memory.invalid.get(name) == record.generation:
            continue
        memory.invalid[name] = record.generation
        in_use = state.kb.profiles.get(name)
        keep = (
            f"; the energy-scheduler keeps using generation {in_use.generation}"
            if in_use is not None
            else "; the energy-scheduler does not use it"
        )
        out.append(
            EventSpec(
                PROFILE_KIND,
                name,
                record.uid,
                REASON_INVALID,
                f"generation {record.generation} is invalid: "
                + "; ".join(str(e) for e in record.failure.errors)
                + keep,
            )
        )
    for name in list(memory.invalid):
        if name not in state.profiles:
            del memory.invalid[name]
    return out


def _node_overlap_warnings(
    state: OperatorState,
    overlaps: Mapping[str, tuple[str, tuple[str, ...]]],
    memory: WarningMemory,
) -> list[EventSpec]:
    kb = state.kb
    out = []
    for node_name in sorted(overlaps):
        situation = overlaps[node_name]
        if memory.node_overlaps.get(node_name) == situation:
            continue
        memory.node_overlaps[node_name] = situation
        winner, others = situation
        w = kb.profiles[winner]
        reasons = "; ".join(f"over {o!r}: {_why(w, kb.profiles[o])}" for o in others)
        out.append(
            EventSpec(
                "Node",
                node_name,
                state.nodes[node_name].uid,
                REASON_OVERLAP,
                f"Node {node_name} is matched by EnergyProfiles "
                f"{', '.join(sorted((winner, *others)))}; {winner!r} wins ({reasons}). "
                f"The energy-scheduler uses {winner!r} for this node.",
            )
        )
    for node_name in list(memory.node_overlaps):
        if node_name not in overlaps:
            del memory.node_overlaps[node_name]
    return out


def _profile_overlap_warnings(
    state: OperatorState,
    overlaps: Mapping[str, tuple[str, tuple[str, ...]]],
    memory: WarningMemory,
) -> list[EventSpec]:
    kb = state.kb
    # profile -> (other profile, winner) -> nodes
    pairs: dict[str, dict[tuple[str, str], list[str]]] = {}
    for node_name, (winner, others) in overlaps.items():
        involved = (winner, *others)
        for p in involved:
            for q in involved:
                if p != q:
                    pairs.setdefault(p, {}).setdefault((q, winner), []).append(node_name)
    out = []
    for name in sorted(pairs):
        key = frozenset(pairs[name])
        if memory.profile_overlaps.get(name) == key:
            continue
        memory.profile_overlaps[name] = key
        record = state.profiles.get(name)
        parts = []
        for (other, winner), nodes in sorted(pairs[name].items()):
            loser = other if winner == name else name
            parts.append(
                f"{name!r} and {other!r} both match node(s) {_some(nodes)}; {winner!r} wins "
                f"there ({_why(kb.profiles[winner], kb.profiles[loser])})"
            )
        out.append(
            EventSpec(
                PROFILE_KIND,
                name,
                record.uid if record is not None else "",
                REASON_OVERLAP,
                "; ".join(parts) + ".",
            )
        )
    for name in list(memory.profile_overlaps):
        if name not in pairs:
            del memory.profile_overlaps[name]
    return out
