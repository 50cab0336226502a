"""`energysched bench run`: a plug password never goes into a Job's arguments.

Both refusals come before any cluster access (the Job spec with the mounted Secret is
tested in test_kb_bench_job.py, the run against a cluster in tests/integration/kb)."""

from __future__ import annotations

import pytest

from energysched.cli import main


@pytest.mark.parametrize(
    "bench_args",
    [
        ["--bench-arg=--shelly-password=hunter2"],
        ["--bench-arg=--shelly-password", "--bench-arg=hunter2"],
    ],
)
def test_a_password_as_a_bench_argument_is_refused(
    bench_args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["bench", "run", "--image", "bench:1", *bench_args]) == 2
    err = capsys.readouterr().err
    assert "--shelly-password-secret" in err and "process list" in err
    assert "hunter2" not in err


@pytest.mark.parametrize("ref", ["Plug_Auth", "plug/a b", "/password", "a/b/c d"])
def test_a_malformed_secret_reference_is_refused(
    ref: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["bench", "run", "--image", "bench:1", f"--shelly-password-secret={ref}"])
    err = capsys.readouterr().err
    assert code == 2 and "expected NAME or NAME/KEY" in err
