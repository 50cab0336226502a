"""The DaemonSet loop: one node, one power source, thin I/O around the NodeTracker."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable, Mapping
from typing import Any

from energysched.contract import POWER_SOURCE_CONFIG_ANNOTATION
from energysched_monitor.config import (
    ConfigError,
    ConfigStore,
    MonitorConfig,
    SourceSpec,
    resolve_source,
)
from energysched_monitor.failures import Backoff, ErrorState
from energysched_monitor.interfaces import ClusterView, NodeAnnotator, NodeInfo, NodeReader
from energysched_monitor.metrics import Metrics
from energysched_monitor.readings import PhysicalRange, PowerSource, ReadError, Reading, excerpt
from energysched_monitor.sources import build_source
from energysched_monitor.tracker import NodeTracker, Observation, Reporter

SourceFactory = Callable[..., PowerSource]


def tracker_for(
    node: str, config: MonitorConfig, spec: SourceSpec | None, now: float
) -> NodeTracker:
    return NodeTracker(
        node,
        policy=config.publish,
        backoff=backoff_for(config, spec),
        physical=spec.physical_range if spec else PhysicalRange(),
        gap_seconds=config.gap_seconds_for(spec),
        now=now,
    )


def backoff_for(config: MonitorConfig, spec: SourceSpec | None) -> Backoff:
    """The source's poll interval (a BMC's is longer), backing off up to the file's cap."""
    poll = config.poll_for(spec)
    return Backoff(poll, max(config.max_backoff_seconds, poll))


async def read_guarded(
    source: PowerSource, config: MonitorConfig, log: Any, spec: SourceSpec | None = None
) -> Reading | ReadError:
    """One read with a safety-net deadline; never raises."""
    try:
        async with asyncio.timeout(config.read_deadline_for(spec)):
            return await source.read()
    except ReadError as exc:
        return exc
    except TimeoutError:
        return ReadError("timeout", f"{source.describe}: no answer (safety deadline)")
    except Exception as exc:  # a bug in a source must not stop the monitor
        log.exception("power source raised unexpectedly", source=source.describe)
        return ReadError("malformed", f"{type(exc).__name__}: {exc}")


