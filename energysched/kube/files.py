"""A mounted file (a ConfigMap volume) re-read when its content changes.

ConfigMap volumes update by swapping a symlink, so the content's hash (not the
mtime) decides whether the file changed. An invalid new version never replaces
the last good value: :meth:`WatchedFile.poll` raises the parser's error and the
caller keeps what it has. Every process that reloads a config file uses it (the
scheduler's and the power manager's :class:`ConfigFile`, the monitor's ConfigStore).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Generic, TypeVar

import structlog

from energysched.strict import DocumentError

log = structlog.get_logger(__name__)

T = TypeVar("T")


class WatchedFile(Generic[T]):
    def __init__(self, path: Path, parse: Callable[[bytes], T]) -> None:
        self.path = path
        self.parse = parse
        self.value: T | None = None
        #: Why the last poll did not give a new value (unreadable file), else None.
        self.unreadable: str | None = None
        self._digest = ""

    def load(self) -> T:
        """The first read: any error is the caller's to report (there is no last good value)."""
        data = self.path.read_bytes()
        self._digest = hashlib.sha256(data).hexdigest()
        self.value = self.parse(data)
        return self.value

    def poll(self) -> T | None:
        """The new value when the content changed and parses; None when unchanged or
        unreadable; the parser's exception when the new content is invalid (asked once
        per distinct content: an unchanged invalid file is not reported again)."""
        try:
            data = self.path.read_bytes()
        except OSError as exc:
            self.unreadable = f"{self.path}: {exc.strerror or exc}"
            return None
        self.unreadable = None
        digest = hashlib.sha256(data).hexdigest()
        if digest == self._digest:
            return None
        self._digest = digest
        self.value = self.parse(data)
        return self.value


class ConfigFile(Generic[T]):
    """A component's config file: the value in force, replaced only by a valid new version.

    ``parse`` turns the file's bytes into the config or raises a :class:`DocumentError`
    (a subclass keeps its type) naming the field and the value. No path: the defaults
    apply and never change. What :meth:`poll` raises carries "keeping the last good
    config"; :attr:`last_error` says why the file in force is not the file on disk.
    """

    def __init__(self, path: Path | None, default: T, parse: Callable[[bytes], T]) -> None:
        self.path = path
        self.current = default
        self.last_error: str | None = None
        self._file = WatchedFile(path, parse) if path is not None else None

    def load_initial(self) -> T:
        """At start-up an invalid file is fatal (there is no last good config yet)."""
        if self._file is None:
            return self.current
        self.current = self._file.load()
        return self.current

    def poll(self) -> T | None:
        """The new config when the file changed and is valid; None when nothing changed."""
        if self._file is None:
            return None
        try:
            new = self._file.poll()
        except DocumentError as exc:
            kept = type(exc)(exc.problems, exc.where, "keeping the last good config")
            self.last_error = str(kept)
            raise kept from exc
        if self._file.unreadable:
            self.last_error = f"{self._file.unreadable}; keeping the last good config"
            return None
        if new is None:
            return None
        self.last_error = None
        self.current = new
        return new

    def reload(self, count: Callable[[str], None]) -> T | None:
        """:meth:`poll` with the report every component gives: a log line naming the field
        and value of a rejected file, and ``count("applied" | "invalid")`` for its metric.
        Never raises (a bug in a reader must not end hot reload for good)."""
        try:
            new = self.poll()
        except DocumentError as exc:
            count("invalid")
            log.error("config rejected", error=str(exc))
            return None
        except Exception:
            count("invalid")
            log.exception("config reload failed; keeping the last good config")
            return None
        if new is not None:
            count("applied")
        return new
