"""Build a PowerSource from its configuration (the only place that knows every kind)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from pathlib import Path

from energysched_bench.power import MonotonicCounter
from energysched_monitor.config import ConfigError, MonitorConfig, SourceSpec
from energysched_monitor.interfaces import ClusterView
from energysched_monitor.nvml import NvmlSource
from energysched_monitor.power_model import ModelSource
from energysched_monitor.rapl import RaplSource
from energysched_monitor.readings import PowerSource, ReadError, Reading, SourceKind
from energysched_monitor.redfish import RedfishClient, RedfishSource
from energysched_monitor.shelly import ShellySource


class SumSource:
    """Several software meters of one box added up (RAPL for the CPU, NVML for the GPU)."""

    def __init__(self, kind: SourceKind, parts: Sequence[PowerSource]) -> None:
        self._kind = kind
        self.parts = tuple(parts)
        self._counters = [MonotonicCounter() for _ in self.parts]

    @property
    def kind(self) -> SourceKind:
        return self._kind

    @property
    def describe(self) -> str:
        return " + ".join(p.describe for p in self.parts)

    async def close(self) -> None:
        for part in self.parts:
            await part.close()

    async def read(self) -> Reading:
        readings = await asyncio.gather(*(p.read() for p in self.parts))
        energy: float | None = 0.0
        for counter, reading in zip(self._counters, readings, strict=True):
            if reading.energy_joules is None or energy is None:
                energy = None
                continue
            energy += counter.advance(reading.energy_joules)
        return Reading(
            sum(r.watts for r in readings),
            self._kind,
            estimate=any(r.estimate for r in readings),
            energy_joules=energy,
        )


def build_source(
    spec: SourceSpec,
    config: MonitorConfig,
    *,
    node: str,
    view: ClusterView | None = None,
    environ: Mapping[str, str] | None = None,
) -> PowerSource:
    """A source for ``spec``; ConfigError if it cannot be built (e.g. unreadable secret)."""
    if spec.kind == "shelly":
        assert spec.address is not None
        password = (
            spec.credentials.resolve(config.secrets_dir, environ) if spec.credentials else None
        )
        return ShellySource(
            spec.address,
            username=spec.credentials.username if spec.credentials else "admin",
            password=password,
            component=spec.component,
            timeout=config.timeout_seconds,
        )
    if spec.kind == "redfish":
        assert spec.address is not None
        password = (
            spec.credentials.resolve(config.secrets_dir, environ) if spec.credentials else None
        )
        client = RedfishClient(
            spec.address,
            username=spec.credentials.username if spec.credentials else "",
            password=password,
            auth=spec.auth,
            ca_bundle=spec.ca_bundle,
            insecure=spec.insecure_skip_tls_verify,
            timeout=config.timeout_for(spec),
        )
        return RedfishSource(client, chassis=spec.chassis, schema=spec.schema)
    if spec.kind == "prometheus":
        raise ConfigError(
            f"node {node}: kind prometheus is served by the cluster-wide mode "
            "(--prometheus: one query for all nodes), not by the per-node DaemonSet"
        )
    if spec.kind == "rapl":
        return RaplSource(Path(spec.powercap_root), offset_watts=spec.offset_watts)
    if spec.kind == "nvml":
        return NvmlSource(gpus=spec.gpus)
    if spec.kind == "rapl+nvml":
        return SumSource(
            "rapl+nvml",
            [
                RaplSource(Path(spec.powercap_root), offset_watts=spec.offset_watts),
                NvmlSource(gpus=spec.gpus),
            ],
        )
    if spec.kind == "model":
        if view is None:
            raise ConfigError(
                f"node {node}: kind model is served by the model mode (--model), "
                "not by the per-node DaemonSet"
            )
        return ModelSource(node, view)
    raise ReadError("config", f"unknown source kind {spec.kind!r}")
