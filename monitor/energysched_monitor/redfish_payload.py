"""What a BMC's Redfish resources say about power (pure: documents in, figures out).

Two schemas carry a server's power, both DMTF's:

* the older ``Chassis/{id}/Power`` (``Power.v1``): ``PowerControl[].PowerConsumedWatts``;
* the newer ``Chassis/{id}/EnvironmentMetrics`` (``EnvironmentMetrics.v1``, next to
  ``PowerSubsystem``, which replaced ``Power``): ``PowerWatts.Reading``, and where the
  server counts energy, ``EnergykWh.Reading`` with the counter's ``SensorResetTime``.

A value that is missing, ``null``, a boolean or not finite is no reading: the caller
gets a :class:`ReadError` naming the resource and the field, never a number made up.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any, Final, Literal

from energysched_monitor.readings import ReadError, excerpt

JOULES_PER_KWH: Final = 3.6e6
#: EnergykWh moves in watt-hours on the BMCs that have it: one step is 3,600 J.
ENERGY_RESOLUTION_JOULES: Final = 3600.0

Schema = Literal["power", "environmentMetrics"]


@dataclass(frozen=True, slots=True)
class BmcPower:
    watts: float
    energy_joules: float | None = None
    counter_reset_at: float | None = None  # the counter's SensorResetTime (BMC clock, epoch s)


@dataclass(frozen=True, slots=True)
class ChassisLinks:
    """Where a Chassis keeps its power figures (``@odata.id`` paths, None if absent)."""

    power: str | None
    environment_metrics: str | None
    power_subsystem: str | None


def _link(doc: Mapping[str, Any], key: str) -> str | None:
    value = doc.get(key)
    if isinstance(value, Mapping):
        target = value.get("@odata.id")
        if isinstance(target, str) and target.startswith("/"):
            return target
    return None


def chassis_links(doc: Any, where: str) -> ChassisLinks:
    if not isinstance(doc, Mapping):
        raise ReadError("malformed", f"{where}: not a JSON object: {excerpt(str(doc))}")
    return ChassisLinks(
        _link(doc, "Power"), _link(doc, "EnvironmentMetrics"), _link(doc, "PowerSubsystem")
    )


def collection_members(doc: Any, where: str) -> list[str]:
    """The ``Members[].@odata.id`` of a collection (Chassis, Systems)."""
    members = doc.get("Members") if isinstance(doc, Mapping) else None
    if not isinstance(members, list):
        raise ReadError("malformed", f"{where}: no Members list: {excerpt(str(doc))}")
    paths = [m.get("@odata.id") for m in members if isinstance(m, Mapping)]
    return [p for p in paths if isinstance(p, str) and p.startswith("/")]


def service_link(doc: Any, key: str, where: str) -> str:
    """A link of the service root (``Chassis``, ``Systems``)."""
    if isinstance(doc, Mapping):
        target = _link(doc, key)
        if target is not None:
            return target
    raise ReadError("malformed", f"{where}: the service root has no {key} link")


def _number(value: Any, where: str, field: str) -> float:
    if value is None:
        raise ReadError("malformed", f"{where}: {field} is null (the BMC has no reading)")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ReadError("malformed", f"{where}: {field} is not a number: {excerpt(repr(value))}")
    number = float(value)
    if not math.isfinite(number):
        raise ReadError("malformed", f"{where}: {field} is not finite: {value!r}")
    return number


def _timestamp(value: Any) -> float | None:
    """An ISO 8601 date-time with an offset, as Redfish writes them; None if it is not one."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return None if parsed.tzinfo is None else parsed.timestamp()


def has_power_watts(doc: Any) -> bool:
    return isinstance(doc, Mapping) and isinstance(doc.get("PowerWatts"), Mapping)


