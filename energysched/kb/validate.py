"""Validation of EnergyProfile objects (pure, no I/O).

:func:`parse_profile` reads an EnergyProfile with the project's one strict
reader (:mod:`energysched.strict`): pydantic models below describe the object
as the CRD's structural schema does (manifests/crd/energyprofiles.yaml), so
that profiles read from files get the same checks as those admitted by the API
server, plus the semantic rules a schema cannot express:

* power while working includes idle power: every ``powerWatts`` >= ``idlePowerWatts``;
* ``maxPowerWatts`` is not below any ``powerWatts`` nor below ``idlePowerWatts``;
* ``nodeSelector`` keys are label keys and values are label values;
* numbers are finite (no NaN, no infinity), not booleans nor strings, and within
  the CRD's maximums; what scoring derives from them is finite and positive too
  (efficiency ``performance / powerWatts`` and ``100 * performance``: figures
  like 1e308 / 1e-308 would otherwise score inf or NaN);
* unknown fields are errors (the API server would reject or prune them; a typo
  such as ``powerWats`` must not pass silently in a file).

``metadata`` and ``status`` belong to the API server: any fields are accepted
there; only ``metadata.name`` is required (a DNS subdomain), and
``resourceVersion`` / ``generation`` are read when they have their usual type.

Every error names the field path as written, what is allowed and the offending
value (``spec.workloads.training.powerWatts: ..., got 5``), all of them at once.
The rules relating two fields (power against idle or maximum power) are checked
once the fields of ``spec`` are themselves valid.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Annotated, Any, Final

from pydantic import (
    AfterValidator,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    ValidationError,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from energysched.contract import (
    API_VERSION,
    PROFILE_KIND,
    WORKLOAD_TYPES,
    SleepKind,
    WorkloadType,
)
from energysched.kb.profiles import FigureSource, PowerStates, ProfileSpec, WorkloadFigures
from energysched.strict import DocumentError, Problem, StrictModel, validate

# Kubernetes label syntax (k8s.io/apimachinery/pkg/util/validation).
_LABEL_VALUE_RE: Final = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_LABEL_NAME_RE: Final = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_DNS1123_SUBDOMAIN_RE: Final = re.compile(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
)
_LABEL_MAX: Final = 63
_SUBDOMAIN_MAX: Final = 253

# Same limits as the CRD.
#: Work units per second: far above any benchmark, far below float overflow.
MAX_PERFORMANCE: Final = 1e15
#: Watts (a megawatt node): keeps performance / powerWatts <= 1e18.
MAX_WATTS: Final = 1e6
#: The least powerWatts / maxPowerWatts (one milliwatt): keeps the efficiency finite.
MIN_WATTS: Final = 1e-3
UNIT_MAX_LEN: Final = 128
FIGURE_PROVENANCE_MAX_LEN: Final = 4096
PROFILE_PROVENANCE_MAX_LEN: Final = 8192
#: Seconds to fall asleep or wake (a day: far above any real machine's boot).
MAX_TRANSITION_SECONDS: Final = 86400.0
#: Joules of one wake (a megawatt node for 1,000 s).
MAX_WAKE_JOULES: Final = 1e9

#: One violated rule: where (the path as written) and what is wrong, with the value.
#: The strict reader's shape, shared by every document energysched reads.
FieldError = Problem


@dataclass(frozen=True, slots=True)
class ValidationFailure:
    """A profile that cannot be used, with every reason found (not just the first)."""

    name: str  # metadata.name, or "" when it is missing
    errors: tuple[FieldError, ...]

    def __str__(self) -> str:
        who = f"EnergyProfile {self.name!r}" if self.name else "EnergyProfile (no name)"
        return f"{who} is invalid: " + "; ".join(str(e) for e in self.errors)

    @property
    def message(self) -> str:
        """All errors, one per line (for a condition message or the CLI)."""
        return "\n".join(str(e) for e in self.errors)


def label_value_problem(value: str) -> str | None:
    """Why ``value`` is not a valid label value, or None when it is."""
    if len(value) > _LABEL_MAX:
        return f"is {len(value)} characters long; a label value has at most {_LABEL_MAX}"
    if not _LABEL_VALUE_RE.match(value):
        return (
            "is not a valid label value; allowed: empty, or alphanumerics with "
            "'-', '_', '.' inside, starting and ending alphanumeric"
        )
    return None


def label_key_problem(key: str) -> str | None:
    """Why ``key`` is not a valid label key (``[prefix/]name``), or None when it is."""
    prefix, slash, name = key.rpartition("/")
    if slash and not prefix:
        return "has an empty prefix before '/'"
    if slash and (len(prefix) > _SUBDOMAIN_MAX or not _DNS1123_SUBDOMAIN_RE.match(prefix)):
        return f"prefix {prefix!r} is not a DNS subdomain (lowercase, '-', '.')"
    if not name or len(name) > _LABEL_MAX or not _LABEL_NAME_RE.match(name):
        return (
            f"name part {name!r} is not allowed; 1-{_LABEL_MAX} alphanumerics with "
            "'-', '_', '.' inside, starting and ending alphanumeric"
        )
    return None


# -- building blocks ---------------------------------------------------------------------


def _rule(reason: str) -> PydanticCustomError:
    # The reason goes through the context: a literal message template would read any
    # brace in it as a placeholder.
    return PydanticCustomError("rule", "{reason}", {"reason": reason})


def _broken(title: str, found: Iterable[tuple[tuple[str | int, ...], str, object]]) -> None:
    """Raise every (location, reason, offending value) found, each at its own path."""
    errors = [InitErrorDetails(type=_rule(why), loc=loc, input=value) for loc, why, value in found]
    if errors:
        raise ValidationError.from_exception_data(title, errors)


def _as_written(number: float) -> float | int:
    """6.0 -> 6 in messages: the API server and most YAML write whole watts that way."""
    return int(number) if number.is_integer() and abs(number) < 2**53 else number


def _not_null(value: object) -> object:
    # An optional field may be left out, not set to null (the schema's type says so).
    if value is None:
        raise _rule("must not be null; leave the field out instead")
    return value


def _label_value(value: object) -> str:
    if not isinstance(value, str):
        raise _rule("a label value must be a string (quote numbers and booleans in YAML)")
    problem = label_value_problem(value)
    if problem:
        raise _rule(problem)
    return value


def _label_keys(selector: dict[str, str]) -> dict[str, str]:
    if not selector:
        _broken(
            "nodeSelector",
            [((), "at least one label is required (e.g. kubernetes.io/hostname: <node>)", {})],
        )
    _broken(
        "nodeSelector",
        (
            ((key,), f"key {problem}", key)
            for key in selector
            if (problem := label_key_problem(key))
        ),
    )
    return selector


def _exactly(expected: str) -> AfterValidator:
    def check(value: str) -> str:
        if value != expected:
            raise _rule(f"must be {expected}")
        return value

    return AfterValidator(check)


def _dns_subdomain(name: str) -> str:
    if len(name) > _SUBDOMAIN_MAX or not _DNS1123_SUBDOMAIN_RE.match(name):
        raise _rule(
            "is not a DNS subdomain; allowed: lowercase alphanumerics, '-' and '.', "
            f"at most {_SUBDOMAIN_MAX} characters"
        )
    return name


def _or_default(kind: type[Any], default: Any) -> PlainValidator:
    """The API server's value when it has the usual type, else ``default`` (never an error)."""
    return PlainValidator(
        lambda v: v if isinstance(v, kind) and not isinstance(v, bool) else default
    )


