"""Bad plug replies, bad config, bad annotations: a clear message, the last good state kept.

Each case here raised something other than the documented error before (OverflowError,
ValueError, RecursionError, AttributeError from deep inside), which the loops did not
catch, or was swallowed without a word.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import structlog
from aiohttp import web
from structlog.testing import capture_logs

from energysched.contract import POWER_SOURCE_CONFIG_ANNOTATION
from energysched_lab.fake_shelly import FakeShelly
from energysched_monitor.config import (
    ConfigError,
    ConfigStore,
    parse_config_text,
    parse_override,
)
from energysched_monitor.interfaces import NodeInfo, node_info
from energysched_monitor.metrics import Metrics
from energysched_monitor.node_monitor import NodeMonitor
from energysched_monitor.readings import ReadError
from energysched_monitor.shelly import MAX_REPLY_BYTES, ShellySource

from .conftest import PASSWORD, Clock, RecordingAnnotator
from .test_monitor_node import Reader, write_config
from .test_monitor_power_model import View, kwok, model_monitor

Start = Callable[..., Awaitable[FakeShelly]]
DEEP = "[" * 100_000 + "]" * 100_000
HUGE = "9" * 5_000  # more digits than int() converts (4,300)


def events(logs: Sequence[MutableMapping[str, Any]], name: str) -> list[MutableMapping[str, Any]]:
    return [e for e in logs if e["event"] == name]


# -- config file ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (
            "pollIntervalSeconds: " + "9" * 400,
            "pollIntervalSeconds: input should be a valid number, got 9999",
        ),
        ("pollIntervalSeconds: " + HUGE, "not usable YAML: Exceeds the limit (4300 digits)"),
        ("nodes: " + DEEP, "not usable YAML: nested too deeply"),
        (
            "publish: {heartbeatSeconds: .nan}",
            "publish.heartbeatSeconds: input should be a finite number, got nan",
        ),
        (
            "nodes: {n1: {kind: shelly, address: plug, "
            "credentials: {username: 'ad:min', secretKey: k}}}",
            "nodes.n1.credentials.username: must not contain ':', got 'ad:min'",
        ),
        (
            "nodes: {n1: {kind: shelly, address: 'http://plug:99999'}}",
            "nodes.n1.address: not a host or URL (Port out of range 0-65535), "
            "got 'http://plug:99999'",
        ),
        (
            "nodes: {n1: {kind: shelly, address: 'ftp://plug'}}",
            "nodes.n1.address: expected host[:port] or an http(s) URL, got 'ftp://plug'",
        ),
        (
            "nodes: {n1: {kind: shelly, address: 'http://'}}",
            "nodes.n1.address: expected host[:port] or an http(s) URL, got 'http://'",
        ),
        (
            "nodes: {n1: {kind: shelly, address: 'http://[::1'}}",
            "nodes.n1.address: not a host or URL (Invalid IPv6 URL), got 'http://[::1'",
        ),
        (
            "nodes: {n1: {kind: shelly, address: 'plug one'}}",
            "nodes.n1.address: not a host or URL, got 'plug one'",
        ),
        (
            "nodes: {n1: {kind: shelly, address: 'plug:0'}}",
            "nodes.n1.address: expected host[:port] or an http(s) URL, got 'plug:0'",
        ),
    ],
)
def test_bad_config_is_a_config_error_naming_the_value(text: str, says: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config_text(text, "cfg.yaml")
    assert str(info.value).startswith(f"cfg.yaml: {says}")
    assert len(str(info.value)) < 400  # an excerpt, not the whole file


@pytest.mark.parametrize(
    "address", ["plug.local", "10.0.0.5", "10.0.0.5:8080", "https://plug", "[::1]:80"]
)
def test_good_addresses_pass(address: str) -> None:
    config = parse_config_text(f"nodes: {{n1: {{kind: shelly, address: '{address}'}}}}")
    assert config.nodes["n1"].address == address


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (
            '{"kind": "shelly", "address": "plug", "maxWatts": ' + HUGE + "}",
            'annotation: not usable JSON (a number of more than 4300 digits): \'{"kind": "shelly"',
        ),
        (DEEP, "annotation: not usable JSON (nested too deeply): '[[["),
        (
            '{"kind": "shelly", "address": "plug", "maxWatts": ' + "9" * 400 + "}",
            "annotation.maxWatts: input should be a valid number, got 9999",
        ),
        ("[1, 2]", "annotation: must be an object, got [1, 2]"),
    ],
)
def test_bad_annotation_is_a_config_error(text: str, says: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_override(text)
    assert str(info.value).startswith(says)
    assert len(str(info.value)) < 400  # an excerpt, not the whole text


async def test_monitor_keeps_its_source_through_bad_annotations_and_files(
    fake_shelly: Start, tmp_path: Path, annotator: RecordingAnnotator, clock: Clock
) -> None:
    device = await fake_shelly(gen=2, password=PASSWORD, power=10.0)
    path = write_config(tmp_path, device.url)
    reader = Reader(NodeInfo("n1"))
    m = NodeMonitor(
        "n1",
        ConfigStore(str(path)),
        annotator,
        Metrics(),
        structlog.get_logger("test"),
        reader=reader,
        clock=clock,
        wall=clock,
    )
    try:
        with capture_logs() as logs:
            await m.reconfigure()
            await m.poll_once()
            good = m.spec
            huge = '{"kind": "shelly", "address": "x", "maxWatts": ' + HUGE + "}"
            for bad in (huge, DEEP):
                reader.info = NodeInfo("n1", annotations={POWER_SOURCE_CONFIG_ANNOTATION: bad})
                await m.reconfigure()
                assert m.spec == good
            path.write_text("nodes: " + DEEP)
            await m.reconfigure()
            assert m.spec == good and not m.store.valid
            clock.advance(30)
            device.set_power(200.0)
            await m.poll_once()  # still reading the plug, still publishing
    finally:
        await m.close()
    assert (
        annotator.last("n1") is not None
        and annotator.last("n1")["energy.thesis.io/current-watts"] == "200.0"
    )  # type: ignore[index]
    invalid = events(logs, "node annotation override invalid; keeping the current source")
    assert len(invalid) == 2  # one line per distinct bad value
    assert "99999" in invalid[0]["error"] and "nested too deeply" in invalid[1]["error"]
    assert (
        "nested too deeply"
        in events(logs, "config invalid; keeping the last good config")[0]["error"]
    )


async def test_a_failing_iteration_is_logged_and_the_loop_goes_on(
    tmp_path: Path, annotator: RecordingAnnotator, clock: Clock
) -> None:
    calls: list[str] = []

    def broken_factory(*_: Any, **__: Any) -> Any:
        calls.append("build")
        raise RuntimeError("a bug in a source constructor")

    m = NodeMonitor(
        "n1",
        ConfigStore(str(write_config(tmp_path, "http://127.0.0.1:9"))),
        annotator,
        Metrics(),
        structlog.get_logger("test"),
        source_factory=broken_factory,
        clock=clock,
        wall=clock,
    )
    with capture_logs() as logs:
        delay = await m._iteration(clock.now)
        assert delay == 5  # the poll interval: try again later, do not spin
        clock.advance(5)
        await m._iteration(clock.now)  # not yet due to reconfigure: polls, no source
    failed = events(logs, "monitor iteration failed; keeping the last good state")
    assert len(failed) == 1 and "RuntimeError: a bug in a source constructor" in failed[0]["error"]
    assert calls == ["build"]
    assert events(logs, "power read failing")  # the second iteration ran and said why


# -- plug replies -----------------------------------------------------------------------


async def test_a_reply_too_long_is_malformed_not_a_memory_problem() -> None:
    async def shelly(_: web.Request) -> web.Response:
        return web.json_response({"id": "shellyplusplugs-x", "gen": 2})

    async def status(_: web.Request) -> web.StreamResponse:
        return web.Response(text='{"x": "' + "a" * (MAX_REPLY_BYTES * 4) + '"}')

    app = web.Application()
    app.router.add_get("/shelly", shelly)
    app.router.add_get("/rpc/Shelly.GetStatus", status)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    src = ShellySource(f"127.0.0.1:{runner.addresses[0][1]}", timeout=2.0)
    try:
        with pytest.raises(ReadError) as info:
            await src.read()
    finally:
        await src.close()
        await runner.cleanup()
    assert info.value.kind == "malformed" and "reply longer than" in info.value.message
    assert len(info.value.message) < 400


@pytest.mark.parametrize(
    "body",
    [
        {"switch:0": {"apower": 10**400, "aenergy": {"total": 1}}},
        {"switch:0": {"apower": 1, "aenergy": {"total": 1}}, "sys": {"uptime": 10**400}},
    ],
)
async def test_numbers_too_big_for_a_float(body: dict[str, Any]) -> None:
    async def shelly(_: web.Request) -> web.Response:
        return web.json_response({"id": "shellyplusplugs-x", "gen": 2})

    async def status(_: web.Request) -> web.StreamResponse:
        return web.Response(text=json.dumps(body), content_type="application/json")

    app = web.Application()
    app.router.add_get("/shelly", shelly)
    app.router.add_get("/rpc/Shelly.GetStatus", status)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    src = ShellySource(f"127.0.0.1:{runner.addresses[0][1]}", timeout=2.0)
    try:
        try:
            reading = await src.read()
        except ReadError as exc:
            assert exc.kind == "malformed" and "out of range" in exc.message
        else:
            assert reading.uptime_seconds is None  # a useless uptime: no reboot detection
    finally:
        await src.close()
        await runner.cleanup()


# -- model mode -------------------------------------------------------------------------


async def test_model_mode_logs_a_bad_annotation_once_and_serves_the_rest(
    annotator: RecordingAnnotator, clock: Clock
) -> None:
    bad = NodeInfo(
        "kwok-bad",
        labels={"energy.thesis.io/class": "wyse"},
        annotations={POWER_SOURCE_CONFIG_ANNOTATION: '{"kind": "model", "maxWatts": ' + HUGE},
    )
    view = View([kwok("kwok-0"), bad])
    with capture_logs() as logs:
        m = model_monitor(view, annotator, clock)
        for _ in range(3):
            clock.advance(30)
            await m.tick()
        view.nodes_[1] = NodeInfo(bad.name, labels=bad.labels)  # annotation removed
        await m.tick()
    assert {p[0] for p in annotator.patches} == {"kwok-0"}
    invalid = events(logs, "node annotation override invalid; node not served by the model")
    assert len(invalid) == 1 and invalid[0]["node"] == "kwok-bad"
    assert "4300 digits" in invalid[0]["error"] and "99999" in invalid[0]["error"]
    assert len(events(logs, "node annotation override valid again")) == 1


def test_cpu_quantities_too_big_for_a_float() -> None:
    """Exact, saturated at int64 millicores (the core's reader), never a float overflow."""
    for text in ("9" * 400, "9" * 400 + "m"):
        node = node_info({"metadata": {"name": "n"}, "status": {"allocatable": {"cpu": text}}})
        assert node.allocatable["cpu"] == 2**63 - 1
