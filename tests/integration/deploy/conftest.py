"""A local cluster WITH a real node (its own, not the session's KWOK-only one), and images.

The real node needs root and Debian's containerd, runc and containernetworking-plugins
(.ci/run installs them). Where they are missing the tests here are skipped with the reason,
unless ENERGYSCHED_REQUIRE_REAL_NODE=1 (CI), which turns that into a failure (and
ENERGYSCHED_REQUIRE_IMAGES=1 for the images).

Images: the product image ``energysched:dev`` and the workflow image
``energysched-mlworkflow:dev`` as archives from ``make images``
(``~/.cache/energysched/images/out/<image>-dev-amd64.tar``), or the paths in
ENERGYSCHED_IMAGE_ARCHIVES (separated by ':'). The deploy tests need the product image.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest

from energysched_lab.cluster import realnode
from energysched_lab.cluster.build import bin_dir
from energysched_lab.cluster.local import LocalCluster
from tests.support import ROOT, Kubectl

LOCAL_OVERLAY = ROOT / "manifests" / "overlays" / "local"
IMAGES_OUT = Path.home() / ".cache" / "energysched" / "images" / "out"
NAMESPACE = "energysched"


def unavailable(reason: str, required_by: str = "ENERGYSCHED_REQUIRE_REAL_NODE") -> NoReturn:
    """Skip on a developer's machine; fail where the component is required (CI sets both
    flags in .ci/run, since it builds the real node and the images)."""
    if os.environ.get(required_by) == "1":
        pytest.fail(f"{reason} ({required_by}=1)")
    pytest.skip(reason)


def machine_sysctls() -> dict[str, str]:
    return {k: (Path("/proc/sys") / k).read_text().strip() for k in realnode.KUBELET_SYSCTLS}


@pytest.fixture(scope="session")
def sysctls_before() -> dict[str, str]:
    """The machine-wide sysctls kubelet rewrites, as they were before the cluster came up."""
    return machine_sysctls()


@pytest.fixture(scope="session")
def real_cluster(sysctls_before: dict[str, str]) -> Iterator[LocalCluster]:
    """ENERGYSCHED_TEST_REAL_CLUSTER=NAME reuses a running cluster that has a real node."""
    try:
        realnode.check_prerequisites()
    except realnode.RealNodeError as exc:
        unavailable(str(exc))
    reuse = os.environ.get("ENERGYSCHED_TEST_REAL_CLUSTER")
    if reuse:
        cluster = LocalCluster(reuse)
        state = cluster.load_state()
        if not (state and state.running() and state.real_node):
            pytest.fail(f"ENERGYSCHED_TEST_REAL_CLUSTER={reuse} is not running with a real node")
        yield cluster
        return
    cluster = LocalCluster(f"deploy-{os.getpid()}")
    cluster.up(real_node=True)
    try:
        yield cluster
    finally:
        cluster.purge()


@pytest.fixture(scope="session")
def rk(real_cluster: LocalCluster) -> Kubectl:
    """kubectl on the real-node cluster."""
    return Kubectl(real_cluster.kubeconfig)


@pytest.fixture(scope="session")
def node_net(real_cluster: LocalCluster) -> realnode.NodeNet:
    state = real_cluster.load_state()
    assert state is not None and state.real_node
    return realnode.NodeState(**state.real_node).net


def archives() -> dict[str, Path]:
    """Image name -> archive, for those that exist."""
    env = os.environ.get("ENERGYSCHED_IMAGE_ARCHIVES")
    paths = [Path(p) for p in env.split(":") if p] if env else []
    paths += [
        IMAGES_OUT / f"{name}-dev-amd64.tar" for name in ("energysched", "energysched-mlworkflow")
    ]
    found: dict[str, Path] = {}
    for path in paths:
        name = "energysched-mlworkflow" if "mlworkflow" in path.name else "energysched"
        if path.is_file() and name not in found:
            found[name] = path
    return found


def required_archive(name: str) -> Path:
    """The archive of image ``name`` (``make images``); missing: skip, or fail under
    ENERGYSCHED_REQUIRE_IMAGES=1, naming the file that is missing."""
    found = archives()
    if name not in found:
        unavailable(
            f"the image {name}:dev is not built: no {IMAGES_OUT / f'{name}-dev-amd64.tar'} "
            "(make images; or set ENERGYSCHED_IMAGE_ARCHIVES)",
            required_by="ENERGYSCHED_REQUIRE_IMAGES",
        )
    return found[name]


def pytest_collection_finish(session: pytest.Session) -> None:
    """Where the images are required (CI), a missing archive ends the run before its first
    test, naming the file, rather than after twenty minutes of other tests."""
    if os.environ.get("ENERGYSCHED_REQUIRE_IMAGES") != "1":
        return
    here = Path(__file__).parent
    if not any(Path(item.path).is_relative_to(here) for item in session.items):
        return
    found = archives()
    missing = [
        str(IMAGES_OUT / f"{name}-dev-amd64.tar")
        for name in ("energysched", "energysched-mlworkflow")
        if name not in found
    ]
    if missing:
        pytest.exit(
            f"image archives missing (ENERGYSCHED_REQUIRE_IMAGES=1; make images): "
            f"{', '.join(missing)}",
            returncode=3,
        )


# The two image fixtures take no cluster: a missing archive is reported before a real
# node is started for nothing.
@pytest.fixture(scope="session")
def product_image() -> Path:
    return required_archive("energysched")


@pytest.fixture(scope="session")
def workflow_image() -> Path:
    return required_archive("energysched-mlworkflow")


@pytest.fixture(scope="session")
def images(real_cluster: LocalCluster) -> dict[str, Path]:
    found = archives()
    for path in found.values():
        real_cluster.import_image(path)
    return found


def make(target: str, cluster: LocalCluster, overlay: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            "make",
            "--no-print-directory",
            target,
            f"OVERLAY={overlay}",
            f"KUBECTL={bin_dir() / 'kubectl'}",
        ],
        cwd=ROOT,
        env={**os.environ, "KUBECONFIG": str(cluster.kubeconfig), "TIMEOUT": "240s"},
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture(scope="session")
def deployed(
    product_image: Path, real_cluster: LocalCluster, images: dict[str, Path], rk: Kubectl
) -> Iterator[str]:
    """`make deploy OVERLAY=manifests/overlays/local`; yields its output; undeploys after."""
    # The knowledge base first: the scheduler and the model monitor read it.
    rk("apply", "-f", str(ROOT / "manifests" / "crd" / "energyprofiles.yaml"))
    rk(
        "wait",
        "--for=condition=Established",
        "--timeout=60s",
        "crd/energyprofiles.energy.thesis.io",
    )
    rk("apply", "-f", str(ROOT / "kb" / "profiles"))
    proc = make("deploy", real_cluster, LOCAL_OVERLAY)
    if proc.returncode != 0:
        pods = rk("-n", NAMESPACE, "get", "pods", "-o", "wide", check=False)
        events = rk("-n", NAMESPACE, "get", "events", "--sort-by=.lastTimestamp", check=False)
        raise AssertionError(
            f"make deploy failed:\n{proc.stdout}\n{proc.stderr}\n{pods}\n{events[-4000:]}"
        )
    yield proc.stdout + proc.stderr
    down = make("undeploy", real_cluster, LOCAL_OVERLAY)
    assert down.returncode == 0, down.stderr
    assert "-> context 'energysched-local'" in down.stdout
    # Everything is gone but the CRD and the profiles (the user's knowledge base).
    assert "NotFound" in rk("get", "namespace", NAMESPACE, check=False)
    assert "energysched:scheduler" not in rk("get", "clusterroles", "-o", "name")
    assert rk("get", "energyprofiles", "-o", "name").strip()
