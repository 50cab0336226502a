"""What consolidation reads from pod, node and PodDisruptionBudget objects."""

from __future__ import annotations

from typing import Any

import pytest

from energysched.contract import ASLEEP_TAINT_KEY
from energysched.powermanager import drain


def pod(**meta: Any) -> dict[str, Any]:
    spec = meta.pop("spec", {})
    return {
        "metadata": {"name": "p", "namespace": "ns", "uid": "u1", **meta},
        "spec": {"nodeName": "busy", "containers": [{"name": "c"}], **spec},
        "status": {"phase": "Running"},
    }


def node(name: str, labels: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": labels or {}},
        "spec": spec,
        "status": {"allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"}},
    }


def pdb(name: str, selector: Any, allowed: Any = None, ns: str = "ns") -> dict[str, Any]:
    obj: dict[str, Any] = {"metadata": {"name": name, "namespace": ns}, "spec": {}}
    if selector is not None:
        obj["spec"]["selector"] = selector
    if allowed is not None:
        obj["status"] = {"disruptionsAllowed": allowed}
    return obj


def test_the_controller_is_the_owner_marked_controller() -> None:
    assert drain.controller_kind(pod()) is None
    refs = [{"kind": "ConfigMap", "name": "x"}, {"kind": "ReplicaSet", "controller": True}]
    assert drain.controller_kind(pod(ownerReferences=refs)) == "ReplicaSet"
    assert drain.controller_kind(pod(ownerReferences=[{"kind": "Job"}])) is None
    assert drain.controller_kind(pod(ownerReferences="junk")) is None


def test_emptydir_and_hostpath_are_local_storage_configmaps_are_not() -> None:
    vols = [
        {"name": "cache", "emptyDir": {}},
        {"name": "logs", "hostPath": {"path": "/var/log"}},
        {"name": "cfg", "configMap": {"name": "x"}},
    ]
    assert drain.local_volumes(pod(spec={"volumes": vols})) == ("cache", "logs")
    assert drain.local_volumes(pod()) == ()


@pytest.mark.parametrize(
    ("annotations", "expected"),
    [
        ({}, None),
        ({"energy.thesis.io/safe-to-evict": "true"}, True),
        ({"energy.thesis.io/safe-to-evict": "false"}, False),
        ({"cluster-autoscaler.kubernetes.io/safe-to-evict": "false"}, False),
        ({"energy.thesis.io/safe-to-evict": "yes"}, None),  # only "true"/"false" mean anything
    ],
)
def test_safe_to_evict(annotations: dict[str, str], expected: bool | None) -> None:
    assert drain.safe_to_evict(pod(annotations=annotations)) is expected


def test_label_selectors_as_policy_v1_reads_them() -> None:
    labels = {"app": "web", "tier": "front"}
    assert drain.selector_matches({}, labels)  # empty: every pod of the namespace
    assert not drain.selector_matches(None, labels)  # none: no pod
    assert drain.selector_matches({"matchLabels": {"app": "web"}}, labels)
    assert not drain.selector_matches({"matchLabels": {"app": "db"}}, labels)
    expr = {"key": "tier", "operator": "In", "values": ["front", "back"]}
    assert drain.selector_matches({"matchExpressions": [expr]}, labels)
    assert not drain.selector_matches(
        {"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["front"]}]}, labels
    )
    assert drain.selector_matches(
        {"matchExpressions": [{"key": "zone", "operator": "DoesNotExist"}]}, labels
    )
    assert not drain.selector_matches(
        {"matchExpressions": [{"key": "zone", "operator": "Exists"}]}, labels
    )
    assert not drain.selector_matches(
        {"matchExpressions": [{"key": "app", "operator": "Bogus"}]}, labels
    )


def test_budgets_select_pods_of_their_namespace_and_allow_what_their_status_says() -> None:
    p = pod(labels={"app": "web"})
    budgets = [
        pdb("web", {"matchLabels": {"app": "web"}}, allowed=1),
        pdb("all", {}, allowed=0),
        pdb("other-ns", {}, ns="elsewhere"),
        pdb("db", {"matchLabels": {"app": "db"}}),
        pdb("fresh", {"matchLabels": {"app": "web"}}),  # no status yet
    ]
    assert drain.budgets_of(p, budgets) == ("ns/all", "ns/fresh", "ns/web")
    allowed = drain.disruptions_allowed(budgets)
    assert allowed["ns/web"] == 1 and allowed["ns/all"] == 0 and allowed["ns/fresh"] == 0
    assert drain.disruptions_allowed([pdb("odd", {}, allowed=True)]) == {"ns/odd": 0}


def test_admitted_by_runs_kube_schedulers_filters_resources_aside() -> None:
    nodes = drain.node_infos(
        [
            node("plain", {"zone": "a"}),
            node("other-zone", {"zone": "b"}),
            node("tainted", {"zone": "a"}, taints=[{"key": "gpu", "effect": "NoSchedule"}]),
            node(
                "asleep", {"zone": "a"}, taints=[{"key": ASLEEP_TAINT_KEY, "effect": "NoSchedule"}]
            ),
            node("cordoned", {"zone": "a"}, unschedulable=True),
        ]
    )
    p = pod(spec={"nodeSelector": {"zone": "a"}})
    assert drain.admitted_by(p, nodes) == {"plain"}
    tolerant = pod(spec={"tolerations": [{"key": "gpu", "operator": "Exists"}]})
    assert drain.admitted_by(tolerant, nodes) == {"plain", "other-zone", "tainted"}
    unreadable = pod(spec={"containers": "junk"})
    assert drain.admitted_by(unreadable, nodes) == frozenset()


def test_facts_of_a_deployment_pod() -> None:
    p = pod(
        labels={"app": "web"},
        ownerReferences=[{"kind": "ReplicaSet", "controller": True}],
        creationTimestamp="2020-01-01T00:00:00Z",
        spec={"containers": [{"name": "c", "resources": {"requests": {"cpu": "250m"}}}]},
    )
    p["status"]["startTime"] = "2020-01-01T00:00:10Z"
    facts = drain.pod_facts(p, [pdb("web", {"matchLabels": {"app": "web"}}, 1)], {})
    assert facts.key == "ns/p" and facts.controller == "ReplicaSet"
    assert facts.requests.cpu_milli == 250 and facts.budgets == ("ns/web",)
    assert facts.started == 1577836810.0  # startTime, not creation
    assert not facts.terminating and facts.local_volumes == ()
    assert drain.pod_facts(pod(deletionTimestamp="2020-01-01T00:00:00Z"), [], {}).terminating


def test_workload_leaves_out_daemonset_mirror_finished_and_unbound_pods() -> None:
    ds = pod(name="ds", ownerReferences=[{"kind": "DaemonSet", "controller": True}])
    mirror = pod(name="static", annotations={"kubernetes.io/config.mirror": "x"})
    done = pod(name="done")
    done["status"]["phase"] = "Succeeded"
    pending = pod(name="pending", spec={"nodeName": ""})
    work = pod(name="work")
    by_node = drain.workload_by_node([ds, mirror, done, pending, work])
    assert {n: [q["metadata"]["name"] for q in ps] for n, ps in by_node.items()} == {
        "busy": ["work"]
    }


def test_the_eviction_names_the_pod_and_its_uid() -> None:
    assert drain.eviction(pod()) == {
        "apiVersion": "policy/v1",
        "kind": "Eviction",
        "metadata": {"name": "p", "namespace": "ns"},
        "deleteOptions": {"preconditions": {"uid": "u1"}},
    }