Performance = Annotated[float, Field(gt=0, le=MAX_PERFORMANCE)]
Watts = Annotated[float, Field(ge=MIN_WATTS, le=MAX_WATTS)]
IdleWatts = Annotated[float, Field(ge=0, le=MAX_WATTS)]
LabelValue = Annotated[str, PlainValidator(_label_value)]
NotNull = BeforeValidator(_not_null)


# -- the EnergyProfile object, as the CRD describes it ----------------------------------


class Figures(StrictModel):
    """``spec.workloads.<type>``: the figures of one workload type."""

    performance: Performance
    power_watts: Watts
    unit: Annotated[str, Field(max_length=UNIT_MAX_LEN)] = ""
    source: Annotated[FigureSource | None, NotNull] = None
    provenance: Annotated[str, Field(max_length=FIGURE_PROVENANCE_MAX_LEN)] = ""

    @model_validator(mode="after")
    def _derived_figures_are_finite(self) -> Figures:
        # What scoring derives must be a finite, positive number (not inf, NaN or 0).
        eff = self.performance / self.power_watts
        if not (math.isfinite(eff) and eff > 0 and math.isfinite(100.0 * self.performance)):
            why = "performance / powerWatts (the efficiency) must be a finite number > 0"
            _broken("Figures", [((), why, eff)])
        return self

    def value(self) -> WorkloadFigures:
        return WorkloadFigures(
            self.performance, self.power_watts, self.unit, self.source, self.provenance
        )


