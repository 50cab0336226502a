"""The product wheel holds the product only: no lab, no tests.

The lab (local cluster, experiment, perf, images, the fake plug) is a
distribution of its own in lab/; this builds the product wheel from the
checkout, as `pip wheel .` does for a user, and reads its file list.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def product_wheel_files(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    out = tmp_path_factory.mktemp("wheel")
    # From a copy of the checkout as git would give it (no venv, no caches, and no
    # build/ left by an earlier build, whose stale files setuptools would pack again).
    src = out / "src"
    shutil.copytree(
        REPO,
        src,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", "results"
        ),
    )
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--wheel-dir", str(out), str(src)],
        check=True,
        capture_output=True,
        cwd=out,
    )  # fmt: skip
    (wheel,) = out.glob("energysched-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        return zf.namelist()


def test_the_product_wheel_holds_no_lab_or_test_file(product_wheel_files: list[str]) -> None:
    leaked = [
        f
        for f in product_wheel_files
        if f.startswith(("energysched_lab/", "tests/", "lab/")) or "/lab/" in f
    ]
    assert leaked == []
    # The harness helpers (a scheduler child process, waits on the cluster, the
    # operator in a thread) moved to the lab with it.
    harness = {
        "energysched/scheduler/process.py",
        "energysched/kube/waiting.py",
        "energysched/operator/embed.py",
    }
    assert harness.isdisjoint(product_wheel_files)


def test_the_product_wheel_holds_every_deployable(product_wheel_files: list[str]) -> None:
    # A positive witness: the file list read is the product's, not an empty wheel.
    tops = {f.split("/", 1)[0] for f in product_wheel_files}
    assert {
        "energysched",
        "energysched_monitor",
        "energysched_bench",
        "energysched_mlworkflow",
    } <= (tops)
    assert "energysched/scheduler/controller.py" in product_wheel_files
