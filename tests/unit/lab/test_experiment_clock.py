"""The simulated clock stands still while a pod waits for its scheduler."""

from __future__ import annotations

import time

from energysched_lab.experiment.simulator import SimClock, job_manifest
from tests.unit.lab.experiment_helpers import job


def test_held_clock_does_not_move_and_resumes_where_it_stopped() -> None:
    clock = SimClock(0.001)  # 1 ms wall per simulated second
    time.sleep(0.01)
    clock.hold()
    held = clock.now()
    assert held >= 10.0
    time.sleep(0.02)
    assert clock.now() == held
    assert clock.wall_until(held + 5) == float("inf")
    clock.release()
    assert clock.now() >= held  # runs on from where it stood, no jump back


def test_hold_at_a_past_moment_forgives_the_lag() -> None:
    clock = SimClock(0.001)
    time.sleep(0.02)
    clock.hold(at=3.0)  # a release that was due at t = 3 s, noticed at ~20 s
    assert clock.now() == 3.0
    clock.hold(at=1.0)  # nested holds keep the first moment
    clock.release()
    assert clock.now() == 3.0
    clock.release()
    assert clock.holds == 0


def test_job_manifest_carries_scheduler_type_and_weight_but_no_weight_for_kube() -> None:
    j = job("wf01-training", "training", 10.0)
    es = job_manifest(j, run_id="r", scheduler_name="energy-scheduler", weight=0.25, image="i")
    tmpl = es["spec"]["template"]
    assert tmpl["spec"]["schedulerName"] == "energy-scheduler"
    assert tmpl["metadata"]["labels"]["energy.thesis.io/workload-type"] == "training"
    assert tmpl["metadata"]["annotations"] == {
        "energy.thesis.io/performance-weight": "0.25",
        "energy.thesis.io/work": "10",  # declared as a user would; cluster-energy reads it
    }
    ks = job_manifest(j, run_id="r", scheduler_name="default-scheduler", weight=None, image="i")
    assert ks["spec"]["template"]["metadata"]["annotations"] == {"energy.thesis.io/work": "10"}
    scaled = job_manifest(
        j, run_id="r", scheduler_name="x", weight=None, image="i", work_scale=0.01
    )
    assert scaled["spec"]["template"]["metadata"]["annotations"] == {"energy.thesis.io/work": "0.1"}
