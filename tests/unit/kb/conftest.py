from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[3]


def _good() -> dict[str, Any]:
    return {
        "apiVersion": "energy.thesis.io/v1alpha1",
        "kind": "EnergyProfile",
        "metadata": {"name": "wyse"},
        "spec": {
            "nodeSelector": {"kubernetes.io/hostname": "wyse"},
            "idlePowerWatts": 6.5,
            "maxPowerWatts": 25,
            "workloads": {
                "training": {
                    "performance": 120.0,
                    "powerWatts": 13.2,
                    "unit": "steps/s",
                    "source": "estimated",
                    "provenance": "a guess",
                },
                "inference": {"performance": 900.0, "powerWatts": 11.0},
                "sequential": {"performance": 40, "powerWatts": 9.5},
            },
            "provenance": "test",
        },
    }


@pytest.fixture
def good_profile() -> Callable[[], dict[str, Any]]:
    """A factory of fresh, valid EnergyProfile objects (deep copies, safe to mutate)."""
    return lambda: copy.deepcopy(_good())


@pytest.fixture
def repo() -> Path:
    return REPO
