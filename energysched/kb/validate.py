"""Validation of EnergyProfile objects (pure, no I/O).

:func:`parse_profile` applies the rules of the CRD's structural schema
(manifests/crd/energyprofiles.yaml), so that profiles read from files get the
same checks as those admitted by the API server, plus the semantic rules a
schema cannot express:

* power while working includes idle power: every ``powerWatts`` >= ``idlePowerWatts``;
* ``maxPowerWatts`` is not below any ``powerWatts`` nor below ``idlePowerWatts``;
* ``nodeSelector`` keys are label keys and values are label values;
* numbers are finite (no NaN, no infinity), not booleans, and within the
  CRD's maximums; what scoring derives from them is finite and positive too
  (efficiency ``performance / powerWatts`` and ``100 * performance``: figures
  like 1e308 / 1e-308 would otherwise score inf or NaN);
* unknown fields are errors (the API server would reject or prune them; a typo
  such as ``powerWats`` must not pass silently in a file).

Every error names the field path, the offending value and what is allowed.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from energysched.contract import API_VERSION, PROFILE_KIND, WORKLOAD_TYPES, WorkloadType
from energysched.kb.profiles import (
    FIGURE_SOURCES,
    FigureSource,
    ProfileSpec,
    WorkloadFigures,
)

# Kubernetes label syntax (k8s.io/apimachinery/pkg/util/validation).
_LABEL_VALUE_RE: Final = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_LABEL_NAME_RE: Final = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_DNS1123_LABEL_RE: Final = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
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

_SPEC_FIELDS: Final = ("nodeSelector", "idlePowerWatts", "maxPowerWatts", "workloads", "provenance")
_FIGURE_FIELDS: Final = ("performance", "powerWatts", "unit", "source", "provenance")
_TOP_FIELDS: Final = ("apiVersion", "kind", "metadata", "spec", "status")


@dataclass(frozen=True, slots=True)
class FieldError:
    """One violated rule: where, what was found, and what is allowed."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


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


def _show(value: object) -> str:
    if isinstance(value, Mapping):
        return "{...}"
    if isinstance(value, list | tuple):
        return "[...]"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**30:
        # repr() refuses integers over 4,300 digits; nobody wants to read one anyway
        return f"<an integer of {value.bit_length()} bits>"
    text = repr(value)
    return text if len(text) <= 200 else f"{text[:160]}...({len(text)} characters)"


def _type_name(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, list | tuple):
        return "array"
    return type(value).__name__


class _Checker:
    def __init__(self) -> None:
        self.errors: list[FieldError] = []

    def fail(self, path: str, message: str) -> None:
        self.errors.append(FieldError(path, message))

    def number(
        self, path: str, value: object, *, minimum: float, exclusive: bool, maximum: float
    ) -> float | None:
        """A finite number above (or at, unless exclusive) the minimum and at most
        the maximum, or None after failing."""
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.fail(path, f"{_show(value)} is a {_type_name(value)}; must be a number")
            return None
        try:
            number = float(value)
        except OverflowError:  # an integer beyond float range (over 309 digits)
            number = math.inf if value > 0 else -math.inf
        if not math.isfinite(number) and not isinstance(value, int):
            self.fail(path, f"{_show(value)} is not allowed; must be a finite number")
            return None
        if number < minimum or (exclusive and number == minimum):
            relation = ">" if exclusive else ">="
            self.fail(path, f"{_show(value)} is not allowed; must be {relation} {minimum:g}")
            return None
        if number > maximum:
            self.fail(path, f"{_show(value)} is not allowed; must be <= {maximum:g}")
            return None
        return number

    def string(self, path: str, value: object, *, max_len: int) -> str | None:
        if not isinstance(value, str):
            self.fail(path, f"{_show(value)} is a {_type_name(value)}; must be a string")
            return None
        if len(value) > max_len:
            self.fail(path, f"is {len(value)} characters long; at most {max_len} allowed")
            return None
        return value

    def mapping(self, path: str, value: object) -> Mapping[str, object] | None:
        if not isinstance(value, Mapping):
            self.fail(path, f"{_show(value)} is a {_type_name(value)}; must be an object")
            return None
        bad = [k for k in value if not isinstance(k, str)]
        if bad:
            self.fail(path, f"key {_show(bad[0])} is not a string")
            return None
        return value

    def unknown(self, path: str, obj: Mapping[str, object], allowed: Iterable[str]) -> None:
        allowed = tuple(allowed)
        for key in obj:
            if key not in allowed:
                self.fail(
                    f"{path}.{key}" if path else key,
                    f"unknown field; allowed: {', '.join(allowed)}",
                )


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


