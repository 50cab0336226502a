"""The reflector against a scripted client: relist, failures of every kind, handler bugs.

The client here replays LIST answers and watch streams (lists of events or an
exception); the real API server's behaviour is covered in tests/integration/kube.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from energysched.kube.client import JSON, ApiError, KubeClient, WatchEvent, WatchSilent
from energysched.kube.config import ClusterAccess
from energysched.kube.reflector import Reflector

Step = list[WatchEvent | BaseException] | BaseException  # an error inside: raised mid-stream


def obj(name: str, rv: str, ns: str = "ns") -> JSON:
    return {"metadata": {"name": name, "namespace": ns, "resourceVersion": rv}}


class ScriptedKube(KubeClient):
    """``lists``: LIST answers in order; ``watches``: per watch call, events or an error.

    When the script is exhausted a watch blocks (as an idle stream does).
    """

    def __init__(self, lists: list[list[JSON] | BaseException], watches: list[Step]) -> None:
        super().__init__(ClusterAccess("http://127.0.0.1:1", None), qps=0)
        self.lists = lists
        self.watches = watches
        self.watch_rvs: list[str] = []
        self.list_calls = 0

    async def list_all(self, path: str, *, limit: int = 500, **params: str | int) -> JSON:
        self.list_calls += 1
        answer = self.lists.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        rv = max((int(o["metadata"]["resourceVersion"]) for o in answer), default=1)
        return {"items": copy.deepcopy(answer), "metadata": {"resourceVersion": str(rv)}}

    async def watch(  # type: ignore[override]
        self,
        path: str,
        resource_version: str,
        *,
        timeout_seconds: int = 300,
        bookmarks: bool = True,
        on_connect: Callable[[], None] | None = None,
        **params: str | int,
    ) -> AsyncIterator[WatchEvent]:
        self.watch_rvs.append(resource_version)
        if not self.watches:
            if on_connect:
                on_connect()
            await asyncio.Event().wait()
        step = self.watches.pop(0)
        if isinstance(step, BaseException):
            raise step
        if on_connect:
            on_connect()
        for ev in step:
            if isinstance(ev, BaseException):
                raise ev
            yield ev


class Recorder:
    def __init__(self, fail_on: str | None = None) -> None:
        self.seen: list[tuple[str, str]] = []
        self.fail_on = fail_on

    def __call__(self, event: str, o: JSON, old: JSON | None) -> None:
        name = o["metadata"]["name"]
        if name == self.fail_on:
            raise KeyError("a bug in the handler")
        self.seen.append((event, name))


async def run_until(reflector: Reflector, done: Callable[[], bool], timeout: float = 5) -> None:
    task = asyncio.create_task(reflector.run())
    try:
        async with asyncio.timeout(timeout):
            while not done():
                if task.done():
                    task.result()  # re-raise what ended it
                    raise AssertionError("reflector ended")
                await asyncio.sleep(0.01)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_relist_after_expiry_reports_what_vanished_as_deleted() -> None:
    kube = ScriptedKube(
        lists=[[obj("a", "1"), obj("b", "2")], [obj("b", "5"), obj("c", "6")]],
        watches=[ApiError(410, "Expired", "too old")],
    )
    rec = Recorder()
    reflector = Reflector(kube, "/api/v1/pods", rec, name="pods")
    await run_until(reflector, lambda: kube.list_calls == 2 and len(rec.seen) >= 5)
    assert rec.seen == [
        ("ADDED", "a"),
        ("ADDED", "b"),
        ("DELETED", "a"),  # gone while the watch was expired: must not linger in the cache
        ("MODIFIED", "b"),
        ("ADDED", "c"),
    ]
    assert set(reflector.store) == {"ns/b", "ns/c"}
    assert reflector.stats.relists_after_expiry == 1


async def test_relist_does_not_report_unchanged_objects() -> None:
    kube = ScriptedKube(
        lists=[[obj("a", "1")], [obj("a", "1")]], watches=[ApiError(410, "Expired", "x")]
    )
    rec = Recorder()
    await run_until(Reflector(kube, "/p", rec), lambda: kube.list_calls == 2)
    await asyncio.sleep(0)
    assert rec.seen == [("ADDED", "a")]


@pytest.mark.parametrize(
    "error",
    [
        ValueError("a surprise in the client"),
        RuntimeError("a bug"),
        ApiError(0, "BadWatchEvent", "malformed watch event"),
    ],
)
async def test_any_watch_error_is_retried_not_fatal(
    error: Exception, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(asyncio, "sleep", _no_sleep)
    kube = ScriptedKube(
        lists=[[obj("a", "1")], [obj("a", "1"), obj("b", "3")]],
        watches=[error, [WatchEvent("ADDED", obj("b", "3"))]],
    )
    rec = Recorder()
    health: list[bool] = []
    reflector = Reflector(kube, "/p", rec, on_health=lambda name, up: health.append(up))
    await run_until(reflector, lambda: ("ADDED", "b") in rec.seen)
    assert reflector.stats.errors == 1
    assert health[:3] == [True, False, True]  # listed, watch failed, back


async def test_a_transport_error_resumes_from_the_last_resource_version(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(asyncio, "sleep", _no_sleep)
    kube = ScriptedKube(
        lists=[[obj("a", "1")]],
        watches=[
            [WatchEvent("MODIFIED", obj("a", "7"))],
            ApiError(0, "ClientConnectorError", "connection refused"),
        ],
    )
    reflector = Reflector(kube, "/p", Recorder())
    await run_until(reflector, lambda: len(kube.watch_rvs) >= 3)
    assert kube.watch_rvs[:3] == ["1", "7", "7"]
    assert kube.list_calls == 1  # no relist for a transport error


async def test_a_failing_handler_does_not_end_the_watch() -> None:
    kube = ScriptedKube(
        lists=[[obj("a", "1")]],
        watches=[[WatchEvent("ADDED", obj("bad", "2")), WatchEvent("ADDED", obj("c", "3"))]],
    )
    rec = Recorder(fail_on="bad")
    reflector = Reflector(kube, "/p", rec)
    await run_until(reflector, lambda: ("ADDED", "c") in rec.seen)
    assert reflector.stats.handler_errors == 1
    assert "ns/bad" in reflector.store  # the cache stays true even if a handler is not
    assert reflector.resource_version == "3"


async def test_a_list_that_fails_leaves_the_reflector_down_and_retrying(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(asyncio, "sleep", _no_sleep)
    kube = ScriptedKube(
        lists=[ApiError(503, "ServiceUnavailable", "x"), TypeError("odd"), [obj("a", "1")]],
        watches=[],
    )
    reflector = Reflector(kube, "/p", Recorder())
    await run_until(reflector, lambda: reflector.synced.is_set())
    assert reflector.up and reflector.down_since is None and kube.list_calls == 3


_real_sleep = asyncio.sleep


async def _no_sleep(delay: float, result: Any = None) -> Any:
    """Backoff without waiting (the loop still yields, so the test can observe)."""
    return await _real_sleep(0, result)


async def test_a_silent_watch_is_re_established_from_its_resource_version_and_stays_up() -> None:
    """Silence (no event, no bookmark) ends the watch; a server that answers the next one
    resumes it: no relist, no error, the cache never counted as down."""
    kube = ScriptedKube(
        lists=[[obj("a", "1")]],
        watches=[[WatchEvent("MODIFIED", obj("a", "7")), WatchSilent(62)], []],
    )
    health: list[bool] = []
    reflector = Reflector(kube, "/p", Recorder(), on_health=lambda name, up: health.append(up))
    await run_until(reflector, lambda: len(kube.watch_rvs) >= 3)
    assert kube.watch_rvs[:2] == ["1", "7"]
    assert reflector.stats.silent_watches == 1
    assert (reflector.stats.errors, kube.list_calls) == (0, 1)
    assert health == [True] and reflector.up


async def test_silence_then_no_answer_takes_the_reflector_down_until_a_watch_is_answered(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A stopped server: the watch goes silent, the next one is not answered (down), a later
    one is (up again), from the last resourceVersion."""
    monkeypatch.setattr(asyncio, "sleep", _no_sleep)
    kube = ScriptedKube(
        lists=[[obj("a", "1")]],
        watches=[
            [WatchEvent("MODIFIED", obj("a", "7")), WatchSilent(62)],
            ApiError(0, "WatchNoAnswer", "the server did not answer within 15 s"),
            [WatchEvent("ADDED", obj("b", "9"))],
        ],
    )
    rec = Recorder()
    health: list[bool] = []
    reflector = Reflector(kube, "/p", rec, on_health=lambda name, up: health.append(up))
    await run_until(reflector, lambda: ("ADDED", "b") in rec.seen)
    assert health == [True, False, True]
    assert kube.watch_rvs[:3] == ["1", "7", "7"]
    assert (reflector.stats.silent_watches, reflector.stats.errors) == (1, 1)
