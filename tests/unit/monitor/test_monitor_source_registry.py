"""The power-source registry: a kind is one module with a PLUGIN plus one registry line.

A kind defined here, in the test and nowhere else, is registered and then read end to end
by the DaemonSet loop (config file, node annotation, build, read, publish, metrics) with
no other change; an unknown kind is an error that names it and lists the known ones, and
never stops the monitor.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import pkgutil
import socket
from collections.abc import MutableMapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Final

import aiohttp
import grimp
import pytest
import structlog
from pydantic import Field, field_validator
from structlog.testing import capture_logs

import energysched_monitor
from energysched.contract import (
    CURRENT_WATTS_ANNOTATION,
    POWER_SOURCE_ANNOTATION,
    POWER_SOURCE_CONFIG_ANNOTATION,
)
from energysched_monitor.cli import build_parser, run
from energysched_monitor.config import ConfigError, ConfigStore, parse_config_text
from energysched_monitor.interfaces import NodeInfo
from energysched_monitor.metrics import Metrics
from energysched_monitor.node_monitor import NodeMonitor
from energysched_monitor.readings import PowerSource, Reading
from energysched_monitor.source_interface import (
    BuildContext,
    KindFields,
    SourcePlugin,
    SourceSpec,
)
from energysched_monitor.source_registry import IN_TREE, SOURCE_KINDS, default_registry

from .conftest import Clock, RecordingAnnotator

#: The in-tree kinds, as an unknown kind's message lists them.
KNOWN: Final = "'shelly', 'rapl', 'nvml', 'rapl+nvml', 'model', 'redfish' or 'prometheus'"

# -- a kind that exists only in this test ----------------------------------------------


class BenchMeterFields(KindFields):
    watts: Annotated[float, Field(ge=0, le=10_000)]
    channel: Annotated[int, Field(ge=0, le=3)] = 0


class BenchMeter:
    """A meter with a fixed reading and a counter, as a lab bench supply would report."""

    built: list[BenchMeter] = []

    def __init__(self, node: str, watts: float, channel: int) -> None:
        self.node, self.watts, self.channel = node, watts, channel
        self.reads = 0
        self.closed = False
        BenchMeter.built.append(self)

    @property
    def kind(self) -> str:
        return "bench-meter"

    @property
    def describe(self) -> str:
        return f"bench meter channel {self.channel} of {self.node}"

    async def read(self) -> Reading:
        self.reads += 1
        return Reading(self.watts, "bench-meter")

    async def close(self) -> None:
        self.closed = True


def _check(fields: BenchMeterFields) -> None:
    if fields.channel == 3 and fields.watts > 100:
        raise ValueError(f"channel 3 carries at most 100 W, got watts {fields.watts}")


def _describe(spec: SourceSpec, fields: BenchMeterFields) -> list[str]:
    return [f"watts={fields.watts} channel={fields.channel}"]


def _build(spec: SourceSpec, fields: BenchMeterFields, ctx: BuildContext) -> PowerSource:
    return BenchMeter(ctx.node, fields.watts, fields.channel)


PLUGIN: Final = SourcePlugin(
    "bench-meter", BenchMeterFields, _build, check=_check, describe=_describe
)
KINDS: Final = default_registry().with_kind(PLUGIN)  # the one registry line, for this test


# -- helpers -----------------------------------------------------------------------------


class Reader:
    def __init__(self, info: NodeInfo) -> None:
        self.info = info

    async def get_node(self, name: str) -> NodeInfo | None:
        return self.info


def node_monitor(
    config: Path, annotator: RecordingAnnotator, clock: Clock, reader: Reader | None = None
) -> NodeMonitor:
    return NodeMonitor(
        "n1",
        ConfigStore(str(config), kinds=KINDS),
        annotator,
        Metrics(),
        structlog.get_logger("test"),
        reader=reader,
        clock=clock,
        wall=clock,
    )


def events(logs: Sequence[MutableMapping[str, Any]], name: str) -> list[MutableMapping[str, Any]]:
    return [e for e in logs if e["event"] == name]


def power(m: NodeMonitor, source: str) -> float | None:
    return m.metrics.registry.get_sample_value(
        "energysched_monitor_power_watts", {"node": "n1", "source": source}
    )


# -- a registered kind runs end to end --------------------------------------------------


async def test_a_registered_kind_runs_end_to_end(
    tmp_path: Path, annotator: RecordingAnnotator, clock: Clock
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("nodes: {n1: {kind: bench-meter, watts: 42.5, channel: 2, maxWatts: 500}}\n")
    m = node_monitor(config, annotator, clock)
    try:
        with capture_logs() as logs:
            await m.reconfigure()
            await m.poll_once()
        assert isinstance(m.source, BenchMeter) and m.source.reads == 1
        assert (m.source.node, m.source.channel) == ("n1", 2)
        assert annotator.last("n1") is not None
        written = annotator.last("n1") or {}
        assert written[CURRENT_WATTS_ANNOTATION] == "42.5"
        assert written[POWER_SOURCE_ANNOTATION] == "bench-meter"
        assert power(m, "bench-meter") == 42.5
        configured = events(logs, "power source configured")
        assert [e["source"] for e in configured] == ["bench-meter watts=42.5 channel=2"]
        assert m.spec is not None and m.spec.max_watts == 500  # the shared keys apply too
    finally:
        await m.close()
    assert BenchMeter.built[-1].closed


async def test_a_registered_kind_in_a_node_annotation(
    tmp_path: Path, annotator: RecordingAnnotator, clock: Clock
) -> None:
    """The override is read with the kinds the file was read with."""
    config = tmp_path / "config.yaml"
    config.write_text("nodes: {}\n")
    info = NodeInfo(
        "n1", annotations={POWER_SOURCE_CONFIG_ANNOTATION: '{"kind": "bench-meter", "watts": 7}'}
    )
    m = node_monitor(config, annotator, clock, Reader(info))
    try:
        await m.reconfigure()
        await m.poll_once()
        assert m.origin == f"annotation {POWER_SOURCE_CONFIG_ANNOTATION}"
        assert (annotator.last("n1") or {})[CURRENT_WATTS_ANNOTATION] == "7.0"
    finally:
        await m.close()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "nodes: {a: {kind: bench-meter, watts: -1}}",
            "nodes.a.watts: input should be greater than or equal to 0, got -1",
        ),
        ("nodes: {a: {kind: bench-meter}}", "nodes.a: watts: required for kind bench-meter"),
        ("nodes: {a: {kind: bench-meter, watts: null}}", "nodes.a: watts: required for kind"),
        (
            "nodes: {a: {kind: bench-meter, watts: 5, chanel: 1}}",
            "nodes.a.chanel: unknown field; allowed: kind, ",
        ),
        (
            "nodes: {a: {kind: bench-meter, watts: 150, channel: 3}}",
            "nodes.a: channel 3 carries at most 100 W, got watts 150.0",
        ),
        (  # a new kind's keys are refused on another kind (a typo of the kind)
            "nodes: {a: {kind: rapl, channel: 1}}",
            "nodes.a: channel: only for kind bench-meter, got kind 'rapl'",
        ),
        (
            "nodes: {a: {kind: bench-meter, watts: 1, caBundle: /etc/ca.pem}}",
            "caBundle/insecureSkipTLSVerify: only for kinds redfish and prometheus, "
            "got kind 'bench-meter'",
        ),
    ],
)
def test_a_registered_kind_is_validated_strictly(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config_text(text, "config.yaml", kinds=KINDS)
    assert message in str(info.value)


def test_registering_leaves_the_default_alone() -> None:
    assert "bench-meter" in KINDS.names and "bench-meter" not in default_registry().names
    assert default_registry().names == SOURCE_KINDS
    with pytest.raises(ConfigError) as info:
        parse_config_text("nodes: {a: {kind: bench-meter, watts: 1}}")
    assert f"nodes.a.kind: input should be {KNOWN}, got 'bench-meter'" in str(info.value)


def test_a_kind_that_cannot_join_says_why() -> None:
    with pytest.raises(ValueError, match="'bench-meter' is registered already"):
        KINDS.with_kind(PLUGIN)

    class Clash(KindFields):
        watts: str = "many"  # bench-meter's watts is a number

    clash = SourcePlugin("clash", Clash, _build)
    with pytest.raises(
        ValueError, match="key 'watts' is declared differently by kind 'bench-meter'"
    ):
        KINDS.with_kind(clash)

    class Bounded(KindFields):
        max_watts: float = 10.0  # the file's own key, for every kind

    with pytest.raises(ValueError, match="declares max_watts, which every kind shares"):
        KINDS.with_kind(SourcePlugin("bounded", Bounded, _build))

    class Decorated(KindFields):
        volts: float = 230.0

        @field_validator("volts")
        @classmethod
        def _mains(cls, value: float) -> float:
            return value

    with pytest.raises(ValueError, match="validator decorators"):
        KINDS.with_kind(SourcePlugin("decorated", Decorated, _build))


def test_every_kind_module_is_registered() -> None:
    """A module that declares a PLUGIN but has no registry line would be a dead kind."""
    declared = []
    for info in pkgutil.iter_modules(energysched_monitor.__path__):
        if info.name == "__main__":  # runs the monitor
            continue
        module = importlib.import_module(f"energysched_monitor.{info.name}")
        plugin = getattr(module, "PLUGIN", None)
        if isinstance(plugin, SourcePlugin):
            declared.append(plugin)
    assert sorted(p.name for p in declared) == sorted(SOURCE_KINDS)
    assert all(any(p is q for q in IN_TREE) for p in declared)


# -- an unknown kind: a clear error, no crash -------------------------------------------


async def test_an_unknown_kind_is_named_with_the_known_ones_and_the_loop_goes_on(
    tmp_path: Path, annotator: RecordingAnnotator, clock: Clock
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("nodes: {n1: {kind: bench-meter, watts: 30}}\n")
    reader = Reader(NodeInfo("n1"))
    m = node_monitor(config, annotator, clock, reader)
    try:
        await m.reconfigure()
        await m.poll_once()
        assert (annotator.last("n1") or {})[CURRENT_WATTS_ANNOTATION] == "30.0"

        # The file names a kind nobody registered: the last good config stays in force.
        config.write_text("nodes: {n1: {kind: thermocouple, address: 10.0.0.9}}\n")
        with capture_logs() as logs:
            await m.reconfigure()
            delay = await m.poll_once()
        assert delay > 0 and m.source is not None and m.source.kind == "bench-meter"
        assert m.metrics.registry.get_sample_value("energysched_monitor_config_valid") == 0
        [bad] = events(logs, "config invalid; keeping the last good config")
        assert (
            "nodes.n1.kind: input should be 'shelly', 'rapl', 'nvml', 'rapl+nvml', 'model', "
            "'redfish', 'prometheus' or 'bench-meter', got 'thermocouple'"
        ) in bad["error"]

        # The same in the node's annotation: logged with the value, the source stays.
        reader.info = NodeInfo(
            "n1", annotations={POWER_SOURCE_CONFIG_ANNOTATION: json.dumps({"kind": "thermocouple"})}
        )
        with capture_logs() as logs:
            await m.reconfigure()
            await m.poll_once()
        [bad] = events(logs, "node annotation override invalid; keeping the current source")
        assert "annotation.kind: input should be 'shelly', " in bad["error"]
        assert "got 'thermocouple'" in bad["error"]
        assert m.source is not None and m.source.kind == "bench-meter"
    finally:
        await m.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_the_process_starts_with_an_unknown_kind_and_says_which(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("nodes: {tvpc: {kind: thermocouple}}\n")
    port = _free_port()
    args = build_parser().parse_args(
        [
            "--node-name", "tvpc", "--config", str(config), "--dry-run",
            "--metrics-port", str(port), "--metrics-host", "127.0.0.1",
        ]
    )  # fmt: skip
    stop = asyncio.Event()
    with capture_logs() as logs:
        task = asyncio.create_task(run(args, stop))
        async with aiohttp.ClientSession() as http:
            deadline = asyncio.get_running_loop().time() + 10
            while True:  # until the probe server answers
                try:
                    async with http.get(f"http://127.0.0.1:{port}/healthz") as resp:
                        assert resp.status == 200
                        break
                except aiohttp.ClientConnectionError:
                    assert asyncio.get_running_loop().time() < deadline, "no probe server"
                    await asyncio.sleep(0.05)
            async with http.get(f"http://127.0.0.1:{port}/metrics") as resp:
                assert "energysched_monitor_config_valid 0.0" in await resp.text()
        stop.set()
        assert await asyncio.wait_for(task, 5) == 0
    [bad] = events(logs, "config invalid at start; running with defaults until fixed")
    assert f"nodes.tvpc.kind: input should be {KNOWN}, got 'thermocouple'" in bad["error"]
    assert not task.exception()


def test_the_monitor_has_no_import_cycle() -> None:
    """The registry imports the kinds, the kinds only the interface: no module of the
    monitor reaches back to one that imports it (import order never holds it together)."""
    graph = grimp.build_graph("energysched_monitor")
    cycles = sorted(
        (importer, imported)
        for importer in graph.modules
        for imported in graph.find_modules_directly_imported_by(importer)
        if imported.startswith("energysched_monitor.")
        and graph.chain_exists(importer=imported, imported=importer)
    )
    assert cycles == []
