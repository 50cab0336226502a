"""The model mode: one process publishes model power for every simulated (KWOK) node.

Each tick computes every served node's power from the cluster caches (no device
I/O), runs it through the same NodeTracker as the DaemonSet, and then writes the
due publications stalest-first, paced by a process-wide WriteBudget (a token
bucket: ``maxWritesPerSecond``, ``burst``) over the tick's poll interval, with at
most ``concurrency`` patches in flight. What the budget cannot fit before the next
tick is not lost: the node is due again then. So the API write rate is bounded by
``min(budget, nodes / min_interval)`` whatever the pods do, and writes are spread
over the interval instead of arriving as one burst per tick.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

from energysched.contract import POWER_SOURCE_CONFIG_ANNOTATION
from energysched_monitor import power_model
from energysched_monitor.config import ConfigError, ConfigStore, MonitorConfig, parse_override
from energysched_monitor.interfaces import ClusterView, NodeAnnotator, NodeInfo, simulated
from energysched_monitor.node_monitor import tracker_for
from energysched_monitor.power_model import ModelSource
from energysched_monitor.publish import WriteBudget
from energysched_monitor.readings import ReadError, Reading, excerpt
from energysched_monitor.tracker import NodeTracker, Observation, Reporter


def served_by_model(node: NodeInfo, config: MonitorConfig) -> bool:
    """KWOK nodes, and nodes whose config or annotation says ``kind: model``.

    Raises ConfigError for an annotation that does not parse (the caller logs it)."""
    if simulated(node):
        return True
    text = node.annotations.get(POWER_SOURCE_CONFIG_ANNOTATION)
    if text:
        return parse_override(text, kinds=config.kinds).plugin is power_model.PLUGIN
    spec, _ = config.source_for(node)
    return spec is not None and spec.plugin is power_model.PLUGIN


class ModelMonitor:
    def __init__(
        self,
        view: ClusterView,
        annotator: NodeAnnotator,
        store: ConfigStore,
        reporter: Reporter,
        log: Any,
        *,
        concurrency: int = 16,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.view = view
        self.annotator = annotator
        self.store = store
        self.reporter = reporter
        self.metrics = reporter.metrics
        self.log = log
        self.concurrency = concurrency
        self._clock, self._wall, self._sleep = clock, wall, sleep
        config = store.config
        self.budget = WriteBudget(config.max_writes_per_second, config.write_burst, clock())
        self.trackers: dict[str, NodeTracker] = {}
        self._synced_logged = False
        self._bad_annotations: dict[str, str] = {}  # node -> the error last logged
        self.last_loop = clock()  # liveness: when the loop last went round

    def _served(self, node: NodeInfo, config: MonitorConfig) -> bool:
        """served_by_model; a bad annotation means not served, logged once per value."""
        try:
            served = served_by_model(node, config)
        except ConfigError as exc:
            self._annotation_invalid(node.name, exc)
            return False
        self._annotation_valid(node.name)
        return served

    def _annotation_invalid(self, node: str, exc: ConfigError) -> None:
        """A node's override annotation is bad: logged once per value, the node not served."""
        if self._bad_annotations.get(node) != str(exc):
            self._bad_annotations[node] = str(exc)
            self.log.error(
                f"node annotation override invalid; node not served by the {self.served_by}",
                node=node,
                annotation=POWER_SOURCE_CONFIG_ANNOTATION,
                error=str(exc),
            )

    def _annotation_valid(self, node: str) -> None:
        if self._bad_annotations.pop(node, None) is not None:
            self.log.info("node annotation override valid again", node=node)

    def reconfigure(self) -> None:
        changed, error = self.store.refresh()
        self.metrics.config_valid.set(1 if self.store.valid else 0)
        if error is not None:
            self.metrics.config_reloads.labels("error").inc()
            self.log.error("config invalid; keeping the last good config", error=str(error))
            return
        if not changed:
            return
        self.metrics.config_reloads.labels("ok").inc()
        config = self.store.config
        self.budget.qps, self.budget.burst = config.max_writes_per_second, config.write_burst
        for name, tracker in self.trackers.items():
            fresh = tracker_for(name, config, None, self._clock())
            tracker.reconfigure(
                policy=fresh.policy,
                backoff=fresh.backoff,
                physical=tracker.physical,
                gap_seconds=config.gap_seconds,
            )

    async def tick(self, deadline: float | None = None) -> int:
        """One pass over all served nodes; writes are paced until ``deadline``
        (default: one poll interval from now). Returns the number of patches sent."""
        if not self.view.has_synced():
            return 0
        if not self._synced_logged:
            self._synced_logged = True
            self.log.info("cluster caches synced; publishing", mode=self.source_kind)
        config = self.store.config
        nodes = {n.name: n for n in self.view.nodes() if self._served(n, config)}
        for gone in set(self.trackers) - set(nodes):
            del self.trackers[gone]
            self.metrics.forget_node(gone)
            self.log.info("node gone; no longer served", node=gone)
        self.metrics.nodes_served.set(len(nodes))

        outcomes = await self.read_all(nodes, config)
        due: list[tuple[float, Observation]] = []
        for name, info in nodes.items():
            tracker = self.trackers.get(name)
            mono, wall = self._clock(), self._wall()
            if tracker is None:
                tracker = self.trackers[name] = self.new_tracker(info, config, mono)
                self.metrics.init_node(name, self.source_kind)
            outcome = outcomes.get(name) or self.read_one(info)
            obs = tracker.observe(outcome, mono, wall)
            self.reporter.observed(obs, self.source_kind, self.describe(name), wall)
            if obs.publish is not None:
                last = tracker.last_published.at if tracker.last_published else float("-inf")
                due.append((last, obs))

        due.sort(key=lambda item: item[0])  # the stalest first: heartbeats never starve
        if deadline is None:
            deadline = self._clock() + config.poll_interval_seconds
        semaphore = asyncio.Semaphore(self.concurrency)

        async def write(obs: Observation) -> None:
            async with semaphore:
                await self._publish(obs)

        tasks: list[asyncio.Task[None]] = []
        for index, (_, obs) in enumerate(due):
            now = self._clock()
            wait = self.budget.wait_time(now)
            if now + wait > deadline:
                self.metrics.writes_deferred.inc(len(due) - index)
                break
            if wait > 0:
                await self._sleep(wait)
            self.budget.take(self._clock())
            tasks.append(asyncio.create_task(write(obs)))
        await asyncio.gather(*tasks)
        return len(tasks)

    # -- what a subclass serving another kind replaces ----------------------------------

    source_kind = power_model.PLUGIN.name
    #: How the log names what serves the nodes ("node not served by the model").
    served_by = "model"

    def describe(self, node: str) -> str:
        return f"model of {node}"

    def new_tracker(self, info: NodeInfo, config: MonitorConfig, now: float) -> NodeTracker:
        return tracker_for(info.name, config, None, now)

    async def read_all(
        self, nodes: dict[str, NodeInfo], config: MonitorConfig
    ) -> dict[str, Reading | ReadError]:
        """Every node's outcome at once, where one request serves all (none here: the
        model reads the caches node by node, :meth:`read_one`)."""
        return {}

    def read_one(self, info: NodeInfo) -> Reading | ReadError:
        try:
            return ModelSource(info.name, self.view).read_now(info)
        except ReadError as exc:
            return exc
        except Exception as exc:  # one node's odd data must not stop the others
            return ReadError("config", f"model failed: {type(exc).__name__}: {exc}")

    async def _publish(self, obs: Observation) -> None:
        assert obs.publish is not None and obs.reading is not None
        tracker = self.trackers[obs.node]
        try:
            await self.annotator.patch_node_annotations(obs.node, dict(obs.publish))
        except Exception as exc:
            t = tracker.publish_failed(self._clock())
            self.reporter.write_result(obs.node, obs.reason or "", t, exc)
            return
        t = tracker.published(obs.reading.watts, obs.at)
        self.reporter.write_result(obs.node, obs.reason or "", t, None)

    async def run(self, stop: asyncio.Event) -> None:
        next_reload = float("-inf")
        while not stop.is_set():
            started = self.last_loop = self._clock()
            try:
                if started >= next_reload:
                    next_reload = started + self.store.config.reload_seconds
                    self.reconfigure()
                await self.tick(started + self.store.config.poll_interval_seconds)
            except Exception as exc:  # logged with its cause; the next tick starts afresh
                self.log.exception(
                    "model tick failed; keeping the last good state",
                    error=f"{type(exc).__name__}: {excerpt(str(exc))}",
                )
            delay = max(0.0, self.store.config.poll_interval_seconds - (self._clock() - started))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=delay)
