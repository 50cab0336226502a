"""The power-agent component (manifests/components/power-agent) as it runs: its DaemonSet on
the opted-in real node, under its own account, at the namespace's raised Pod Security level,
with the host's D-Bus socket its one privilege. A fake logind owns that socket (nothing is
suspended): the agent refuses while a workload pod runs on its node and calls Suspend once
the node is empty.

The socket is the only thing changed from the component: on this machine the system bus is
not running, so the hostPath points at the fake bus instead of /run/dbus/system_bus_socket.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import pwd
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from energysched import contract
from energysched_lab.cluster import realnode
from energysched_lab.fake_logind import FakeLogind
from tests.eventually import eventually_sync
from tests.integration.deploy.conftest import NAMESPACE
from tests.support import ROOT, Kubectl

AGENT = "energysched-power-agent"
AGENT_UID = 10001
NODE = realnode.NODE_NAME


@pytest.fixture
def host_bus() -> Iterator[FakeLogind]:
    """A fake logind on a bus socket the agent's uid (10001) can reach through a hostPath."""
    assert shutil.which("dbus-daemon"), "dbus-daemon is not installed (Debian: dbus-daemon)"
    # As on a real opted-in host (README): the bus resets a connection from an unknown uid.
    try:
        pwd.getpwuid(AGENT_UID)
    except KeyError:
        raise AssertionError(
            f"the host has no user with uid {AGENT_UID}, the agent's (README: useradd --system "
            f"--uid {AGENT_UID} ... energysched-agent; .ci/run does it)"
        ) from None
    directory = Path("/run") / f"energysched-test-bus-{uuid.uuid4().hex[:8]}"
    directory.mkdir(mode=0o755)
    os.chmod(directory, 0o755)  # mkdir's mode is masked by the umask
    bus = FakeLogind(directory)
    bus.start()
    try:
        yield bus
    finally:
        bus.stop()
        shutil.rmtree(directory, ignore_errors=True)


def component_objects(tmp_path: Path, rk: Kubectl, bus: FakeLogind) -> list[dict[str, Any]]:
    """The local overlay with the component, rendered; the Namespace (its Pod Security labels
    raised by the component) and the component's own objects, the socket pointed at the
    fake bus and the image taken from the node's containerd as the overlay does."""
    here = tmp_path / "overlay"
    here.mkdir()
    (here / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                # kustomize refuses absolute roots; a relative path may climb out.
                "resources": [os.path.relpath(ROOT / "manifests/overlays/local", here)],
                "components": [os.path.relpath(ROOT / "manifests/components/power-agent", here)],
                "images": [{"name": "energysched", "newName": "energysched", "newTag": "dev"}],
            }
        )
    )
    docs = [d for d in yaml.safe_load_all(rk("kustomize", str(here))) if d]
    picked = []
    for doc in docs:
        labels = doc["metadata"].get("labels") or {}
        if doc["kind"] == "Namespace" or labels.get("app.kubernetes.io/name") == AGENT:
            picked.append(doc)
    kinds = sorted(d["kind"] for d in picked)
    assert kinds == [
        "ClusterRole",
        "ClusterRoleBinding",
        "DaemonSet",
        "Namespace",
        "ServiceAccount",
    ], kinds
    (ds,) = [d for d in picked if d["kind"] == "DaemonSet"]
    pod = ds["spec"]["template"]["spec"]
    (volume,) = [v for v in pod["volumes"] if "hostPath" in v]
    assert volume["hostPath"] == {"path": "/run/dbus/system_bus_socket", "type": "Socket"}
    volume["hostPath"]["path"] = str(bus.socket)
    pod["containers"][0]["imagePullPolicy"] = "Never"
    return picked


def workload_pods_on_node(rk: Kubectl) -> list[str]:
    """What the agent counts as work on the node: not DaemonSet or mirror pods, not finished."""
    pods = json.loads(
        rk("get", "pods", "-A", f"--field-selector=spec.nodeName={NODE}", "-o", "json")
    )["items"]
    out = []
    for p in pods:
        meta = p["metadata"]
        owners = {o.get("kind") for o in meta.get("ownerReferences") or []}
        mirror = "kubernetes.io/config.mirror" in (meta.get("annotations") or {})
        finished = p["status"].get("phase") in ("Succeeded", "Failed")
        if "DaemonSet" not in owners and not mirror and not finished:
            out.append(f"{meta['namespace']}/{meta['name']}")
    return out


def request_sleep(rk: Kubectl) -> str:
    """What the power manager writes before the agent acts (state, then a fresh request)."""
    at = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    rk(
        "annotate", "--overwrite", "node", NODE,
        f"{contract.POWER_STATE_ANNOTATION}=draining",
        f"{contract.SLEEP_REQUESTED_ANNOTATION}={at} suspend",
    )  # fmt: skip
    return at


def agent_log(rk: Kubectl) -> str:
    return rk("-n", NAMESPACE, "logs", f"ds/{AGENT}", "--tail=200", check=False)


