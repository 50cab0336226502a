"""Consolidation, the pure decision: evictable pods, room elsewhere, the sleep policy, worth it."""

from __future__ import annotations

import math
from typing import Any

import pytest

from energysched.kb.profiles import PowerStates
from energysched.power.consolidation import (
    ConsolidationConfig,
    DrainVerdict,
    PodFacts,
    choose_drain,
    drain_verdicts,
    pack,
    saving_joules,
)
from energysched.power.policy import NodeView, PolicyConfig, Resources

GI = 1024.0**3
# simulated figures: break-even 600 J / 36 W + 4 s = 20.67 s
BOX = PowerStates(
    sleep_watts=4.0, sleep_kind="suspend", suspend_seconds=4, wake_seconds=10, wake_joules=600
)
POLICY = PolicyConfig(hysteresis_seconds=10, min_awake_nodes=1, min_free_fraction=0.0)
ON = ConsolidationConfig(enabled=True, pod_restart_joules=100)
NOW = 10_000.0


def node(name: str, **kw: object) -> NodeView:
    base: dict[str, object] = {
        "name": name,
        "managed": True,
        "keep_awake": False,
        "state": "awake",
        "ready": True,
        "allocatable": Resources(4000, 8 * GI),
        "requested": Resources(),
        "workload_pods": 0,
        "empty_since": None,
        "idle_watts": 40.0,
        "power": BOX,
    }
    base.update(kw)
    return NodeView(**base)  # type: ignore[arg-type]


def pod(key: str, cpu: float = 500, **kw: Any) -> PodFacts:
    base: dict[str, object] = {
        "key": key,
        "requests": Resources(cpu, GI),
        "controller": "ReplicaSet",
        "admitted_by": frozenset({"spare", "other"}),
        "started": NOW - 3600,
    }
    base.update(kw)
    return PodFacts(**base)  # type: ignore[arg-type]


def busy(pods: list[PodFacts], **kw: object) -> NodeView:
    used = Resources(sum(p.requests.cpu_milli for p in pods), GI * len(pods))
    return node("busy", requested=used, workload_pods=len(pods), **kw)


def spare(**kw: object) -> NodeView:
    # unmanaged: it stays awake and counts towards minAwakeNodes
    return node("spare", managed=False, workload_pods=1, requested=Resources(1000, GI), **kw)


def verdicts(
    views: list[NodeView],
    pods: dict[str, list[PodFacts]],
    allowed: dict[str, int] | None = None,
    config: ConsolidationConfig = ON,
    policy_config: PolicyConfig = POLICY,
) -> list[DrainVerdict]:
    return drain_verdicts(views, pods, allowed or {}, NOW, policy_config, config)


def test_a_quiet_node_with_evictable_pods_that_fit_elsewhere_is_drained() -> None:
    pods = [pod("ns/a"), pod("ns/b", cpu=1000)]
    (v,) = verdicts([busy(pods), spare()], {"busy": pods})
    assert v.drain and v.reason is None
    assert dict(v.placement) == {"ns/a": "spare", "ns/b": "spare"}
    # saving = (40 - 4) W x (3600 s - break-even 20.67 s); cost = 2 x 100 J
    assert v.saving_joules == pytest.approx(36 * (3600 - (600 / 36 + 4)))
    assert v.cost_joules == 200
    assert choose_drain([v]) == v


@pytest.mark.parametrize(
    ("facts", "reason", "named"),
    [
        ({"controller": None}, "no-controller", "no controller"),
        ({"controller": "Job"}, "job-pod", "Job"),
        ({"local_volumes": ("scratch",)}, "local-storage", "scratch"),
        ({"safe_to_evict": False}, "not-safe-to-evict", "safe-to-evict"),
        ({"terminating": True}, "pod-terminating", "terminating"),
    ],
)
def test_a_pod_that_cannot_be_evicted_blocks_the_drain_and_is_named(
    facts: dict[str, Any], reason: str, named: str
) -> None:
    pods = [pod("ns/fine"), pod("ns/stuck", **facts)]
    (v,) = verdicts([busy(pods), spare()], {"busy": pods})
    assert not v.drain and v.reason == reason
    assert "ns/stuck" in v.message and named in v.message
    assert choose_drain([v]) is None


def test_safe_to_evict_true_waives_the_local_storage_rule_only() -> None:
    pods = [pod("ns/a", local_volumes=("cache",), safe_to_evict=True)]
    (v,) = verdicts([busy(pods), spare()], {"busy": pods})
    assert v.drain
    pods = [pod("ns/a", controller=None, safe_to_evict=True)]
    (v,) = verdicts([busy(pods), spare()], {"busy": pods})
    assert v.reason == "no-controller"


def test_a_budget_must_allow_as_many_disruptions_as_the_node_has_of_its_pods() -> None:
    pods = [pod("ns/a", budgets=("ns/web",)), pod("ns/b", budgets=("ns/web",))]
    views = [busy(pods), spare()]
    (v,) = verdicts(views, {"busy": pods}, {"ns/web": 1})
    assert v.reason == "pdb"
    assert "ns/web allows 1 disruption(s), the node runs 2" in v.message
    (v,) = verdicts(views, {"busy": pods}, {"ns/web": 0})
    assert v.reason == "pdb"
    (v,) = verdicts(views, {"busy": pods}, {})  # no status yet: allows nothing
    assert v.reason == "pdb"
    (v,) = verdicts(views, {"busy": pods}, {"ns/web": 2})
    assert v.drain


