"""The EnergyProfile operator against the real control plane (run by kopf's KopfRunner)."""

from __future__ import annotations

from typing import Any

from energysched import contract
from energysched.kb.io import load_profiles
from energysched.kb.validate import best_efficiency
from energysched.kube.client import KubeClient, api_path
from energysched.operator.runtime import OperatorRuntime
from tests.integration.operator.conftest import ClusterObjects, profile_manifest
from tests.support import ROOT, Kubectl, wait_for

TIMEOUT = 30


async def _profile(kube: KubeClient, name: str) -> dict[str, Any]:
    return await kube.get(api_path(contract.API_VERSION, contract.PROFILE_PLURAL, name=name))


def _valid(obj: dict[str, Any]) -> dict[str, Any] | None:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Valid":
            return dict(c)
    return None


async def _status_when(kube: KubeClient, name: str, check: Any, what: str) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        obj = await _profile(kube, name)
        return obj if check(obj.get("status") or {}) else None

    obj: dict[str, Any] = await wait_for(probe, TIMEOUT, what)
    return obj


async def _warnings(kube: KubeClient, kind: str, name: str, reason: str) -> list[dict[str, Any]]:
    events = (await kube.get(api_path("events.k8s.io/v1", "events", "default")))["items"]
    return [
        e
        for e in events
        if e.get("reason") == reason
        and e.get("type") == "Warning"
        and (e.get("regarding") or {}).get("kind") == kind
        and (e.get("regarding") or {}).get("name") == name
    ]


async def test_kb_profiles_are_valid_and_matched_to_their_nodes(
    kube: KubeClient, operator: OperatorRuntime
) -> None:
    kb = load_profiles(ROOT / "kb" / "profiles").knowledge_base()
    for name in ("tvpc", "wyse", "rpi"):
        obj = await _status_when(
            kube, name, lambda s, n=name: s.get("matchedNodes") == [n], f"{name} matched"
        )
        status = obj["status"]
        cond = _valid(obj)
        assert cond is not None
        assert (cond["status"], cond["reason"]) == ("True", "Validated")
        assert cond["observedGeneration"] == obj["metadata"]["generation"]
        assert status["observedGeneration"] == obj["metadata"]["generation"]
        assert status["matchedNodeCount"] == 1
        assert status["bestEfficiency"] == best_efficiency(kb.profiles[name])


async def test_invalid_profile_gets_valid_false_naming_the_field(
    kube: KubeClient, operator: OperatorRuntime, objects: ClusterObjects
) -> None:
    workloads = {"training": {"performance": 10, "powerWatts": 2.5}}
    name = await objects.profile(
        "bad", {"kubernetes.io/hostname": "nowhere"}, idlePowerWatts=6, workloads=workloads
    )
    obj = await _status_when(
        kube, name, lambda s: s.get("conditions"), "a Valid condition on the invalid profile"
    )
    cond = _valid(obj)
    assert cond is not None
    assert (cond["status"], cond["reason"]) == ("False", "InvalidSpec")
    assert "spec.workloads.training.powerWatts" in cond["message"]
    assert "2.5" in cond["message"] and "idlePowerWatts 6" in cond["message"]
    assert obj["status"]["matchedNodes"] == [] and "bestEfficiency" not in obj["status"]
    events = await wait_for(
        lambda: _warnings(kube, contract.PROFILE_KIND, name, "InvalidSpec"), TIMEOUT, "event"
    )
    assert "spec.workloads.training.powerWatts" in events[0]["note"]


def test_schema_invalid_profile_is_rejected_by_the_api_server(kubectl: Kubectl) -> None:
    import yaml

    bad = profile_manifest("optest-schema", {"kubernetes.io/hostname": "x"}, idlePowerWatts=-3)
    out = kubectl("apply", "-f", "-", input=yaml.safe_dump(bad), check=False)
    assert "spec.idlePowerWatts" in out and "-3" in out
    # Through the short name, so the test also proves it resolves to our kind (a name
    # shadowed by core Endpoints would answer NotFound for any reason).
    assert 'energyprofiles.energy.thesis.io "optest-schema" not found' in kubectl(
        "get", contract.PROFILE_SHORT_NAME, "optest-schema", check=False
    )


async def test_node_added_relabelled_and_deleted_updates_matched_nodes(
    kube: KubeClient, operator: OperatorRuntime, objects: ClusterObjects
) -> None:
    label = f"{contract.GROUP}/test-class"
    klass = await objects.profile("klass", {label: objects.prefix})
    n1 = await objects.node("n1", {label: objects.prefix})
    await _status_when(kube, klass, lambda s: s.get("matchedNodes") == [n1], "n1 matched")
    n2 = await objects.node("n2", {label: objects.prefix})
    obj = await _status_when(
        kube, klass, lambda s: s.get("matchedNodes") == sorted([n1, n2]), "n1, n2 matched"
    )
    assert obj["status"]["matchedNodeCount"] == 2
    await kube.patch(api_path("v1", "nodes", name=n1), {"metadata": {"labels": {label: None}}})
    await _status_when(kube, klass, lambda s: s.get("matchedNodes") == [n2], "n1 relabelled")
    # n1 is Ready and now matched by no profile: one Warning on the node.
    events = await wait_for(
        lambda: _warnings(kube, "Node", n1, "NoEnergyProfile"), TIMEOUT, "NoEnergyProfile"
    )
    assert n1 in events[0]["note"]
    await kube.delete(api_path("v1", "nodes", name=n2))
    await _status_when(kube, klass, lambda s: s.get("matchedNodes") == [], "n2 deleted")


async def test_overlapping_profiles_warn_naming_the_winner(
    kube: KubeClient, operator: OperatorRuntime, objects: ClusterObjects
) -> None:
    label = f"{contract.GROUP}/test-class"
    node = await objects.node("ov", {label: objects.prefix})
    klass = await objects.profile("klass", {label: objects.prefix})
    await _status_when(kube, klass, lambda s: s.get("matchedNodes") == [node], "class matched")
    host = await objects.profile("host", {"kubernetes.io/hostname": node, label: objects.prefix})
    await _status_when(kube, host, lambda s: s.get("matchedNodes") == [node], "host wins")
    await _status_when(kube, klass, lambda s: s.get("matchedNodes") == [], "class loses")
    node_events = await wait_for(
        lambda: _warnings(kube, "Node", node, "ProfileOverlap"), TIMEOUT, "node overlap event"
    )
    assert f"'{host}' wins" in node_events[0]["note"] and klass in node_events[0]["note"]
    for name in (host, klass):
        events = await wait_for(
            lambda n=name: _warnings(kube, contract.PROFILE_KIND, n, "ProfileOverlap"),
            TIMEOUT,
            f"overlap event on {name}",
        )
        assert f"'{host}' wins" in events[0]["note"]
    # Reported once per situation, not per resync or status echo.
    passes = operator.passes
    await wait_for(lambda: _after(operator, passes), TIMEOUT, "another reconcile pass")
    assert len(await _warnings(kube, "Node", node, "ProfileOverlap")) == 1


async def _after(operator: OperatorRuntime, passes: int) -> bool:
    operator.mark_dirty_threadsafe()
    return operator.passes > passes
