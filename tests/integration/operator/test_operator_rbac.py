"""The operator works with exactly the permissions of manifests/base/operator/rbac.yaml."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from energysched import contract
from energysched.kube.client import KubeClient, api_path
from energysched.operator.runtime import OperatorOptions
from energysched_lab.cluster.local import LocalCluster
from energysched_lab.operator_thread import OperatorThread
from tests.integration.operator.conftest import ClusterObjects
from tests.support import ROOT, Kubectl, wait_for

RBAC = ROOT / "manifests" / "base" / "operator" / "rbac.yaml"
NAMESPACE = ROOT / "manifests" / "base" / "namespace.yaml"


@pytest.fixture
def operator_kubeconfig(
    local_cluster: LocalCluster, knowledge_base: None, kubectl: Kubectl, tmp_path: Path
) -> Iterator[Path]:
    """A kubeconfig holding a token of the operator's ServiceAccount (nothing else)."""
    kubectl("apply", "-f", str(NAMESPACE), "-f", str(RBAC))
    token = kubectl(
        "create", "token", "energysched-operator", "-n", "energysched", "--duration=1h"
    ).strip()
    admin = yaml.safe_load(local_cluster.kubeconfig.read_text())
    cluster = admin["clusters"][0]
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [cluster],
        "users": [{"name": "operator", "user": {"token": token}}],
        "contexts": [
            {"name": "operator", "context": {"cluster": cluster["name"], "user": "operator"}}
        ],
        "current-context": "operator",
    }
    path = tmp_path / "operator.kubeconfig"
    path.write_text(yaml.safe_dump(doc))
    yield path
    kubectl("delete", "--ignore-not-found", "-f", str(RBAC))


async def test_operator_needs_only_its_rbac(
    kube: KubeClient, operator_kubeconfig: Path, objects: ClusterObjects
) -> None:
    op = OperatorThread(OperatorOptions(kubeconfig=str(operator_kubeconfig)))
    op.start(timeout=60)
    try:
        assert await asyncio.to_thread(op.runtime.synced.wait, 60)
        bad = await objects.profile("rbac", {"kubernetes.io/hostname": "wyse"}, idlePowerWatts=100)

        async def status_written() -> bool:
            obj = await kube.get(api_path(contract.API_VERSION, contract.PROFILE_PLURAL, name=bad))
            conditions = (obj.get("status") or {}).get("conditions") or []
            return any(c["type"] == "Valid" and c["status"] == "False" for c in conditions)

        await wait_for(status_written, 30, "the status patched with the operator's token")

        async def event_posted() -> bool:
            return op.runtime.events_posted > 0

        await wait_for(event_posted, 30, "an event posted with the operator's token")
    finally:
        await asyncio.to_thread(op.stop, 30)
    assert op.error is None
