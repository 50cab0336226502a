"""The live knowledge base: EnergyProfile events in, an immutable KnowledgeBase out.

An invalid edit of a profile never replaces its last valid version (the
scheduler keeps placing pods with what it knew to be right) and never removes
it; only a delete does. The operator reports the problem on the profile's status.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from energysched.contract import WorkloadType
from energysched.kb.profiles import KnowledgeBase, ProfileSpec
from energysched.kb.validate import ValidationFailure, parse_profile
from energysched.learning.estimate import Learned
from energysched.learning.knowledge import Knowledge, learned_knowledge_base
from energysched.learning.status import learned_from_status


@dataclass
class ProfileBook:
    kb: KnowledgeBase = field(default_factory=KnowledgeBase)
    #: name -> the latest problem of a profile whose last edit was invalid.
    problems: dict[str, str] = field(default_factory=dict)
    #: name -> the object's ``status`` as last seen (the operator's learned figures).
    statuses: dict[str, object] = field(default_factory=dict)

    def set_status(self, name: str, status: object) -> None:
        self.statuses[name] = status

    def upsert(self, obj: Mapping[str, object]) -> ValidationFailure | None:
        """A profile was added or changed. Returns the failure if it is invalid."""
        meta = obj.get("metadata")
        if isinstance(meta, Mapping) and isinstance(meta.get("name"), str):
            self.statuses[meta["name"]] = obj.get("status")
        parsed = parse_profile(obj)
        if isinstance(parsed, ValidationFailure):
            self.problems[parsed.name or "?"] = parsed.message
            return parsed
        self.problems.pop(parsed.name, None)
        self.kb = self.kb.with_profile(parsed)
        return None

    def delete(self, name: str) -> None:
        self.problems.pop(name, None)
        self.statuses.pop(name, None)
        self.kb = self.kb.without(name)

    def valid(self) -> tuple[ProfileSpec, ...]:
        return tuple(self.kb.profiles.values())

    def learned_of(self, name: str) -> Mapping[tuple[str, WorkloadType], Learned]:
        """One valid profile's usable learned figures (empty when none)."""
        profile = self.kb.profiles.get(name)
        if profile is None:
            return {}
        return learned_from_status(profile, self.statuses.get(name))

    def learned(self) -> Mapping[tuple[str, WorkloadType], Learned]:
        """Every valid profile's usable learned figures (stale or garbage blocks skipped)."""
        out: dict[tuple[str, WorkloadType], Learned] = {}
        for name, profile in self.kb.profiles.items():
            out.update(learned_from_status(profile, self.statuses.get(name)))
        return out

    def knowledge_base(self, knowledge: Knowledge, exploration: float = 0.0) -> KnowledgeBase:
        """What the modes read: the spec, or the spec with the learned figures in place."""
        if knowledge == "spec":
            return self.kb
        return learned_knowledge_base(self.kb, self.learned(), exploration)
