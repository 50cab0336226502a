"""Immutable EnergyProfile values and the rule that maps nodes to profiles.

A profile describes one node or a class of identical nodes. The scheduler, the
operator and ``energysched kb show`` all resolve nodes to profiles through
:class:`KnowledgeBase`, so they can never disagree about which profile a node got.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final, Literal

from energysched.contract import SleepKind, WorkloadType

#: Where a figure comes from. An estimate is never presented as a measurement.
FigureSource = Literal["measured", "estimated"]
FIGURE_SOURCES: Final[tuple[FigureSource, ...]] = ("measured", "estimated")


@dataclass(frozen=True, slots=True)
class WorkloadFigures:
    """Benchmarked figures of one workload type on one node class."""

    performance: float  # work units per second, higher is better
    power_watts: float  # wall power while running this workload
    #: Work unit of ``performance`` ("steps/s"); all profiles must agree per workload type.
    unit: str = ""
    #: "measured" or "estimated"; None when the profile does not say.
    source: FigureSource | None = None
    #: What the figures were derived from and how.
    provenance: str = ""

    @property
    def efficiency(self) -> float:
        """Work per joule (performance per watt)."""
        return self.performance / self.power_watts


@dataclass(frozen=True, slots=True)
class PowerStates:
    """``spec.powerStates``: how a node of this class sleeps and wakes, and what it costs.

    ``wake_joules`` is the energy the whole wake draws (from the wake request until the node
    is Ready again, ``wake_seconds`` long); the energy of falling asleep is modelled as idle
    power for ``suspend_seconds``.
    """

    sleep_watts: float  # wall power while asleep (suspended, or halted with the plug on)
    sleep_kind: SleepKind  # "suspend" (S3, woken by WoL) or "halt" (woken by a power cycle)
    suspend_seconds: float  # from the sleep command until the node draws sleep_watts
    wake_seconds: float  # from the wake request until the node is Ready
    wake_joules: float  # energy drawn during the wake
    #: "measured" or "estimated"; None when the profile does not say.
    source: FigureSource | None = None
    #: Where the figures come from.
    provenance: str = ""


@dataclass(frozen=True, slots=True)
class ProfileSpec:
    """A validated EnergyProfile."""

    name: str
    node_selector: Mapping[str, str]
    idle_power_watts: float
    workloads: Mapping[WorkloadType, WorkloadFigures]
    max_power_watts: float | None = None
    #: ``metadata.resourceVersion`` of the object this was read from ("" for files).
    resource_version: str = ""
    #: ``spec.provenance``: free text about where the profile as a whole comes from.
    provenance: str = ""
    #: ``metadata.generation`` of the object this was read from (0 for files).
    generation: int = 0
    #: ``spec.powerStates``; None: a node of this class is never put to sleep.
    power_states: PowerStates | None = None

    def matches(self, node_labels: Mapping[str, str]) -> bool:
        """Equality-based label selector, as in ``spec.nodeSelector`` of a pod.

        An empty selector matches nothing: a profile must say which nodes it is for.
        """
        if not self.node_selector:
            return False
        return all(node_labels.get(k) == v for k, v in self.node_selector.items())


@dataclass(frozen=True, slots=True)
class Resolution:
    """Which profile a node got, and which others also matched it."""

    profile: ProfileSpec
    also_matched: tuple[str, ...] = ()


def _precedence(profile: ProfileSpec) -> tuple[int, str]:
    # The most specific selector (more labels) wins; ties go to the name that
    # sorts first. Deterministic, documented in the README, and the same rule
    # in the scheduler, the operator and the CLI.
    return (-len(profile.node_selector), profile.name)


@dataclass(frozen=True)
class KnowledgeBase:
    """An immutable set of valid profiles; swapped whole when one changes."""

    profiles: Mapping[str, ProfileSpec] = field(default_factory=lambda: MappingProxyType({}))

    @classmethod
    def of(cls, profiles: Iterable[ProfileSpec]) -> KnowledgeBase:
        return cls(MappingProxyType({p.name: p for p in profiles}))

    def resolve(self, node_labels: Mapping[str, str]) -> Resolution | None:
        """The profile a node with these labels gets, or None."""
        matching = sorted(
            (p for p in self.profiles.values() if p.matches(node_labels)), key=_precedence
        )
        if not matching:
            return None
        return Resolution(matching[0], tuple(p.name for p in matching[1:]))

    def with_profile(self, profile: ProfileSpec) -> KnowledgeBase:
        return KnowledgeBase(MappingProxyType({**self.profiles, profile.name: profile}))

    def without(self, name: str) -> KnowledgeBase:
        return KnowledgeBase(
            MappingProxyType({k: v for k, v in self.profiles.items() if k != name})
        )
