"""A non-editable install (``pip install . ./lab``) works: the product and the lab built as
wheels, installed into fresh virtual environments, their CLI run from outside the repository.
The product alone says plainly that the lab's commands need the lab.

Needs no cluster. pip builds the wheel and collects the dependencies as wheels
(from its cache or PyPI), then installs into the fresh venv with ``--no-index``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import ROOT


def run(
    *cmd: str | Path, cwd: Path | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONNOUSERSITE": "1"}
    env.pop("PYTHONPATH", None)
    proc = subprocess.run(
        [str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=900
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"{cmd} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheels")
    # The lab's wheel needs the product's (its dependency) in the same folder.
    run(sys.executable, "-m", "pip", "wheel", "--quiet", "--wheel-dir", out, ROOT, ROOT / "lab")
    return out


def _venv(wheels: Path, where: Path, *dists: str) -> Path:
    venv = where / "venv"
    run(sys.executable, "-m", "venv", venv)
    run(venv / "bin/python", "-m", "pip", "install", "--quiet", "--no-index",
        "--find-links", wheels, *dists)  # fmt: skip
    return venv


@pytest.fixture(scope="module")
def installed(wheels: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The product and the lab, as a researcher installs them from a checkout."""
    return _venv(wheels, tmp_path_factory.mktemp("with-lab"), "energysched", "energysched-lab")


@pytest.fixture(scope="module")
def product_only(wheels: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The product alone, as in the image."""
    return _venv(wheels, tmp_path_factory.mktemp("product"), "energysched")


def test_the_product_alone_has_no_lab_and_says_so(product_only: Path, tmp_path: Path) -> None:
    exe = product_only / "bin/energysched"
    assert "scheduler" in run(exe, "--help", cwd=tmp_path).stdout
    proc = run(exe, "cluster", "status", cwd=tmp_path, check=False)
    assert proc.returncode != 0
    assert "the lab is not installed" in proc.stderr and "./lab" in proc.stderr, proc.stderr
    probe = "import importlib.util as u; print(u.find_spec('energysched_lab'))"
    assert run(product_only / "bin/python", "-P", "-c", probe, cwd=tmp_path).stdout.strip() == (
        "None"
    )


def test_the_wheel_installs_a_copy_not_a_link_to_the_checkout(
    installed: Path, tmp_path: Path
) -> None:
    # -P: do not put the working directory on sys.path (it could be the checkout).
    out = run(
        installed / "bin/python",
        "-P",
        "-c",
        "import energysched; print(energysched.__file__)",
        cwd=tmp_path,
    ).stdout
    assert "site-packages" in out and str(ROOT) not in out


def test_the_cli_runs_from_the_wheel(installed: Path, tmp_path: Path) -> None:
    exe = installed / "bin/energysched"
    assert "scheduler" in run(exe, "--help", cwd=tmp_path).stdout
    assert "--config" in run(exe, "scheduler", "--help", cwd=tmp_path).stdout
    # A bad kubeconfig is a clear message and exit 2, from the installed code.
    proc = run(exe, "scheduler", "--kubeconfig", tmp_path / "missing", cwd=tmp_path, check=False)
    assert proc.returncode == 2 and "cannot read kubeconfig" in proc.stderr


def test_packaged_data_is_in_the_wheel(installed: Path, tmp_path: Path) -> None:
    code = (
        "from energysched_lab.cluster.local import KWOK_CONFIG\n"
        "from energysched_lab.cluster.build import GOMOD_DIR\n"
        "assert KWOK_CONFIG.is_file(), KWOK_CONFIG\n"
        "assert (GOMOD_DIR / 'go.mod').is_file(), GOMOD_DIR\n"
    )
    run(installed / "bin/python", "-P", "-c", code, cwd=tmp_path)


def test_node_classes_come_from_the_working_directory_with_a_clear_error(
    installed: Path, tmp_path: Path
) -> None:
    env_state = {"ENERGYSCHED_STATE": str(tmp_path / "state")}
    proc = subprocess.run(
        [str(installed / "bin/energysched"), "cluster", "up", "--name", "wheel-test"],
        cwd=tmp_path,
        env={**os.environ, **env_state},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0
    assert "kb/nodes" in proc.stderr and "does not exist" in proc.stderr, proc.stderr
    count = "from energysched_lab.cluster.nodes import load_node_classes as l; print(len(l()))"
    assert run(installed / "bin/python", "-P", "-c", count, cwd=ROOT).stdout.strip() == "3"