class NodeMonitor:
    """Reads this node's source every poll interval and publishes as the tracker says."""

    def __init__(
        self,
        node: str,
        store: ConfigStore,
        annotator: NodeAnnotator,
        metrics: Metrics,
        log: Any,
        *,
        reader: NodeReader | None = None,
        view: ClusterView | None = None,
        source_factory: SourceFactory = build_source,
        environ: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.node = node
        self.store = store
        self.annotator = annotator
        self.metrics = metrics
        self.log = log.bind(node=node)
        self.reporter = Reporter(metrics, log)
        self.reader = reader
        self.view = view
        self._factory = source_factory
        self._environ = environ
        self._clock, self._wall = clock, wall
        self.spec: SourceSpec | None = None
        self.origin = "none"
        self.source: PowerSource | None = None
        self.source_error: ReadError | None = None
        self.tracker = tracker_for(node, store.config, None, clock())
        self._node_read = ErrorState(clock())
        self._annotation_error: str | None = None
        self._next_reconfigure = float("-inf")
        self._configured = False
        self.last_loop = clock()  # liveness: when the loop last went round
        self._rng = random.Random()  # poll jitter: monitors that start together drift apart

    # -- configuration -------------------------------------------------------------

    async def _node_info(self) -> NodeInfo:
        if self.reader is None:
            return NodeInfo(self.node)
        try:
            info = await self.reader.get_node(self.node)
        except Exception as exc:
            t = self._node_read.failed("http", self._clock())
            if t is not None:
                self.log.error(
                    "cannot read own node object; keeping the current source",
                    error=f"{type(exc).__name__}: {exc}",
                )
            raise
        t = self._node_read.succeeded(self._clock())
        if t is not None and t.old is not None:
            self.log.info("node object readable again")
        if info is None:
            self.log.warning("node object not found; is NODE_NAME right?")
            return NodeInfo(self.node)
        return info

    async def reconfigure(self) -> None:
        """Re-read the file and the node's annotation; rebuild the source if it changed."""
        changed, error = self.store.refresh()
        config = self.store.config
        self.metrics.config_valid.set(1 if self.store.valid else 0)
        if error is not None:
            self.metrics.config_reloads.labels("error").inc()
            self.log.error("config invalid; keeping the last good config", error=str(error))
        elif changed:
            self.metrics.config_reloads.labels("ok").inc()
            self.log.info("config loaded", path=self.store.path)
        try:
            info = await self._node_info()
        except Exception:
            return
        try:
            spec, origin = resolve_source(config, info, POWER_SOURCE_CONFIG_ANNOTATION)
            if self._annotation_error is not None:
                self.log.info("node annotation override valid again")
            self._annotation_error = None
        except ConfigError as exc:
            if str(exc) != self._annotation_error:
                self.log.error(
                    "node annotation override invalid; keeping the current source",
                    annotation=POWER_SOURCE_CONFIG_ANNOTATION,
                    error=str(exc),
                )
            self._annotation_error = str(exc)
            spec, origin = self.spec, self.origin
        self.tracker.reconfigure(
            policy=config.publish,
            backoff=backoff_for(config, spec),
            physical=spec.physical_range if spec else self.tracker.physical,
            gap_seconds=config.gap_seconds_for(spec),
        )
        unchanged = spec == self.spec and (self.source is not None or spec is None)
        if self._configured and unchanged and not changed:
            return
        await self._switch_source(spec, origin, config)

    async def _switch_source(
        self, spec: SourceSpec | None, origin: str, config: MonitorConfig
    ) -> None:
        if self.source is not None:
            await self.source.close()
        self.source, self.source_error = None, None
        if spec != self.spec:
            self.tracker.new_source()
        self.spec, self.origin, self._configured = spec, origin, True
        if spec is None:
            self.source_error = ReadError(
                "config",
                f"no power source configured for node {self.node} "
                f"(config file, selectors or annotation {POWER_SOURCE_CONFIG_ANNOTATION})",
            )
            return
        try:
            self.source = self._factory(
                spec, config, node=self.node, view=self.view, environ=self._environ
            )
        except (ConfigError, ReadError) as exc:
            self.source_error = ReadError("config", str(exc))
            return
        self.metrics.init_node(self.node, spec.kind)
        self.log.info("power source configured", source=spec.describe(), origin=origin)
        if spec.insecure_skip_tls_verify:
            self.log.warning(
                "TLS verification is OFF for this power source (insecureSkipTLSVerify): "
                "anyone on the path can forge its readings",
                source=spec.describe(),
            )

    # -- polling -------------------------------------------------------------------

    async def poll_once(self) -> float:
        """One read (and maybe one patch). Returns the delay before the next poll."""
        mono, wall = self._clock(), self._wall()
        if self.source is None:
            outcome: Reading | ReadError = self.source_error or ReadError(
                "config", "no power source"
            )
            label, describe = (self.spec.kind if self.spec else "none"), "none"
        else:
            outcome = await read_guarded(self.source, self.store.config, self.log, self.spec)
            label, describe = self.source.kind, self.source.describe
            mono, wall = self._clock(), self._wall()
        obs = self.tracker.observe(outcome, mono, wall)
        self.reporter.observed(obs, label, describe, wall)
        if obs.publish is not None:
            await self._publish(obs)
        return obs.next_delay

    async def _publish(self, obs: Observation) -> None:
        assert obs.publish is not None and obs.reading is not None
        try:
            await self.annotator.patch_node_annotations(self.node, dict(obs.publish))
        except Exception as exc:
            t = self.tracker.publish_failed(self._clock())
            self.reporter.write_result(self.node, obs.reason or "", t, exc)
            return
        t = self.tracker.published(obs.reading.watts, obs.at)
        self.reporter.write_result(self.node, obs.reason or "", t, None)

    async def close(self) -> None:
        if self.source is not None:
            await self.source.close()
            self.source = None

    async def _iteration(self, now: float) -> float:
        """Reconfigure when due and poll once; a bug in either is logged with its cause
        and the loop goes on with the last good source and config (never a dead monitor
        that the liveness probe would only notice later)."""
        try:
            if now >= self._next_reconfigure:
                self._next_reconfigure = now + self.store.config.reload_seconds
                await self.reconfigure()
            return await self.poll_once()
        except Exception as exc:
            self.log.exception(
                "monitor iteration failed; keeping the last good state",
                error=f"{type(exc).__name__}: {excerpt(str(exc))}",
            )
            return self.store.config.poll_interval_seconds

    async def run(self, stop: asyncio.Event) -> None:
        self.metrics.nodes_served.set(1)
        try:
            while not stop.is_set():
                now = self.last_loop = self._clock()
                delay = await self._iteration(now) * self._rng.uniform(0.9, 1.1)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=delay)
        finally:
            await self.close()
