"""`python -m energysched_bench --shelly-password-file`: the mounted Secret's file, read
against the project's fake plug with Basic auth (a Gen1 plug)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from energysched_bench.__main__ import main
from energysched_bench.result import extract_result
from energysched_lab.fake_shelly import FakeShelly

QUICK = [
    "--json", "--workloads", "sequential", "--size", "tiny", "--repeats", "1",
    "--seconds", "0.05", "--warmup", "0", "--idle-seconds", "0.3", "--no-gpu",
]  # fmt: skip


def _watts(out: str) -> object:
    """The watts the plug gave for the one kernel (None: not measured)."""
    (kernel,) = extract_result(out)["kernels"]
    return kernel["watts"]


async def test_the_password_file_opens_the_plug(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = tmp_path / "password"
    secret.write_text("s3cret\n")  # as a Secret volume holds it: with the trailing newline
    async with FakeShelly(gen=1, password="s3cret", power=21.0) as plug:
        args = [*QUICK, "--power", "shelly", "--shelly-url", plug.url]
        code = await asyncio.to_thread(main, [*args, "--shelly-password-file", str(secret)])
        assert code == 0
        good = capsys.readouterr().out
        secret.write_text("wrong\n")
        code = await asyncio.to_thread(main, [*args, "--shelly-password-file", str(secret)])
        bad = capsys.readouterr()
    assert _watts(good) == 21.0  # read at the wall through Basic auth
    assert code == 0 and _watts(bad.out) is None  # refused by the plug: not measured


def test_an_unreadable_password_file_is_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope"
    args = [*QUICK, "--power", "shelly", "--shelly-url", "http://127.0.0.1:9"]
    assert main([*args, "--shelly-password-file", str(missing)]) == 2
    assert "--shelly-password-file: cannot read it" in capsys.readouterr().err
