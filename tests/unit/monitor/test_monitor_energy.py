"""The energy integrator: counters first (reset, wrap), else the trapezoid without gaps."""

from __future__ import annotations

import pytest

from energysched_monitor.energy import EnergyIntegrator
from energysched_monitor.readings import Reading


def plug(watts: float, counter_j: float | None) -> Reading:
    return Reading(watts, "shelly", energy_joules=counter_j)


def rapl(watts: float, counter_j: float, range_j: float) -> Reading:
    return Reading(
        watts, "rapl", estimate=True, energy_joules=counter_j, counter_range_joules=range_j
    )


def test_first_sample_adds_nothing() -> None:
    integ = EnergyIntegrator(gap_seconds=15)
    step = integ.update(0.0, plug(100, 5000))
    assert step.kind == "first" and step.delta_joules == 0 and integ.total_joules == 0


def test_counter_deltas_are_summed_exactly() -> None:
    integ = EnergyIntegrator(gap_seconds=15)
    integ.update(0.0, plug(100, 1000))
    integ.update(5.0, plug(100, 1500))
    integ.update(10.0, plug(100, 2000))
    assert integ.total_joules == pytest.approx(1000)


def test_counter_bridges_a_long_gap() -> None:
    """Counters measured the whole time, so a gap in polling loses nothing."""
    integ = EnergyIntegrator(gap_seconds=15)
    integ.update(0.0, plug(100, 0))
    step = integ.update(600.0, plug(100, 60_000))
    assert step.kind == "counter" and integ.total_joules == pytest.approx(60_000)


def test_reset_counts_the_new_value_never_negative_never_doubled() -> None:
    integ = EnergyIntegrator(gap_seconds=15)
    integ.update(0.0, plug(100, 90_000))
    integ.update(5.0, plug(100, 90_500))  # +500
    step = integ.update(10.0, plug(100, 120))  # rebooted: 120 J since the reset
    # The gap is short: the trapezoid (500 J) beats the 120 J the new counter saw.
    assert step.kind == "reset" and step.delta_joules == pytest.approx(500)
    integ.update(15.0, plug(100, 620))  # +500 after the reboot
    assert integ.total_joules == pytest.approx(500 + 500 + 500)


def test_reset_after_a_long_gap_counts_the_new_value_only() -> None:
    integ = EnergyIntegrator(gap_seconds=15)
    integ.update(0.0, plug(100, 90_000))
    step = integ.update(60.0, plug(100, 1_200))  # nobody measured most of the minute
    assert step.kind == "reset" and step.delta_joules == pytest.approx(1_200)


def up(watts: float, counter_j: float, uptime: float) -> Reading:
    return Reading(watts, "shelly", energy_joules=counter_j, uptime_seconds=uptime)


def test_uptime_reveals_a_reboot_the_counter_hides() -> None:
    """Rebooted during a 10 s outage: the new counter (600 J in 6 s) is higher than the
    old one (300 J), so only the uptime shows the reset. The 4 s before the boot count
    at the average power, the 6 s after it as the counter says."""
    integ = EnergyIntegrator(gap_seconds=15)
    integ.update(0.0, up(100, 200, 500))
    integ.update(1.0, up(100, 300, 501))
    step = integ.update(11.0, up(100, 600, 6))
    assert step.kind == "reboot"
    # unmeasured: 10 s - 6 s of uptime - 0.5 s (uptimes are rounded down)
    assert step.delta_joules == pytest.approx(600 + 100 * 3.5)


def test_uptime_that_kept_counting_is_no_reboot() -> None:
    integ = EnergyIntegrator(gap_seconds=15)
    integ.update(0.0, up(100, 200, 500))
    step = integ.update(10.0, up(100, 1_200, 509))  # a whole second of rounding: still up
    assert step.kind == "counter" and step.delta_joules == pytest.approx(1_000)
    step = integ.update(20.0, up(100, 2_200, 510))  # 10 s passed, uptime moved 1 s
    assert step.kind == "reboot"