def _figures(c: _Checker, path: str, value: object, idle: float | None) -> WorkloadFigures | None:
    obj = c.mapping(path, value)
    if obj is None:
        return None
    before = len(c.errors)
    c.unknown(path, obj, _FIGURE_FIELDS)
    performance = power = None
    if "performance" not in obj:
        c.fail(f"{path}.performance", "is required (work units per second, > 0)")
    else:
        performance = c.number(
            f"{path}.performance",
            obj["performance"],
            minimum=0,
            exclusive=True,
            maximum=MAX_PERFORMANCE,
        )
    if "powerWatts" not in obj:
        c.fail(f"{path}.powerWatts", "is required (wall power while working, watts, > 0)")
    else:
        power = c.number(
            f"{path}.powerWatts",
            obj["powerWatts"],
            minimum=MIN_WATTS,
            exclusive=False,
            maximum=MAX_WATTS,
        )
    if performance is not None and power is not None:
        # What scoring derives must be a finite, positive number (not inf/NaN/0).
        eff = performance / power
        if not (math.isfinite(eff) and eff > 0 and math.isfinite(100.0 * performance)):
            c.fail(
                path,
                f"performance / powerWatts = {eff!r} is not allowed; the efficiency must be "
                "a finite number > 0",
            )
    if power is not None and idle is not None and power < idle:
        c.fail(
            f"{path}.powerWatts",
            f"{_show(obj['powerWatts'])} is below spec.idlePowerWatts {idle:g}; "
            "power while working includes idle power",
        )
    unit = ""
    if "unit" in obj:
        unit = c.string(f"{path}.unit", obj["unit"], max_len=UNIT_MAX_LEN) or ""
    source: FigureSource | None = None
    if "source" in obj:
        raw = obj["source"]
        for candidate in FIGURE_SOURCES:
            if raw == candidate:
                source = candidate
        if source is None:
            c.fail(
                f"{path}.source",
                f"{_show(raw)} is not allowed; allowed: {', '.join(FIGURE_SOURCES)}",
            )
    provenance = ""
    if "provenance" in obj:
        provenance = (
            c.string(f"{path}.provenance", obj["provenance"], max_len=FIGURE_PROVENANCE_MAX_LEN)
            or ""
        )
    if len(c.errors) > before or performance is None or power is None:
        return None
    return WorkloadFigures(performance, power, unit, source, provenance)


def _node_selector(c: _Checker, value: object) -> dict[str, str] | None:
    path = "spec.nodeSelector"
    obj = c.mapping(path, value)
    if obj is None:
        return None
    if not obj:
        c.fail(path, "is empty; at least one label is required (e.g. kubernetes.io/hostname)")
        return None
    before = len(c.errors)
    selector: dict[str, str] = {}
    for key, raw in obj.items():
        problem = label_key_problem(key)
        if problem:
            c.fail(f"{path}[{key!r}]", f"key {problem}")
        if not isinstance(raw, str):
            c.fail(
                f"{path}[{key!r}]",
                f"{_show(raw)} is a {_type_name(raw)}; a label value must be a string "
                "(quote numbers and booleans in YAML)",
            )
            continue
        problem = label_value_problem(raw)
        if problem:
            c.fail(f"{path}[{key!r}]", f"{raw!r} {problem}")
            continue
        selector[key] = raw
    return selector if len(c.errors) == before else None


def _name(c: _Checker, obj: Mapping[str, object]) -> str:
    metadata = obj.get("metadata")
    if not isinstance(metadata, Mapping):
        c.fail("metadata.name", "is required")
        return ""
    name = metadata.get("name")
    if not isinstance(name, str) or not name:
        c.fail("metadata.name", f"{_show(name)} is not allowed; a non-empty string is required")
        return ""
    if len(name) > _SUBDOMAIN_MAX or not _DNS1123_SUBDOMAIN_RE.match(name):
        c.fail(
            "metadata.name",
            f"{name!r} is not a DNS subdomain; allowed: lowercase alphanumerics, '-' and '.', "
            f"at most {_SUBDOMAIN_MAX} characters",
        )
    return name


def _metadata_int(obj: Mapping[str, object], key: str) -> int:
    metadata = obj.get("metadata")
    if isinstance(metadata, Mapping):
        value = metadata.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return 0


