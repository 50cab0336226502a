"""The real node runs containers: logs, the API server through the `kubernetes` Service with
the pod's own token, and no route anywhere else."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest

from energysched_lab.cluster import realnode
from energysched_lab.cluster.local import LocalCluster
from tests.integration.deploy.conftest import machine_sysctls
from tests.support import Kubectl, eventually_sync


@pytest.fixture
def ns(rk: Kubectl) -> Iterator[str]:
    name = f"rn-{uuid.uuid4().hex[:8]}"
    rk("create", "namespace", name)
    # The ServiceAccount admission plugin is on with a real node: wait for "default".
    eventually_sync(
        lambda: rk("-n", name, "get", "sa", "-o", "name", check=False),
        until=lambda accounts: "default" in accounts,
        timeout=60,
        what=f"the default ServiceAccount in {name}",
    )
    yield name
    rk("delete", "namespace", name, "--wait=false")


def run_pod(rk: Kubectl, ns: str, name: str, args: list[str], timeout: float = 120) -> dict:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "nodeSelector": {realnode.REAL_NODE_LABEL: "true"},
            "restartPolicy": "Never",
            "containers": [
                {
                    "name": "main",
                    "image": realnode.TOOL_IMAGE,
                    "imagePullPolicy": "Never",
                    "args": args,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "readOnlyRootFilesystem": True,
                        "allowPrivilegeEscalation": False,
                        "capabilities": {"drop": ["ALL"]},
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                }
            ],
        },
    }
    rk("apply", "-f", "-", input=json.dumps(pod))
    obj: dict = eventually_sync(
        lambda: json.loads(rk("-n", ns, "get", "pod", name, "-o", "json")),
        until=lambda obj: obj["status"].get("phase") in {"Succeeded", "Failed"},
        timeout=timeout,
        what=f"pod {name} to finish",
        interval=0.5,
    )
    return obj


def test_node_is_ready_with_a_reachable_internal_ip(
    rk: Kubectl, node_net: realnode.NodeNet, real_cluster: LocalCluster
) -> None:
    node = json.loads(rk("get", "node", realnode.NODE_NAME, "-o", "json"))
    addresses = {a["type"]: a["address"] for a in node["status"]["addresses"]}
    assert addresses["InternalIP"] == node_net.node_ip
    assert node["metadata"]["labels"][realnode.REAL_NODE_LABEL] == "true"
    assert node["status"]["nodeInfo"]["containerRuntimeVersion"].startswith("containerd://")
    assert node["status"]["nodeInfo"]["kubeletVersion"] == "v1.35.4"
    status = real_cluster.status()
    assert status["real_node"] == realnode.NODE_NAME
    assert {"containerd", "kubelet", "kube-proxy"} <= {c["name"] for c in status["components"]}


def test_the_machines_kernel_settings_are_as_they_were(
    real_cluster: LocalCluster, sysctls_before: dict[str, str]
) -> None:
    """kubelet sets kernel.panic_on_oops and friends machine-wide; cluster up puts them back."""
    assert machine_sysctls() == sysctls_before


def test_pod_runs_and_kubectl_logs_reads_it(rk: Kubectl, ns: str) -> None:
    pod = run_pod(rk, ns, "hello", ["print", "hello", "from", "the", "real", "node"])
    assert pod["status"]["phase"] == "Succeeded", pod["status"]
    assert pod["spec"]["nodeName"] == realnode.NODE_NAME
    assert rk("-n", ns, "logs", "hello").strip() == "hello from the real node"


def test_pod_reaches_the_api_server_as_its_service_account(rk: Kubectl, ns: str) -> None:
    """Through the `kubernetes` Service (kube-proxy) with the projected token and CA."""
    ok = run_pod(rk, ns, "version", ["api", "/version"])
    assert ok["status"]["phase"] == "Succeeded", rk("-n", ns, "logs", "version")
    assert '"gitVersion": "v1.35.4"' in rk("-n", ns, "logs", "version")
    # Authenticated as the pod's own identity, which may not list pods: 403 naming it.
    denied = run_pod(rk, ns, "denied", ["api", f"/api/v1/namespaces/{ns}/pods"])
    assert denied["status"]["phase"] == "Failed"
    out = rk("-n", ns, "logs", "denied")
    assert "STATUS 403" in out and f"system:serviceaccount:{ns}:default" in out, out


def test_pods_have_no_route_off_the_machine(rk: Kubectl, ns: str) -> None:
    """Only the node's /30 link and the Service range are routed; TEST-NET-3 is not."""
    pod = run_pod(rk, ns, "offline", ["get", "http://203.0.113.7/"])
    assert pod["status"]["phase"] == "Failed"
    out = rk("-n", ns, "logs", "offline")
    assert "unreachable" in out or "no route" in out, out