def test_clock_drift_over_a_long_gap_is_no_reboot() -> None:
    integ = EnergyIntegrator(gap_seconds=15)
    integ.update(0.0, up(10, 200, 500))
    # A day without a sample; the plug's clock ran 40 s (460 ppm) slow meanwhile.
    step = integ.update(86_400.0, up(10, 864_200, 500 + 86_360))
    assert step.kind == "counter" and step.delta_joules == pytest.approx(864_000)


def test_reboot_long_before_the_sample_counts_the_counter_only() -> None:
    integ = EnergyIntegrator(gap_seconds=15)
    integ.update(0.0, up(100, 200, 500))
    step = integ.update(100.0, up(100, 5_000, 50))  # 49.5 s unmeasured: not invented
    assert step.kind == "reboot" and step.delta_joules == pytest.approx(5_000)


def test_wrap_adds_the_range() -> None:
    rng = 262_143.328850  # a typical max_energy_range_uj / 1e6
    integ = EnergyIntegrator(gap_seconds=15)
    integ.update(0.0, rapl(40, rng - 100.0, rng))
    step = integ.update(5.0, rapl(40, 100.0, rng))
    assert step.kind == "wrap" and step.delta_joules == pytest.approx(200.0)


def test_trapezoid_without_counters() -> None:
    integ = EnergyIntegrator(gap_seconds=15)
    integ.update(0.0, plug(10, None))
    step = integ.update(5.0, plug(20, None))
    assert step.kind == "trapezoid" and step.delta_joules == pytest.approx(75.0)
    integ.update(10.0, plug(20, None))
    assert integ.total_joules == pytest.approx(75.0 + 100.0)


def test_trapezoid_does_not_bridge_a_gap() -> None:
    integ = EnergyIntegrator(gap_seconds=15)
    integ.update(0.0, plug(100, None))
    step = integ.update(60.0, plug(100, None))  # 4 poll intervals without samples
    assert step.kind == "gap" and step.delta_joules == 0
    step = integ.update(65.0, plug(100, None))  # and it resumes from the new sample
    assert step.kind == "trapezoid" and integ.total_joules == pytest.approx(500.0)


def test_gap_limit_is_inclusive() -> None:
    integ = EnergyIntegrator(gap_seconds=15)
    integ.update(0.0, plug(10, None))
    assert integ.update(15.0, plug(10, None)).kind == "trapezoid"


def test_mixed_counter_and_no_counter_uses_trapezoid() -> None:
    integ = EnergyIntegrator(gap_seconds=15)
    integ.update(0.0, plug(10, 1000))
    assert integ.update(5.0, plug(10, None)).kind == "trapezoid"
    assert integ.update(10.0, plug(10, 2000)).kind == "trapezoid"
    assert integ.total_joules == pytest.approx(100.0)


def test_implausible_counter_jump_falls_back_to_trapezoid() -> None:
    integ = EnergyIntegrator(gap_seconds=15, max_watts=100)
    integ.update(0.0, plug(50, 0))
    step = integ.update(5.0, plug(50, 1e9))  # 200 MW for 5 s: a glitch, not energy
    assert step.kind == "implausible" and step.delta_joules == pytest.approx(250.0)


def test_non_increasing_time_adds_nothing() -> None:
    integ = EnergyIntegrator(gap_seconds=15)
    integ.update(5.0, plug(10, None))
    assert integ.update(5.0, plug(10, None)).delta_joules == 0


def test_rebase_keeps_the_total_and_forgets_the_counter() -> None:
    integ = EnergyIntegrator(gap_seconds=15)
    integ.update(0.0, plug(10, 100))
    integ.update(5.0, plug(10, 150))
    integ.rebase()  # another meter now; its counter starts anywhere
    assert integ.update(10.0, plug(10, 999_999)).kind == "first"
    assert integ.total_joules == pytest.approx(50)


def test_gap_seconds_must_be_positive() -> None:
    with pytest.raises(ValueError):
        EnergyIntegrator(gap_seconds=0)