def _metadata_str(obj: Mapping[str, object], key: str) -> str:
    metadata = obj.get("metadata")
    if isinstance(metadata, Mapping):
        value = metadata.get(key)
        if isinstance(value, str):
            return value
    return ""


def parse_profile(obj: Mapping[str, object]) -> ProfileSpec | ValidationFailure:
    """Validate an EnergyProfile object (as read from YAML or the API) into a ProfileSpec.

    Returns a :class:`ValidationFailure` listing every problem found; never raises
    on bad input.
    """
    c = _Checker()
    if not isinstance(obj, Mapping):
        return ValidationFailure("", (FieldError("", f"{_show(obj)} is not an object"),))
    name = _name(c, obj)
    if obj.get("apiVersion") != API_VERSION:
        c.fail(
            "apiVersion", f"{_show(obj.get('apiVersion'))} is not allowed; must be {API_VERSION}"
        )
    if obj.get("kind") != PROFILE_KIND:
        c.fail("kind", f"{_show(obj.get('kind'))} is not allowed; must be {PROFILE_KIND}")
    c.unknown("", obj, _TOP_FIELDS)
    if "spec" not in obj:
        c.fail("spec", "is required")
        return ValidationFailure(name, tuple(c.errors))
    spec = c.mapping("spec", obj["spec"])
    if spec is None:
        return ValidationFailure(name, tuple(c.errors))
    c.unknown("spec", spec, _SPEC_FIELDS)

    selector = None
    if "nodeSelector" not in spec:
        c.fail("spec.nodeSelector", "is required (e.g. {kubernetes.io/hostname: <node>})")
    else:
        selector = _node_selector(c, spec["nodeSelector"])

    idle = None
    if "idlePowerWatts" not in spec:
        c.fail("spec.idlePowerWatts", "is required (wall power of an idle node, watts, >= 0)")
    else:
        idle = c.number(
            "spec.idlePowerWatts",
            spec["idlePowerWatts"],
            minimum=0,
            exclusive=False,
            maximum=MAX_WATTS,
        )

    max_power = None
    if "maxPowerWatts" in spec:
        max_power = c.number(
            "spec.maxPowerWatts",
            spec["maxPowerWatts"],
            minimum=MIN_WATTS,
            exclusive=False,
            maximum=MAX_WATTS,
        )
        if max_power is not None and idle is not None and max_power < idle:
            c.fail(
                "spec.maxPowerWatts",
                f"{_show(spec['maxPowerWatts'])} is below spec.idlePowerWatts {idle:g}; "
                "the highest power cannot be below idle power",
            )

    workloads: dict[WorkloadType, WorkloadFigures] = {}
    if "workloads" not in spec:
        c.fail("spec.workloads", f"is required (at least one of {', '.join(WORKLOAD_TYPES)})")
    else:
        raw_workloads = c.mapping("spec.workloads", spec["workloads"])
        if raw_workloads is not None:
            if not raw_workloads:
                c.fail(
                    "spec.workloads",
                    f"is empty; at least one of {', '.join(WORKLOAD_TYPES)} is required",
                )
            c.unknown("spec.workloads", raw_workloads, WORKLOAD_TYPES)
            for wtype in WORKLOAD_TYPES:
                if wtype not in raw_workloads:
                    continue
                path = f"spec.workloads.{wtype}"
                figures = _figures(c, path, raw_workloads[wtype], idle)
                if figures is None:
                    continue
                if max_power is not None and figures.power_watts > max_power:
                    c.fail(
                        f"{path}.powerWatts",
                        f"{figures.power_watts:g} is above spec.maxPowerWatts {max_power:g}; "
                        "maxPowerWatts must not be below any workload's power",
                    )
                workloads[wtype] = figures

    provenance = ""
    if "provenance" in spec:
        provenance = (
            c.string("spec.provenance", spec["provenance"], max_len=PROFILE_PROVENANCE_MAX_LEN)
            or ""
        )

    if c.errors or selector is None or idle is None:
        return ValidationFailure(name, tuple(c.errors))
    return ProfileSpec(
        name=name,
        node_selector=MappingProxyType(selector),
        idle_power_watts=idle,
        workloads=MappingProxyType(workloads),
        max_power_watts=max_power,
        resource_version=_metadata_str(obj, "resourceVersion"),
        provenance=provenance,
        generation=_metadata_int(obj, "generation"),
    )


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
