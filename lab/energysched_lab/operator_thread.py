"""The operator in a thread of its own, for the experiment and the tests.

kopf assumes the event loop is its own (it cancels every task it did not see
before it started when it stops), so beside a scheduler it runs in a thread
with its own loop (kopf's "embedding" pattern), stopped through a flag. The two
share nothing mutable: each reads the cluster through its own clients.
"""

from __future__ import annotations

import asyncio
import threading
from types import TracebackType

import kopf

from energysched.operator.handlers import build_registry, build_settings
from energysched.operator.main import quiet_kopf_object_logs
from energysched.operator.runtime import OperatorOptions, OperatorRuntime


class OperatorThread:
    """The operator in a daemon thread with its own event loop.

    Usage::

        with OperatorThread(OperatorOptions(kubeconfig=path)) as op:
            op.runtime.synced.wait(30)
            ...
    """

    def __init__(self, options: OperatorOptions, *, quiet: bool = True) -> None:
        if quiet:
            quiet_kopf_object_logs()
        self.runtime = OperatorRuntime(options)
        self.registry = build_registry(self.runtime)
        self.settings = build_settings(embedded=True)
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, name="energysched-operator", daemon=True)

    def _main(self) -> None:
        try:
            asyncio.run(
                kopf.operator(
                    registry=self.registry,
                    settings=self.settings,
                    clusterwide=True,
                    standalone=True,
                    stop_flag=self._stop,
                    ready_flag=self._ready,
                    liveness_endpoint=self.runtime.options.liveness_endpoint,
                )
            )
        except BaseException as exc:  # reported to the owner through .error
            self.error = exc
        finally:
            self._ready.set()  # never leave start() waiting on a dead thread

    def start(self, timeout: float | None = 60.0) -> None:
        """Start the thread; wait until kopf has run its start-up (the state is seeded)."""
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError(f"the operator did not start within {timeout} s")
        if self.error is not None:
            raise RuntimeError(f"the operator failed to start: {self.error}") from self.error

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError(f"the operator thread did not stop within {timeout} s")

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def __enter__(self) -> OperatorThread:
        self.start()
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
