"""The command hook: argv without a shell, the node's name in the environment, failures."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from energysched.powermanager.methods import MethodError
from energysched.powermanager.methods.command import CommandHook, run_hook


def _exists(path: Path) -> bool:
    return path.exists()


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


async def test_sleep_and_wake_run_their_argv(tmp_path: Path) -> None:
    log = tmp_path / "log"
    script = (
        "import os,sys; open(sys.argv[1],'a').write("
        "os.environ['ENERGYSCHED_POWER_STEP']+' '+os.environ['ENERGYSCHED_NODE']+'\\n')"
    )
    hook = CommandHook(
        (sys.executable, "-c", script, str(log)), (sys.executable, "-c", script, str(log)), "n1"
    )
    await hook.finish_sleep()
    await hook.wake()
    assert _lines(log) == ["sleep n1", "wake n1"]


async def test_no_shell_is_involved(tmp_path: Path) -> None:
    out = await run_hook(["echo", "$HOME;", "rm", "-rf", str(tmp_path)], "wake", "n", 5)
    assert out.strip() == f"$HOME; rm -rf {tmp_path}"
    assert _exists(tmp_path)


async def test_failure_has_exit_code_and_output() -> None:
    with pytest.raises(MethodError) as err:
        await run_hook([sys.executable, "-c", "print('no kubelet');exit(3)"], "wake", "n", 5)
    assert err.value.kind == "failed"
    assert "exit 3" in err.value.message and "no kubelet" in err.value.message


async def test_missing_program_and_timeout() -> None:
    with pytest.raises(MethodError) as err:
        await run_hook(["/nonexistent/wake-it"], "wake", "n", 5)
    assert err.value.kind == "config" and "/nonexistent/wake-it" in err.value.message
    with pytest.raises(MethodError) as err:
        await run_hook([sys.executable, "-c", "import time; time.sleep(30)"], "sleep", "n", 0.5)
    assert err.value.kind == "timeout"
