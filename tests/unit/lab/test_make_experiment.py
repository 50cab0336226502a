"""`make experiment`: builds the control plane only for the local cluster, runs the default mode."""

from __future__ import annotations

import subprocess
from pathlib import Path

from energysched import contract

ROOT = Path(__file__).resolve().parents[3]


def dry_run(*args: str) -> str:
    """What `make -n experiment ARGS` would run (nothing is run)."""
    done = subprocess.run(
        ["make", "-n", "-C", str(ROOT), "experiment", *args],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return done.stdout


def test_a_real_cluster_builds_no_control_plane() -> None:
    assert "cluster build" not in dry_run("CLUSTER=current")
    assert "--cluster current" in dry_run("CLUSTER=current")


def test_the_local_cluster_builds_it_first() -> None:
    commands = dry_run()
    assert "energysched cluster build" in commands
    assert commands.index("cluster build") < commands.index("energysched experiment")


def test_the_default_mode_is_the_schedulers() -> None:
    assert f"--mode {contract.DEFAULT_SCORING_MODE} " in dry_run()
