"""The live knowledge base: EnergyProfile events in, an immutable KnowledgeBase out.

An invalid edit of a profile never replaces its last valid version (the
scheduler keeps placing pods with what it knew to be right) and never removes
it; only a delete does. The operator reports the problem on the profile's status.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from energysched.kb.profiles import KnowledgeBase, ProfileSpec
from energysched.kb.validate import ValidationFailure, parse_profile


@dataclass
class ProfileBook:
    kb: KnowledgeBase = field(default_factory=KnowledgeBase)
    #: name -> the latest problem of a profile whose last edit was invalid.
    problems: dict[str, str] = field(default_factory=dict)

    def upsert(self, obj: Mapping[str, object]) -> ValidationFailure | None:
        """A profile was added or changed. Returns the failure if it is invalid."""
        parsed = parse_profile(obj)
        if isinstance(parsed, ValidationFailure):
            self.problems[parsed.name or "?"] = parsed.message
            return parsed
        self.problems.pop(parsed.name, None)
        self.kb = self.kb.with_profile(parsed)
        return None

    def delete(self, name: str) -> None:
        self.problems.pop(name, None)
        self.kb = self.kb.without(name)

    def valid(self) -> tuple[ProfileSpec, ...]:
        return tuple(self.kb.profiles.values())