class Workloads(StrictModel):
    """``spec.workloads``: one entry per workload type (contract.WORKLOAD_TYPES)."""

    training: Annotated[Figures | None, NotNull] = None
    inference: Annotated[Figures | None, NotNull] = None
    sequential: Annotated[Figures | None, NotNull] = None

    @model_validator(mode="after")
    def _at_least_one(self) -> Workloads:
        if not self.figures():
            _broken(
                "Workloads", [((), f"at least one of {', '.join(WORKLOAD_TYPES)} is required", {})]
            )
        return self

    def figures(self) -> dict[WorkloadType, Figures]:
        """The workloads given, in the contract's order."""
        given = {
            "training": self.training,
            "inference": self.inference,
            "sequential": self.sequential,
        }
        return {w: f for w in WORKLOAD_TYPES if (f := given[w]) is not None}


class PowerStatesFigures(StrictModel):
    """``spec.powerStates``: sleep power, the time to fall asleep and to wake, a wake's energy."""

    sleep_watts: IdleWatts
    sleep_kind: SleepKind
    suspend_seconds: Annotated[float, Field(ge=0, le=MAX_TRANSITION_SECONDS)] = 0.0
    wake_seconds: Annotated[float, Field(gt=0, le=MAX_TRANSITION_SECONDS)]
    wake_joules: Annotated[float, Field(ge=0, le=MAX_WAKE_JOULES)]
    source: Annotated[FigureSource | None, NotNull] = None
    provenance: Annotated[str, Field(max_length=FIGURE_PROVENANCE_MAX_LEN)] = ""

    def value(self) -> PowerStates:
        return PowerStates(
            sleep_watts=self.sleep_watts,
            sleep_kind=self.sleep_kind,
            suspend_seconds=self.suspend_seconds,
            wake_seconds=self.wake_seconds,
            wake_joules=self.wake_joules,
            source=self.source,
            provenance=self.provenance,
        )


class Spec(StrictModel):
    """``spec``."""

    node_selector: Annotated[dict[str, LabelValue], AfterValidator(_label_keys)]
    idle_power_watts: IdleWatts
    max_power_watts: Annotated[Watts | None, NotNull] = None
    workloads: Workloads
    provenance: Annotated[str, Field(max_length=PROFILE_PROVENANCE_MAX_LEN)] = ""
    power_states: Annotated[PowerStatesFigures | None, NotNull] = None

    @model_validator(mode="after")
    def _power_is_ordered(self) -> Spec:
        idle, top = self.idle_power_watts, self.max_power_watts
        found: list[tuple[tuple[str | int, ...], str, object]] = []
        if self.power_states is not None and self.power_states.sleep_watts >= idle:
            found.append(
                (
                    ("powerStates", "sleepWatts"),
                    f"must be below spec.idlePowerWatts {_as_written(idle)} "
                    "(a node that draws as much asleep as idle saves nothing by sleeping)",
                    _as_written(self.power_states.sleep_watts),
                )
            )
        if top is not None and top < idle:
            found.append(
                (
                    ("maxPowerWatts",),
                    f"must not be below spec.idlePowerWatts {_as_written(idle)} "
                    "(the highest power cannot be below idle power)",
                    _as_written(top),
                )
            )
        for wtype, figures in self.workloads.figures().items():
            loc = ("workloads", wtype, "powerWatts")
            power = figures.power_watts
            if power < idle:
                found.append(
                    (
                        loc,
                        f"must not be below spec.idlePowerWatts {_as_written(idle)} "
                        "(power while working includes idle power)",
                        _as_written(power),
                    )
                )
            if top is not None and power > top:
                found.append(
                    (
                        loc,
                        f"must not be above spec.maxPowerWatts {_as_written(top)} "
                        "(maxPowerWatts must not be below any workload's power)",
                        _as_written(power),
                    )
                )
        _broken("Spec", found)
        return self


