"""Fixtures for the monitor's unit tests: fake plugs on loopback, clocks, recorders."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest
import structlog

from energysched_lab.fake_shelly import FakeShelly

PASSWORD = "s3cret-Pa55word"


@pytest.fixture
async def fake_shelly(clock: Clock) -> AsyncIterator[Callable[..., Awaitable[FakeShelly]]]:
    """Start fake devices: ``device = await fake_shelly(gen=2, password=...)``.

    Their uptime follows the test's clock (as a real plug's follows real time); their
    counter moves only by ``device.advance`` unless ``realtime=True`` is asked for.
    """
    started: list[FakeShelly] = []

    async def start(**kwargs: Any) -> FakeShelly:
        kwargs.setdefault("realtime", False)
        kwargs.setdefault("clock", clock)
        device = FakeShelly(**kwargs)
        await device.start()
        started.append(device)
        return device

    yield start
    for device in started:
        await device.stop()


class Clock:
    """A settable clock for monotonic and wall time."""

    def __init__(self, start: float = 1_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@dataclass
class RecordingAnnotator:
    """A NodeAnnotator that records every patch; can be told to fail."""

    patches: list[tuple[str, dict[str, str | None]]] = field(default_factory=list)
    fail: Exception | None = None

    async def patch_node_annotations(
        self, node: str, annotations: Mapping[str, str | None]
    ) -> None:
        if self.fail is not None:
            raise self.fail
        self.patches.append((node, dict(annotations)))

    def last(self, node: str) -> dict[str, str | None] | None:
        for name, written in reversed(self.patches):
            if name == node:
                return written
        return None


@pytest.fixture
def annotator() -> RecordingAnnotator:
    return RecordingAnnotator()


@pytest.fixture
def log() -> Any:
    return structlog.get_logger("test")
