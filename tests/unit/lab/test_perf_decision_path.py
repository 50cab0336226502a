"""The in-process replay of the live decision path schedules its whole backlog."""

from __future__ import annotations

import pytest

from energysched.core.framework import schedule_one
from energysched.scheduler import controller
from energysched_lab.perf import decision_path


@pytest.mark.parametrize("mode", ["normalized", "hybrid"])
def test_replay_schedules_every_pod_through_the_real_handlers(
    mode: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert decision_path.main(["--nodes", "30", "--pods", "40", "--mode", mode]) == 0
    out = capsys.readouterr().out
    assert f"33 nodes, 40 pods, mode {mode}" in out
    assert "whole attempt (schedule_key)" in out
    assert controller.schedule_one is schedule_one  # the timing wrapper is gone again
