"""Operator fixtures: the operator under kopf's KopfRunner, and cleanup of cluster objects."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from kopf.testing import KopfRunner

from energysched import contract
from energysched.kube.client import ApiError, KubeClient, api_path
from energysched.operator.handlers import build_registry, build_settings
from energysched.operator.runtime import OperatorOptions, OperatorRuntime
from energysched_lab.cluster.local import LocalCluster
from energysched_lab.cluster.nodes import load_node_classes

PROFILES = api_path(contract.API_VERSION, contract.PROFILE_PLURAL)
#: Label and taint put on every node a test creates (no pod of other tests lands there).
TEST_TAINT = {"key": f"{contract.GROUP}/test-node", "value": "operator", "effect": "NoSchedule"}


@pytest.fixture(scope="module")
def operator(local_cluster: LocalCluster, knowledge_base: None) -> Iterator[OperatorRuntime]:
    """The operator, run by kopf's own test runner (its CLI in a thread with its own loop)."""
    runtime = OperatorRuntime(
        OperatorOptions(kubeconfig=str(local_cluster.kubeconfig), debounce_seconds=0.1)
    )
    with KopfRunner(
        ["run", "--all-namespaces", "--standalone", "--verbose"],
        registry=build_registry(runtime),
        settings=build_settings(embedded=True),
        timeout=60,
    ) as runner:
        assert runtime.synced.wait(60), "the operator did not finish its first pass"
        yield runtime
    assert runner.exit_code == 0, runner.output[-3000:]
    assert runner.exception is None


def profile_manifest(name: str, selector: dict[str, str], **overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "nodeSelector": selector,
        "idlePowerWatts": 6,
        "workloads": {
            "training": {"performance": 50, "powerWatts": 12, "unit": "steps/s"},
            "inference": {"performance": 1200, "powerWatts": 10, "unit": "samples/s"},
        },
    }
    spec.update(overrides)
    return {
        "apiVersion": contract.API_VERSION,
        "kind": contract.PROFILE_KIND,
        "metadata": {"name": name},
        "spec": spec,
    }


@dataclass
class ClusterObjects:
    """Creates cluster-scoped test objects and deletes every one of them afterwards."""

    kube: KubeClient
    prefix: str = field(default_factory=lambda: f"optest-{uuid.uuid4().hex[:6]}")
    profiles: list[str] = field(default_factory=list)
    nodes: list[str] = field(default_factory=list)

    async def profile(self, name: str, selector: dict[str, str], **spec: Any) -> str:
        full = f"{self.prefix}-{name}"
        self.profiles.append(full)
        await self.kube.create(PROFILES, profile_manifest(full, selector, **spec))
        return full

    async def node(self, name: str, labels: dict[str, str] | None = None) -> str:
        full = f"{self.prefix}-{name}"
        klass = next(c for c in load_node_classes() if c.name == "wyse")
        manifest = klass.manifest(full)
        manifest["metadata"]["labels"].update(labels or {})
        manifest["spec"]["taints"] = [TEST_TAINT]
        self.nodes.append(full)
        await self.kube.create(api_path("v1", "nodes"), manifest)
        return full

    async def cleanup(self) -> None:
        for name in self.profiles:
            try:
                await self.kube.delete(
                    api_path(contract.API_VERSION, contract.PROFILE_PLURAL, name=name)
                )
            except ApiError as exc:
                if not exc.not_found:
                    raise
        for name in self.nodes:
            try:
                await self.kube.delete(api_path("v1", "nodes", name=name))
            except ApiError as exc:
                if not exc.not_found:
                    raise


@pytest.fixture
async def objects(kube: KubeClient) -> AsyncIterator[ClusterObjects]:
    created = ClusterObjects(kube)
    yield created
    await created.cleanup()
