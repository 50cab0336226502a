"""The CRD and the strict reader agree at the limits: what the API server refuses, a profile
file is refused for too, and what it admits, a file may say too (the same object, both ways)."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from energysched.kb.validate import (
    FIGURE_PROVENANCE_MAX_LEN,
    MAX_PERFORMANCE,
    MAX_WATTS,
    MIN_WATTS,
    UNIT_MAX_LEN,
    ValidationFailure,
    parse_profile,
)
from energysched.kube.client import ApiError, KubeClient

PROFILES = "/apis/energy.thesis.io/v1alpha1/energyprofiles"


def profile() -> dict[str, Any]:
    return {
        "apiVersion": "energy.thesis.io/v1alpha1",
        "kind": "EnergyProfile",
        "metadata": {"name": f"limits-{uuid.uuid4().hex[:8]}"},
        "spec": {
            "nodeSelector": {"kubernetes.io/hostname": "nowhere"},
            "idlePowerWatts": 1.0,
            "maxPowerWatts": 10.0,
            "workloads": {
                "training": {"performance": 5.0, "powerWatts": 5.0, "unit": "steps/s"},
            },
        },
    }


def figures(**values: Any) -> Callable[[dict[str, Any]], None]:
    def change(p: dict[str, Any]) -> None:
        p["spec"]["workloads"]["training"].update(values)

    return change


def spec(**values: Any) -> Callable[[dict[str, Any]], None]:
    def change(p: dict[str, Any]) -> None:
        p["spec"].update(values)

    return change


def both(*changes: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    def change(p: dict[str, Any]) -> None:
        for c in changes:
            c(p)

    return change


CASES = [
    # (what, change, admitted)
    ("performance at its maximum", figures(performance=MAX_PERFORMANCE), True),
    ("performance above its maximum", figures(performance=MAX_PERFORMANCE * 10), False),
    ("performance zero (the minimum is exclusive)", figures(performance=0), False),
    # idle 0, so that a milliwatt under load is not below idle
    (
        "powerWatts at a milliwatt",
        both(spec(idlePowerWatts=0.0), figures(powerWatts=MIN_WATTS)),
        True,
    ),
    ("powerWatts below a milliwatt", figures(powerWatts=MIN_WATTS / 10), False),
    ("maxPowerWatts above a megawatt", spec(maxPowerWatts=MAX_WATTS * 2), False),
    ("idlePowerWatts negative", spec(idlePowerWatts=-1.0), False),
    ("unit at its longest", figures(unit="u" * UNIT_MAX_LEN), True),
    ("unit too long", figures(unit="u" * (UNIT_MAX_LEN + 1)), False),
    ("provenance too long", figures(provenance="p" * (FIGURE_PROVENANCE_MAX_LEN + 1)), False),
    ("performance a string", figures(performance="5"), False),
]


@pytest.mark.parametrize(("what", "change", "admitted"), CASES, ids=[c[0] for c in CASES])
async def test_api_server_and_strict_reader_agree(
    kube: KubeClient,
    knowledge_base: None,
    what: str,
    change: Callable[[dict[str, Any]], None],
    admitted: bool,
) -> None:
    obj = profile()
    change(obj)
    parsed = parse_profile(copy.deepcopy(obj))
    try:
        await kube.create(PROFILES, obj)
    except ApiError as exc:
        assert exc.status == 422, exc
        server_admits = False
    else:
        server_admits = True
        await kube.delete(f"{PROFILES}/{obj['metadata']['name']}")
    file_admits = not isinstance(parsed, ValidationFailure)
    assert (server_admits, file_admits) == (admitted, admitted), (what, parsed)
