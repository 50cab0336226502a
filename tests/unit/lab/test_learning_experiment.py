"""The learning experiment: reproducible, judged by the truth, fed only what a cluster shows."""

from __future__ import annotations

from dataclasses import replace

import pytest

from energysched_lab.experiment.learning import run_one
from energysched_lab.experiment.scenario import load_scenario
from tests.support import ROOT


@pytest.fixture(scope="module")
def small_off2():  # type: ignore[no-untyped-def]
    s = load_scenario(ROOT / "kb" / "scenarios" / "learning-runs" / "off2")
    return replace(s, workload=replace(s.workload, count=12))


def test_learning_fixes_a_factor_two_profile_and_attribution_is_close(small_off2) -> None:  # type: ignore[no-untyped-def]
    spec = run_one(small_off2, 1, "spec", mode="normalized", optimum=False)
    learned = run_one(small_off2, 1, "learned", mode="normalized", exploration=0.5, optimum=False)
    assert learned.observations > 0
    # after the first workflows, the learned figures place jobs better than the wrong spec
    assert learned.dynamic_ratio(4) < spec.dynamic_ratio(4)
    errors = [
        abs(j.attributed_j - j.true_j) / j.true_j
        for j in learned.jobs
        if j.attributed_j is not None
    ]
    assert errors and sorted(errors)[len(errors) // 2] < 0.05


def test_a_run_is_reproducible(small_off2) -> None:  # type: ignore[no-untyped-def]
    a = run_one(small_off2, 2, "learned", mode="normalized", exploration=0.5, optimum=False)
    b = run_one(small_off2, 2, "learned", mode="normalized", exploration=0.5, optimum=False)
    assert [(j.job, j.node) for j in a.jobs] == [(j.job, j.node) for j in b.jobs]
    assert a.energy_j == b.energy_j
