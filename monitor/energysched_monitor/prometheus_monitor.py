"""The cluster-wide Prometheus mode: one process, one query per poll for all its nodes.

Why a cluster-wide mode and not a per-node DaemonSet with a shared cache: a DaemonSet's
pods are separate processes on separate nodes, so 1,500 of them would send 1,500 queries
per poll whatever each caches; one process asking once and splitting the answer by node
costs one request per poll for any number of nodes (measured in BENCHMARKS.md). It is the
model mode's loop (:class:`ModelMonitor`: per-node trackers, writes paced by one token
bucket, stalest first) with the readings from Prometheus instead of the model:

    python -m energysched_monitor --prometheus --config /etc/energysched-monitor/config.yaml

It serves every node whose source (annotation, ``nodes``, ``selectors``) is
``kind: prometheus``; nodes sharing the address, query and series label share one
request. The DaemonSet refuses ``kind: prometheus`` with a message naming this mode.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Hashable
from typing import Any

from energysched.contract import POWER_SOURCE_CONFIG_ANNOTATION
from energysched_monitor import prometheus
from energysched_monitor.config import (
    ConfigError,
    MonitorConfig,
    SourceSpec,
    resolve_source,
)
from energysched_monitor.interfaces import NodeInfo
from energysched_monitor.node_monitor import tracker_for
from energysched_monitor.power_model_monitor import ModelMonitor
from energysched_monitor.prometheus import (
    NodeQuery,
    PrometheusClient,
    PrometheusFields,
    combined_query,
    node_outcomes,
)
from energysched_monitor.readings import ReadError, Reading
from energysched_monitor.tracker import NodeTracker, Observation, Reporter


def _query_of(spec: SourceSpec) -> PrometheusFields:
    return spec.settings_as(PrometheusFields)


def _group_key(spec: SourceSpec) -> Hashable:
    """Nodes whose sources differ only in which series is theirs share one query."""
    query = _query_of(spec)
    return (
        spec.address,
        query.query,
        query.timestamp_query,
        query.series_label,
        spec.ca_bundle,
        spec.insecure_skip_tls_verify,
        spec.credentials,
        spec.timeout_seconds,
    )


class _QueryAwareReporter(Reporter):
    """A failed query fails every node it serves with the same error: it is logged once for
    the query (``prometheus query failing``), not once per node; a node's own problem (its
    series missing, several series, an old sample) is still logged for that node."""

    def __init__(self, base: Reporter, query_errors: set[int]) -> None:
        super().__init__(base.metrics, base.log, quiet_ready=base.quiet_ready)
        self._query_errors = query_errors  # ids of this poll's whole-query errors
        self._muted: set[str] = set()  # nodes failing with their query, not logged

    def observed(self, obs: Observation, source: str, describe: str, wall: float) -> None:
        node = obs.node
        if obs.error is not None and id(obs.error) in self._query_errors:
            self._muted.add(node)
            obs = dataclasses.replace(obs, transition=None)
        elif node in self._muted and obs.transition is not None:
            self._muted.discard(node)
            if obs.reading is not None:  # back with its query: the query's line says so
                obs = dataclasses.replace(obs, transition=None)
        super().observed(obs, source, describe, wall)


class PrometheusMonitor(ModelMonitor):
    source_kind = prometheus.PLUGIN.name
    served_by = "Prometheus source"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.specs: dict[str, SourceSpec] = {}
        self.clients: dict[Hashable, PrometheusClient] = {}
        self._query_errors: set[int] = set()
        self._query_state: dict[Hashable, str] = {}  # failing queries: their last error
        self.reporter = _QueryAwareReporter(self.reporter, self._query_errors)

    def describe(self, node: str) -> str:
        spec = self.specs.get(node)
        return spec.describe() if spec else f"prometheus for {node}"

    def _served(self, node: NodeInfo, config: MonitorConfig) -> bool:
        try:
            spec, _ = resolve_source(config, node, POWER_SOURCE_CONFIG_ANNOTATION)
        except ConfigError as exc:
            self._annotation_invalid(node.name, exc)
            return False
        self._annotation_valid(node.name)
        if spec is None or spec.plugin is not prometheus.PLUGIN:
            self.specs.pop(node.name, None)
            return False
        self.specs[node.name] = spec
        return True

    def new_tracker(self, info: NodeInfo, config: MonitorConfig, now: float) -> NodeTracker:
        return tracker_for(info.name, config, self.specs.get(info.name), now)

    def read_one(self, info: NodeInfo) -> Reading | ReadError:
        return ReadError("config", f"node {info.name}: no prometheus source")

    def _client(self, key: Hashable, spec: SourceSpec, config: MonitorConfig) -> PrometheusClient:
        client = self.clients.get(key)
        if client is None:
            assert spec.address is not None
            creds = spec.credentials
            client = self.clients[key] = PrometheusClient(
                spec.address,
                username=creds.username if creds else "",
                password=creds.resolve(config.secrets_dir) if creds else None,
                ca_bundle=spec.ca_bundle,
                insecure=spec.insecure_skip_tls_verify,
                timeout=config.timeout_for(spec),
            )
        return client

    async def read_all(
        self, nodes: dict[str, NodeInfo], config: MonitorConfig
    ) -> dict[str, Reading | ReadError]:
        for deleted in set(self.specs) - set(nodes):  # deleted nodes: forget their source
            del self.specs[deleted]
        self._query_errors.clear()
        groups: dict[Hashable, list[str]] = {}
        for name in nodes:
            groups.setdefault(_group_key(self.specs[name]), []).append(name)
        for gone in set(self.clients) - set(groups):
            await self.clients.pop(gone).close()
        results = await asyncio.gather(
            *(self._read_group(key, names, nodes, config) for key, names in groups.items())
        )
        out: dict[str, Reading | ReadError] = {}
        for result in results:
            out.update(result)
        return out

    async def _read_group(
        self,
        key: Hashable,
        names: list[str],
        nodes: dict[str, NodeInfo],
        config: MonitorConfig,
    ) -> dict[str, Reading | ReadError]:
        spec = self.specs[names[0]]
        query = _query_of(spec)
        assert query.query is not None
        try:
            client = self._client(key, spec, config)
            series = await client.query(combined_query(query.query, query.timestamp_query))
        except (ReadError, ConfigError) as exc:
            error = exc if isinstance(exc, ReadError) else ReadError("config", str(exc))
            self._query_errors.add(id(error))
            if self._query_state.get(key) != error.message:
                self.log.error(
                    "prometheus query failing; its nodes get no reading",
                    source=spec.describe(),
                    nodes=len(names),
                    kind=error.kind,
                    error=error.message,
                )
            self._query_state[key] = error.message
            return dict.fromkeys(names, error)
        if self._query_state.pop(key, None) is not None:
            self.log.info("prometheus query recovered", source=spec.describe(), nodes=len(names))
        wanted = []
        for name in names:
            own = _query_of(self.specs[name])
            wanted.append(
                NodeQuery(name, own.series_value_for(nodes[name]), own.max_sample_age_seconds)
            )
        return node_outcomes(series, query.series_label, wanted, self._wall(), client.base_url)

    async def close(self) -> None:
        while self.clients:
            _, client = self.clients.popitem()
            await client.close()

    async def run(self, stop: asyncio.Event) -> None:
        try:
            await super().run(stop)
        finally:
            await self.close()