def power_from_environment_metrics(doc: Any, where: str) -> BmcPower:
    """``PowerWatts.Reading`` W and ``EnergykWh.Reading`` (if present) of EnvironmentMetrics."""
    if not isinstance(doc, Mapping):
        raise ReadError("malformed", f"{where}: not a JSON object: {excerpt(str(doc))}")
    power = doc.get("PowerWatts")
    if not isinstance(power, Mapping):
        raise ReadError(
            "unsupported", f"{where}: no PowerWatts (keys: {', '.join(sorted(map(str, doc)))})"
        )
    watts = _number(power.get("Reading"), where, "PowerWatts.Reading")
    energy = doc.get("EnergykWh")
    if not isinstance(energy, Mapping) or energy.get("Reading") is None:
        return BmcPower(watts)
    kwh = _number(energy.get("Reading"), where, "EnergykWh.Reading")
    return BmcPower(watts, kwh * JOULES_PER_KWH, _timestamp(energy.get("SensorResetTime")))


def power_from_power(doc: Any, where: str) -> BmcPower:
    """``PowerControl[].PowerConsumedWatts`` of the older Power resource.

    The first entry with a reading: by the schema's convention the first PowerControl is
    the whole chassis; later ones are sub-domains (a CPU, a blade) that it includes, so
    adding them up would count watts twice."""
    if not isinstance(doc, Mapping):
        raise ReadError("malformed", f"{where}: not a JSON object: {excerpt(str(doc))}")
    controls = doc.get("PowerControl")
    if not isinstance(controls, list) or not controls:
        raise ReadError("unsupported", f"{where}: no PowerControl entries")
    for index, control in enumerate(controls):
        if isinstance(control, Mapping) and "PowerConsumedWatts" in control:
            field = f"PowerControl[{index}].PowerConsumedWatts"
            return BmcPower(_number(control["PowerConsumedWatts"], where, field))
    raise ReadError("unsupported", f"{where}: no PowerControl[].PowerConsumedWatts")


def parse_power(doc: Any, schema: Schema, where: str) -> BmcPower:
    if schema == "environmentMetrics":
        return power_from_environment_metrics(doc, where)
    return power_from_power(doc, where)


def http_date(value: str | None) -> float | None:
    """The reply's ``Date`` header (the BMC's clock) as epoch seconds; None if absent/odd."""
    if not value:
        return None
    try:
        return parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError):
        return None


def counter_age(power: BmcPower, bmc_now: float | None) -> float | None:
    """Seconds since the energy counter was reset, by the BMC's own clock on both ends
    (so a BMC whose clock is off by hours still gives the right age); None if unknown."""
    if power.counter_reset_at is None or bmc_now is None:
        return None
    return max(0.0, bmc_now - power.counter_reset_at)


# -- ComputerSystem.Reset (the power manager's Redfish method) ---------------------------


@dataclass(frozen=True, slots=True)
class ResetAction:
    target: str  # the action's URI
    allowed: tuple[str, ...] | None  # ResetType@Redfish.AllowableValues; None: not announced
    power_state: str | None  # the system's PowerState: On, Off, PoweringOn, PoweringOff


def reset_action(doc: Any, where: str) -> ResetAction:
    """The ``#ComputerSystem.Reset`` action of a ComputerSystem resource."""
    if not isinstance(doc, Mapping):
        raise ReadError("malformed", f"{where}: not a JSON object: {excerpt(str(doc))}")
    actions = doc.get("Actions")
    action = actions.get("#ComputerSystem.Reset") if isinstance(actions, Mapping) else None
    if not isinstance(action, Mapping) or not isinstance(action.get("target"), str):
        raise ReadError("unsupported", f"{where}: no #ComputerSystem.Reset action")
    allowed = action.get("ResetType@Redfish.AllowableValues")
    values = tuple(v for v in allowed if isinstance(v, str)) if isinstance(allowed, list) else None
    state = doc.get("PowerState")
    return ResetAction(str(action["target"]), values, state if isinstance(state, str) else None)
