"""spec.powerStates: read strictly, every bad figure named with its value, round-trips."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from energysched.kb.io import dump_profile, load_profiles
from energysched.kb.profiles import PowerStates, ProfileSpec
from energysched.kb.validate import ValidationFailure, parse_profile

STATES = {
    "sleepWatts": 1.5,
    "sleepKind": "suspend",
    "suspendSeconds": 5,
    "wakeSeconds": 8,
    "wakeJoules": 80,
    "source": "estimated",
    "provenance": "published figures",
}


def _with(good_profile: Callable[[], dict[str, Any]], **changes: object) -> dict[str, Any]:
    obj = good_profile()
    obj["spec"]["powerStates"] = {**STATES, **changes}
    return obj


def _errors(obj: dict[str, Any]) -> str:
    parsed = parse_profile(obj)
    assert isinstance(parsed, ValidationFailure), parsed
    return str(parsed)


def test_power_states_are_read(good_profile: Callable[[], dict[str, Any]]) -> None:
    parsed = parse_profile(_with(good_profile))
    assert isinstance(parsed, ProfileSpec)
    assert parsed.power_states == PowerStates(
        sleep_watts=1.5,
        sleep_kind="suspend",
        suspend_seconds=5,
        wake_seconds=8,
        wake_joules=80,
        source="estimated",
        provenance="published figures",
    )


def test_a_profile_without_them_cannot_sleep(good_profile: Callable[[], dict[str, Any]]) -> None:
    parsed = parse_profile(good_profile())
    assert isinstance(parsed, ProfileSpec)
    assert parsed.power_states is None


@pytest.mark.parametrize(
    ("field", "value", "shown"),
    [
        ("sleepWatts", -1.0, "-1.0"),
        ("sleepWatts", math.nan, "nan"),
        ("sleepWatts", math.inf, "inf"),
        ("wakeSeconds", -3, "-3"),
        ("wakeSeconds", math.nan, "nan"),
        ("wakeJoules", -0.5, "-0.5"),
        ("suspendSeconds", math.inf, "inf"),
        ("sleepKind", "hibernate", "'hibernate'"),
        ("sleepWatts", "3.5", "'3.5'"),
    ],
)
def test_a_bad_figure_is_named_with_its_value(
    good_profile: Callable[[], dict[str, Any]], field: str, value: object, shown: str
) -> None:
    text = _errors(_with(good_profile, **{field: value}))
    assert f"spec.powerStates.{field}" in text
    assert shown in text


def test_sleep_power_must_be_below_idle(good_profile: Callable[[], dict[str, Any]]) -> None:
    text = _errors(_with(good_profile, sleepWatts=6.5))
    assert "spec.powerStates.sleepWatts" in text and "6.5" in text and "idlePowerWatts" in text


def test_unknown_field_is_an_error(good_profile: Callable[[], dict[str, Any]]) -> None:
    text = _errors(_with(good_profile, wakeMethod="wol"))
    assert "spec.powerStates.wakeMethod: unknown field" in text


def test_dump_round_trips(good_profile: Callable[[], dict[str, Any]]) -> None:
    parsed = parse_profile(_with(good_profile))
    assert isinstance(parsed, ProfileSpec)
    again = parse_profile(dump_profile(parsed))
    assert isinstance(again, ProfileSpec)
    assert again.power_states == parsed.power_states


def test_the_knowledge_base_has_figures_for_every_class(repo: Path) -> None:
    loaded = load_profiles(repo / "kb/profiles")
    assert not loaded.failures
    states = {p.name: p.power_states for p in loaded.profiles}
    assert set(states) == {"tvpc", "wyse", "rpi"}
    assert all(s is not None and s.provenance for s in states.values())
    rpi = states["rpi"]
    assert rpi is not None and rpi.sleep_kind == "halt" and 30 <= rpi.wake_seconds <= 120
    tvpc = states["tvpc"]
    assert tvpc is not None and tvpc.sleep_kind == "suspend" and tvpc.sleep_watts == 3.5
