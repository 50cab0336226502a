"""``energysched explain`` prints byte for byte what the golden files hold.

The goldens were written by :mod:`tests.unit.core.explain_golden` from the code
before the plugin kernel was rebuilt; every mode x scenario x pod x situation
must render the same (see that module for the cases and how to rewrite them).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from energysched import contract
from tests.unit.core import explain_golden


@pytest.mark.parametrize("mode", contract.SCORING_MODES)
@pytest.mark.parametrize("scenario", explain_golden.scenario_dirs(), ids=lambda p: p.name)
def test_explain_output_is_byte_identical_to_the_golden(scenario: Path, mode: str) -> None:
    golden = explain_golden.golden_path(scenario, mode)
    assert golden.is_file(), f"no golden {golden}: write it with explain_golden --write"
    expected = golden.read_text().split("\n=== ")
    got = explain_golden.golden_text(scenario, mode).split("\n=== ")
    assert len(got) == len(expected)
    for g, e in zip(got, expected, strict=True):
        assert g == e  # one case at a time: the failure shows its header
