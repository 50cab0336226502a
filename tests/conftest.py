"""Shared fixtures.

Unit tests (tests/unit) need nothing. Integration tests (tests/integration) run
against one local control plane per test session (real etcd, kube-apiserver,
kube-controller-manager, kube-scheduler and KWOK), each test in a fresh
namespace. Tests never touch the user's own kube context: the session points
KUBECONFIG at the local cluster's kubeconfig before any test runs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from energysched.kube.client import KubeClient, api_path
from energysched.kube.config import load_kubeconfig
from energysched_lab.cluster.local import LocalCluster
from tests.support import Kubectl

TESTS = Path(__file__).resolve().parent
GO_FALLBACKS = ("/usr/local/go/bin/go",)  # where .ci/run finds it too
DEBIAN_PYTHON = "/usr/bin/python3"  # Debian's python3-torch is built for it


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Markers come from here only: by path (tests/unit, tests/integration, and
    tests/integration/images, which is not part of ``-m integration``), plus ``go`` for
    every test that uses the ``go_toolchain`` fixture (it builds Go code) and ``torch``
    for those using ``debian_torch`` (they train with Debian's PyTorch)."""
    for item in items:
        parts = Path(str(item.fspath)).relative_to(TESTS).parts
        if parts[:2] == ("integration", "images"):
            item.add_marker(pytest.mark.images)
        elif parts[0] == "integration":
            item.add_marker(pytest.mark.integration)
        elif parts[0] == "unit":
            item.add_marker(pytest.mark.unit)
        fixtures = getattr(item, "fixturenames", ())
        if "go_toolchain" in fixtures:
            item.add_marker(pytest.mark.go)
        if "debian_torch" in fixtures:
            item.add_marker(pytest.mark.torch)


@pytest.fixture(scope="session")
def go_toolchain() -> Path:
    """The Go toolchain (CI installs it; the control plane is built with it). Missing, a
    test that needs it fails, naming what is missing: ``make check`` leaves such tests
    out (``-m 'not go'``), ``make test`` needs Go anyway."""
    found = shutil.which("go") or next((p for p in GO_FALLBACKS if Path(p).is_file()), None)
    if found is None:
        pytest.fail(f"the Go toolchain is not installed: no `go` on PATH nor in {GO_FALLBACKS}")
    return Path(found)


@pytest.fixture(scope="session")
def local_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """The session's cluster; ENERGYSCHED_TEST_CLUSTER=NAME reuses a running one."""
    reuse = os.environ.get("ENERGYSCHED_TEST_CLUSTER")
    if reuse:
        cluster = LocalCluster(reuse)
        if not cluster.is_running():
            pytest.fail(f"ENERGYSCHED_TEST_CLUSTER={reuse} is not running")
        os.environ["KUBECONFIG"] = str(cluster.kubeconfig)
        yield cluster
        return
    cluster = LocalCluster(f"pytest-{os.getpid()}")
    cluster.up()
    os.environ["KUBECONFIG"] = str(cluster.kubeconfig)
    try:
        yield cluster
    finally:
        cluster.purge()  # a test cluster's etcd data is worth nothing afterwards


@pytest.fixture
def kubeconfig(local_cluster: LocalCluster) -> Path:
    return local_cluster.kubeconfig


@pytest.fixture
async def kube(kubeconfig: Path) -> AsyncIterator[KubeClient]:
    async with KubeClient(load_kubeconfig(kubeconfig), qps=0) as client:
        yield client


@pytest.fixture
async def namespace(kube: KubeClient) -> AsyncIterator[str]:
    name = f"t-{uuid.uuid4().hex[:10]}"
    await kube.create(api_path("v1", "namespaces"), {"metadata": {"name": name}})
    yield name
    await kube.delete(api_path("v1", "namespaces", name=name))


@pytest.fixture
def kubectl(kubeconfig: Path) -> Kubectl:
    return Kubectl(kubeconfig)


@pytest.fixture(scope="session")
def debian_torch() -> Path:
    """Debian's Python with its CPU-only PyTorch (``python3-torch``; CI installs it).
    Missing, a test that needs it fails, naming the package; ``make check`` leaves such
    tests out (``-m 'not torch'``: they train a model, tens of seconds)."""
    python = Path(DEBIAN_PYTHON)
    probe = subprocess.run(
        [str(python), "-c", "import torch"], capture_output=True, text=True, timeout=300
    )
    if probe.returncode != 0:
        pytest.fail(
            "PyTorch for the CPU is missing: apt-get install python3-torch (.ci/run does this); "
            + probe.stderr[-300:]
        )
    return python
