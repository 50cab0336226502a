"""FailedScheduling in kube-scheduler's exact form (upstream FitError.Error)."""

from __future__ import annotations

from energysched.core import ScheduleParams, fit_error_message, schedule_one
from energysched.core.state import build_snapshot
from tests.unit.core.core_helpers import NOW, node, pod


def test_upstream_example() -> None:
    hist = {"Insufficient cpu": 1, "node(s) didn't match Pod's node affinity/selector": 2}
    assert fit_error_message(3, hist) == (
        "0/3 nodes are available: 1 Insufficient cpu, "
        "2 node(s) didn't match Pod's node affinity/selector."
    )


def test_plain_string_sort_as_upstream() -> None:
    # "10 ..." sorts before "2 ..." (Go sort.Strings), and "Too" before "node(s)"
    hist = {"node(s) were unschedulable": 2, "Insufficient memory": 10, "Too many pods": 3}
    assert fit_error_message(15, hist) == (
        "0/15 nodes are available: 10 Insufficient memory, 2 node(s) were unschedulable, "
        "3 Too many pods."
    )


def test_no_nodes() -> None:
    assert fit_error_message(0, {}) == "no nodes available to schedule pods"


def test_decision_message_counts_every_reason_of_every_node() -> None:
    nodes = [
        node("a", cpu="1", memory="1Gi"),  # cpu and memory
        node("b", cpu="1"),  # cpu
        node(
            "c", labels={"zone": "x"}, taints=[{"key": "k", "value": "v", "effect": "NoSchedule"}]
        ),
        node("d", taints=[{"key": "k", "value": "v", "effect": "NoExecute"}]),
        node("e", taints=[{"key": "j", "effect": "NoSchedule"}]),
        node("f", unschedulable=True),
    ]
    snap = build_snapshot(nodes, now=NOW)
    for explain in (False, True):
        d = schedule_one(pod(cpu="2", memory="2Gi"), snap, ScheduleParams(), explain=explain)
        assert d.node is None
        assert d.failed_message == (
            "0/6 nodes are available: 1 Insufficient memory, 1 node(s) had untolerated taint "
            "{j: }, 1 node(s) were unschedulable, 2 Insufficient cpu, "
            "2 node(s) had untolerated taint {k: v}."
        )
        assert d.message == d.failed_message


def test_empty_cluster() -> None:
    snap = build_snapshot([], now=NOW)
    d = schedule_one(pod(), snap, ScheduleParams())
    assert d.node is None and d.failed_message == "no nodes available to schedule pods"