def test_a_node_that_received_work_recently_is_not_quiet() -> None:
    hold = 600 / 36 + 4 + 10
    pods = [pod("ns/a"), pod("ns/new", started=NOW - hold + 1)]
    (v,) = verdicts([busy(pods), spare()], {"busy": pods})
    assert v.reason == "quiet-too-briefly"
    pods = [pod("ns/a"), pod("ns/new", started=None)]  # unknown start: counts as now
    (v,) = verdicts([busy(pods), spare()], {"busy": pods})
    assert v.reason == "quiet-too-briefly"
    pods = [pod("ns/a"), pod("ns/new", started=NOW - hold - 1)]
    (v,) = verdicts([busy(pods), spare()], {"busy": pods}, config=ConsolidationConfig(True, 0.0))
    assert v.drain


def test_pods_must_fit_nodes_that_admit_them_and_are_awake() -> None:
    pods = [pod("ns/a", cpu=3500)]
    (v,) = verdicts([busy(pods), spare()], {"busy": pods})  # spare has 3000 m free
    assert v.reason == "no-room" and "ns/a" in v.message
    pods = [pod("ns/a", admitted_by=frozenset({"other"}))]  # spare's taints refuse it
    (v,) = verdicts([busy(pods), spare()], {"busy": pods})
    assert v.reason == "no-room"
    pods = [pod("ns/a")]
    for asleep in (spare(state="asleep"), spare(ready=False), spare(state="draining")):
        (v,) = verdicts([busy(pods), asleep], {"busy": pods})
        assert v.reason == "no-room", asleep


def test_pods_are_packed_first_fit_decreasing() -> None:
    both = frozenset({"a", "b"})
    pods = [
        pod("ns/s2", cpu=1000, admitted_by=frozenset({"b"})),
        pod("ns/s1", cpu=1000, admitted_by=both),
        pod("ns/big", cpu=3000, admitted_by=both),
    ]
    free = {"a": Resources(3500, 8 * GI), "b": Resources(1500, 8 * GI)}
    placement, unplaced = pack(pods, free)
    # the biggest first, then by name: s1 takes b's room, s2 (only b admits it) has none left
    assert placement == {"ns/big": "a", "ns/s1": "b"}
    assert [p.key for p in unplaced] == ["ns/s2"]


def test_the_sleep_policy_decides_with_the_moved_pods_counted() -> None:
    pods = [pod("ns/a", cpu=2000)]
    strict = PolicyConfig(hysteresis_seconds=10, min_awake_nodes=1, min_free_fraction=0.3)
    # spare: 1000 + 2000 of 4000 m used after the move -> 25 % free < 30 %
    (v,) = verdicts([busy(pods), spare()], {"busy": pods}, policy_config=strict)
    assert v.reason == "sleep-policy" and "CPU" in v.message
    # no node would be left awake
    pods = [pod("ns/a", admitted_by=frozenset({"twin"}))]
    twin = node("twin", workload_pods=1, requested=Resources(100, GI), idle_watts=50.0)
    (v, _) = verdicts([busy(pods), twin], {"busy": pods})
    assert v.node == "busy" and v.reason == "sleep-policy"
    assert "the headroom policy keeps 1" in v.message


def test_it_must_save_more_than_the_restarts_cost() -> None:
    pods = [pod("ns/a", started=NOW - 100)]
    # saving 36 W x (100 - 20.67) s = 2856 J
    expensive = ConsolidationConfig(True, pod_restart_joules=3000)
    (v,) = verdicts([busy(pods), spare()], {"busy": pods}, config=expensive)
    assert v.reason == "not-worth-it"
    assert v.saving_joules == pytest.approx(36 * (100 - 600 / 36 - 4))
    assert "2856 J" in v.message and "3000 J" in v.message
    (v,) = verdicts([busy(pods), spare()], {"busy": pods}, config=ConsolidationConfig(True, 2800))
    assert v.drain


def test_only_managed_awake_busy_nodes_with_figures_get_a_verdict() -> None:
    pods = [pod("ns/a")]
    for other in (
        busy(pods, managed=False),
        busy(pods, keep_awake=True),
        busy(pods, state="asleep"),
        busy(pods, ready=False),
        busy(pods, power=None),
        busy(pods, idle_watts=None),
        node("busy"),  # empty: the sleep policy's business
    ):
        assert verdicts([other, spare()], {"busy": pods}) == []


def test_no_saving_when_sleep_draws_as_much_as_idle() -> None:
    assert saving_joules(node("n", idle_watts=4.0), 3600) == -math.inf


def test_the_largest_net_saving_is_drained_first() -> None:
    a = DrainVerdict("a", True, None, "", 1000, 100)
    b = DrainVerdict("b", True, None, "", 2000, 100)
    c = DrainVerdict("c", True, None, "", 2000, 100)
    no = DrainVerdict("d", False, "pdb", "", 9000, 0)
    assert choose_drain([no, c, a, b]) == b


def test_the_config_refuses_negative_or_nan_figures() -> None:
    with pytest.raises(ValueError, match="pod_restart_joules"):
        ConsolidationConfig(True, pod_restart_joules=-1)
    with pytest.raises(ValueError, match="drain_timeout_seconds"):
        ConsolidationConfig(True, drain_timeout_seconds=math.nan)
