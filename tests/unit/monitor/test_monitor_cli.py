"""The entry points: argument parsing, a dry run end to end, the fake device's CLI."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest
from structlog.testing import capture_logs

from energysched_lab.fake_shelly import FakeShelly
from energysched_monitor.cli import build_parser, main, run

from .conftest import PASSWORD

Start = Callable[..., Awaitable[FakeShelly]]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_node_name_from_the_downward_api_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NODE_NAME", "wyse")
    args = build_parser().parse_args([])
    assert args.node_name == "wyse" and args.metrics_port == 9101 and not args.model
    args = build_parser().parse_args(["--node-name", "rpi", "--metrics-port", "0", "--model"])
    assert (args.node_name, args.metrics_port, args.model) == ("rpi", 0, True)


def test_node_name_is_required_outside_model_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NODE_NAME", raising=False)
    with pytest.raises(SystemExit) as info:
        main([])
    assert info.value.code == 2


async def test_dry_run_end_to_end(fake_shelly: Start, tmp_path: Path) -> None:
    device = await fake_shelly(gen=3, component="pm1", password=PASSWORD, power=23.4)
    (tmp_path / "plug").write_text(PASSWORD)
    config = tmp_path / "config.yaml"
    config.write_text(
        f"secretsDir: {tmp_path}\n"
        f"nodes: {{tvpc: {{kind: shelly, address: '{device.url}', "
        "credentials: {secretKey: plug}}}\n"
    )
    port = free_port()
    args = build_parser().parse_args(
        [
            "--node-name", "tvpc", "--config", str(config), "--dry-run",
            "--metrics-port", str(port), "--metrics-host", "127.0.0.1",
        ]
    )  # fmt: skip
    stop = asyncio.Event()
    with capture_logs() as logs:
        task = asyncio.create_task(run(args, stop))
        for _ in range(100):
            if any(e["event"] == "dry-run: would patch node" for e in logs):
                break
            await asyncio.sleep(0.05)
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/metrics") as resp:
                text = await resp.text()
            for probe in ("healthz", "readyz"):
                async with http.get(f"http://127.0.0.1:{port}/{probe}?verbose") as resp:
                    assert resp.status == 200
                    assert "[+]loop ok" in await resp.text()
        stop.set()
        assert await asyncio.wait_for(task, 5) == 0
    patch = next(e for e in logs if e["event"] == "dry-run: would patch node")
    assert patch["node"] == "tvpc"
    assert patch["annotations"]["energy.thesis.io/current-watts"] == "23.4"
    assert 'energysched_monitor_power_watts{node="tvpc",source="shelly"} 23.4' in text
    assert "energysched_monitor_energy_joules_total" in text
    assert (
        'energysched_monitor_read_errors_total{kind="timeout",node="tvpc",source="shelly"} 0.0'
        in text
    )
    assert "energysched_monitor_last_success_timestamp_seconds" in text
    assert PASSWORD not in json.dumps(logs, default=repr)


async def test_model_mode_without_cluster_access(tmp_path: Path) -> None:
    args = build_parser().parse_args(
        ["--model", "--kubeconfig", str(tmp_path / "missing"), "--metrics-port", "0"]
    )
    with capture_logs() as logs:
        assert await run(args) == 2
    assert any(e["event"] == "no cluster access" for e in logs)


async def test_fake_shelly_command_line() -> None:
    env = {**os.environ, "FAKE_PW": PASSWORD}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "energysched_lab.fake_shelly",
        "--gen", "1", "--port", "0", "--power", "7.5", "--password-env", "FAKE_PW",
        stdout=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 20)
        state = json.loads(line)
        assert state["gen"] == 1 and state["auth"] is True and state["power"] == 7.5
        async with aiohttp.ClientSession() as http:
            async with http.get(state["url"] + "/shelly") as resp:
                assert (await resp.json())["type"] == "SHPLG-S"
            async with http.get(state["url"] + "/status") as resp:
                assert resp.status == 401
    finally:
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 10) == 0