class Metadata(StrictModel):
    """``metadata``: the API server's; any fields, a name is required."""

    model_config = ConfigDict(extra="allow")

    name: Annotated[str, AfterValidator(_dns_subdomain)]
    resource_version: Annotated[str, _or_default(str, "")] = ""
    generation: Annotated[int, _or_default(int, 0)] = 0


class EnergyProfile(StrictModel):
    """An EnergyProfile object, as read from a file or sent by the API server."""

    api_version: Annotated[str, _exactly(API_VERSION)]
    kind: Annotated[str, _exactly(PROFILE_KIND)]
    metadata: Metadata
    spec: Spec
    #: Written by the operator, validated by the API server; not read here.
    status: Any = None

    def value(self) -> ProfileSpec:
        spec = self.spec
        return ProfileSpec(
            name=self.metadata.name,
            node_selector=MappingProxyType(dict(spec.node_selector)),
            idle_power_watts=spec.idle_power_watts,
            workloads=MappingProxyType({w: f.value() for w, f in spec.workloads.figures().items()}),
            max_power_watts=spec.max_power_watts,
            resource_version=self.metadata.resource_version,
            provenance=spec.provenance,
            generation=self.metadata.generation,
            power_states=None if spec.power_states is None else spec.power_states.value(),
        )


def _name(obj: object) -> str:
    """metadata.name when it is a non-empty string (even an invalid one), else ""."""
    metadata = obj.get("metadata") if isinstance(obj, Mapping) else None
    name = metadata.get("name") if isinstance(metadata, Mapping) else None
    return name if isinstance(name, str) else ""


def parse_profile(obj: Mapping[str, object]) -> ProfileSpec | ValidationFailure:
    """Validate an EnergyProfile object (as read from YAML or the API) into a ProfileSpec.

    Returns a :class:`ValidationFailure` listing every problem found; never raises
    on bad input.
    """
    # A kopf Body or a MappingProxy is a Mapping but not a dict, which strict mode wants.
    doc = dict(obj) if isinstance(obj, Mapping) and not isinstance(obj, dict) else obj
    try:
        return validate(EnergyProfile, doc).value()
    except DocumentError as err:
        return ValidationFailure(_name(obj), err.problems)


# -- over profiles ---------------------------------------------------------------------


def unit_conflicts(profiles: Iterable[ProfileSpec]) -> list[str]:
    """Workload types whose profiles disagree on the unit (performance not comparable).

    A figure without a unit does not conflict. Returns one message per workload type.
    """
    units: dict[WorkloadType, dict[str, list[str]]] = {}
    for profile in sorted(profiles, key=lambda p: p.name):
        for wtype, figures in profile.workloads.items():
            if figures.unit:
                units.setdefault(wtype, {}).setdefault(figures.unit, []).append(profile.name)
    messages = []
    for wtype in WORKLOAD_TYPES:
        seen = units.get(wtype, {})
        if len(seen) > 1:
            parts = "; ".join(f"{unit!r} in {', '.join(names)}" for unit, names in seen.items())
            messages.append(
                f"workloads.{wtype}.unit differs between profiles ({parts}); "
                "performance is only comparable in one unit"
            )
    return messages


def efficiencies(profile: ProfileSpec) -> dict[WorkloadType, float]:
    """Efficiency (performance per watt = work per joule) per workload type."""
    return {w: f.efficiency for w, f in profile.workloads.items()}


def best_efficiency(profile: ProfileSpec) -> float | None:
    """The highest efficiency over the profile's workloads (``status.bestEfficiency``)."""
    values = efficiencies(profile).values()
    return max(values) if values else None