def test_power_agent_component_suspends_its_empty_node_through_logind(
    deployed: str, rk: Kubectl, host_bus: FakeLogind, tmp_path: Path
) -> None:
    objects = component_objects(tmp_path, rk, host_bus)
    deployments = json.loads(rk("-n", NAMESPACE, "get", "deployments", "-o", "json"))["items"]
    replicas = {d["metadata"]["name"]: d["spec"]["replicas"] for d in deployments}
    test_ns = f"agent-{uuid.uuid4().hex[:6]}"
    try:
        # The node must run no workload for the agent to act: the deployed Deployments (the
        # power manager among them, which would otherwise hand the node back) go to zero.
        rk("-n", NAMESPACE, "scale", "deployment", "--all", "--replicas=0")
        eventually_sync(
            lambda: workload_pods_on_node(rk),
            until=lambda pods: not pods,
            timeout=180,
            what=f"no workload pod on {NODE}",
        )
        rk("apply", "-f", "-", input=yaml.safe_dump_all(objects))
        rk("label", "--overwrite", "node", NODE, f"{contract.POWER_MANAGEMENT_LABEL}=enabled")

        def agent_ready() -> dict[str, Any]:
            ds = json.loads(rk("-n", NAMESPACE, "get", "ds", AGENT, "-o", "json"))
            return dict(ds.get("status") or {})

        status = eventually_sync(
            agent_ready,
            until=lambda s: s.get("numberReady") == 1,
            timeout=180,
            what="the agent's DaemonSet ready on the opted-in real node",
        )
        # Only the opted-in node: the KWOK nodes have no label and get no agent.
        assert status["desiredNumberScheduled"] == 1, status
        (pod,) = json.loads(
            rk(
                "-n",
                NAMESPACE,
                "get",
                "pods",
                "-l",
                f"app.kubernetes.io/name={AGENT}",
                "-o",
                "json",
            )
        )["items"]
        assert pod["spec"]["nodeName"] == NODE
        assert pod["spec"]["serviceAccountName"] == AGENT
        assert pod["spec"]["securityContext"]["runAsUser"] == AGENT_UID
        assert not pod["spec"]["containers"][0]["securityContext"].get("privileged")

        # A workload pod on the node: the agent looks (its log says why not) and does nothing.
        rk("create", "namespace", test_ns)
        eventually_sync(
            lambda: rk("-n", test_ns, "get", "sa", "-o", "name", check=False),
            until=lambda accounts: "default" in accounts,
            timeout=60,
            what=f"the default ServiceAccount in {test_ns}",
        )
        stays = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "stays", "namespace": test_ns},
            "spec": {
                "nodeSelector": {realnode.REAL_NODE_LABEL: "true"},
                "containers": [
                    {"name": "main", "image": realnode.PAUSE_IMAGE, "imagePullPolicy": "Never"}
                ],
            },
        }
        rk("apply", "-f", "-", input=json.dumps(stays))
        rk("-n", test_ns, "wait", "--for=condition=Ready", "pod/stays", "--timeout=120s")
        rk("taint", "--overwrite", "node", NODE, f"{contract.ASLEEP_TAINT_KEY}=:NoSchedule")
        request_sleep(rk)
        eventually_sync(
            lambda: agent_log(rk),
            until=lambda log: f"pods run on the node: {test_ns}/stays" in log,
            timeout=60,
            what="the agent to refuse while a workload pod runs",
        )
        assert host_bus.calls == []

        # The node empty and a new request: one Suspend, through the host's socket, as uid
        # 10001 (the fake bus allows any user, as the system bus does; polkit is the host's).
        rk("-n", test_ns, "delete", "pod", "stays", "--grace-period=0", "--force")
        eventually_sync(
            lambda: workload_pods_on_node(rk),
            until=lambda pods: not pods,
            timeout=60,
            what=f"the pod gone from {NODE}",
        )
        request_sleep(rk)
        calls = eventually_sync(
            lambda: list(host_bus.calls),
            until=bool,
            timeout=60,
            what="the agent's Suspend on the fake logind",
        )
        assert calls == [("Suspend", False)], (calls, agent_log(rk))
    finally:
        print(agent_log(rk)[-3000:])
        rk("delete", "namespace", test_ns, "--wait=false", check=False)
        rk(
            "annotate", "node", NODE,
            f"{contract.POWER_STATE_ANNOTATION}-", f"{contract.SLEEP_REQUESTED_ANNOTATION}-",
            check=False,
        )  # fmt: skip
        rk("taint", "node", NODE, f"{contract.ASLEEP_TAINT_KEY}:NoSchedule-", check=False)
        rk("label", "node", NODE, f"{contract.POWER_MANAGEMENT_LABEL}-", check=False)
        for obj in objects:
            if obj["kind"] != "Namespace":
                rk("delete", "--wait=false", "-f", "-", input=json.dumps(obj), check=False)
        # The namespace back at the base's Pod Security level; the Deployments back up.
        base_ns = [
            d
            for d in yaml.safe_load_all(rk("kustomize", str(ROOT / "manifests/base")))
            if d and d["kind"] == "Namespace"
        ]
        rk("apply", "-f", "-", input=yaml.safe_dump_all(base_ns), check=False)
        for name, count in replicas.items():
            rk("-n", NAMESPACE, "scale", "deployment", name, f"--replicas={count}", check=False)
        for name in replicas:
            rk(
                "-n",
                NAMESPACE,
                "rollout",
                "status",
                f"deployment/{name}",
                "--timeout=180s",
                check=False,
            )
