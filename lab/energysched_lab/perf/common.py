"""Names and the log line shared by the modules of ``make perf``."""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
ALGO_METRIC = "energysched_scheduling_algorithm_duration_seconds"
KUBE_ALGO_METRIC = "scheduler_scheduling_algorithm_duration_seconds"
#: energysched only: the algorithm's own CPU time (kube-scheduler has no such metric).
ALGO_CPU_METRIC = "energysched_scheduling_algorithm_cpu_seconds"
#: energysched: one pod's whole scheduling cycle on the loop (snapshot and assume included).
ATTEMPT_METRIC = "energysched_scheduling_attempt_duration_seconds"
#: kube-scheduler: scheduling algorithm + binding, per attempt.
KUBE_ATTEMPT_METRIC = "scheduler_scheduling_attempt_duration_seconds"
KUBE_SCHEDULER = "kube-scheduler"
ENERGYSCHED = "energysched"
MIB = 1 << 20


def say(msg: str) -> None:
    print(f"[perf {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)
