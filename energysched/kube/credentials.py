"""Bearer tokens that change: a rotated service-account token file, exec credential plugins.

As client-go does:

* a token file (the in-cluster projected token, a kubeconfig ``tokenFile``) is
  re-read at most every minute (``cachingTokenSource``), and at once when the API
  server answers 401; a file that cannot be read keeps the last good token;
* an ``exec`` plugin (client.authentication.k8s.io v1 / v1beta1) is run with
  ``KUBERNETES_EXEC_INFO``; its token is kept until its ``expirationTimestamp``
  and the plugin runs again then, or on a 401.

The client asks for the token per request and, on a 401, refreshes once and
retries the request once.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import structlog

log = structlog.get_logger(__name__)

#: client-go re-reads a token file this often (transport/token_source.go).
TOKEN_FILE_PERIOD = 60.0
EXEC_TIMEOUT = 60.0
EXEC_API_VERSIONS = (
    "client.authentication.k8s.io/v1",
    "client.authentication.k8s.io/v1beta1",
)


class CredentialError(Exception):
    """A token source cannot give a token (file unreadable, plugin failed)."""


class TokenSource(Protocol):
    async def token(self, refresh: bool = False) -> str | None:
        """The current token; ``refresh`` after a 401 (re-read or re-run at once)."""
        ...


@dataclass
class StaticToken:
    value: str | None

    async def token(self, refresh: bool = False) -> str | None:
        return self.value


@dataclass
class FileToken:
    path: Path
    period: float = TOKEN_FILE_PERIOD
    _value: str | None = field(default=None, init=False)
    _read_at: float = field(default=-1e18, init=False)

    def read(self) -> str:
        try:
            value = self.path.read_text().strip()
        except (OSError, UnicodeDecodeError) as exc:
            why = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            raise CredentialError(f"token file {str(self.path)!r}: {why}") from exc
        if not value:
            raise CredentialError(f"token file {str(self.path)!r} is empty")
        return value

    async def token(self, refresh: bool = False) -> str | None:
        if refresh or self._value is None or time.monotonic() - self._read_at >= self.period:
            try:
                value = self.read()
            except CredentialError as exc:
                if self._value is None:
                    raise
                # The kubelet swaps the file atomically, but a volume can hiccup:
                # keep the last good token rather than send none.
                log.warning("token file unreadable, keeping the last token", error=str(exc))
                return self._value
            if self._value is not None and value != self._value:
                log.info("service-account token rotated", file=str(self.path))
            self._value, self._read_at = value, time.monotonic()
        return self._value


@dataclass
class ExecToken:
    """A kubeconfig ``users[].user.exec`` plugin."""

    command: str
    args: Sequence[str] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    api_version: str = EXEC_API_VERSIONS[0]
    cwd: Path | None = None
    where: str = ""  # "kubeconfig FILE: user NAME" for messages
    _value: str | None = field(default=None, init=False)
    _expires: float | None = field(default=None, init=False)  # time.time()
    _lock: asyncio.Lock | None = field(default=None, init=False)

    def _fresh(self) -> bool:
        # Refresh a little before the plugin's own expiry, as client-go's margin does.
        return self._value is not None and (
            self._expires is None or time.time() < self._expires - 10
        )

    async def token(self, refresh: bool = False) -> str | None:
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if refresh or not self._fresh():
                # subprocess.run in a thread: the event loop never waits on the plugin.
                self._value, self._expires = await asyncio.to_thread(self.run)
        return self._value

    def token_sync(self) -> str:
        """For callers without an event loop (the operator's kopf login runs in a thread)."""
        value, _ = self.run()
        return value

    def run(self) -> tuple[str, float | None]:
        info = {
            "apiVersion": self.api_version,
            "kind": "ExecCredential",
            "spec": {"interactive": False},
        }
        env = {**os.environ, **self.env, "KUBERNETES_EXEC_INFO": json.dumps(info)}
        try:
            proc = subprocess.run(
                [self.command, *self.args],
                env=env,
                cwd=self.cwd,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=EXEC_TIMEOUT,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise CredentialError(f"{self.where}: exec plugin {self.command!r}: {exc}") from exc
        if proc.returncode != 0:
            err = proc.stderr.decode(errors="replace").strip()[-500:]
            raise CredentialError(
                f"{self.where}: exec plugin {self.command!r} exited {proc.returncode}: {err}"
            )
        return self.parse(proc.stdout)

    def parse(self, out: bytes) -> tuple[str, float | None]:
        try:
            doc: Any = json.loads(out)
        except (ValueError, RecursionError) as exc:
            raise CredentialError(
                f"{self.where}: exec plugin {self.command!r} printed no JSON: {out[:200]!r}"
            ) from exc
        if not isinstance(doc, dict) or doc.get("kind") != "ExecCredential":
            raise CredentialError(
                f"{self.where}: exec plugin {self.command!r} printed no ExecCredential"
            )
        if doc.get("apiVersion") != self.api_version:
            raise CredentialError(
                f"{self.where}: exec plugin answered apiVersion {doc.get('apiVersion')!r},"
                f" expected {self.api_version!r}"
            )
        status = doc.get("status")
        status = status if isinstance(status, dict) else {}
        token = status.get("token")
        if not isinstance(token, str) or not token:
            extra = (
                " (client certificates from exec plugins are not supported; use a token)"
                if status.get("clientCertificateData")
                else ""
            )
            raise CredentialError(f"{self.where}: exec plugin gave no status.token{extra}")
        expires: float | None = None
        stamp = status.get("expirationTimestamp")
        if stamp:
            try:
                expires = dt.datetime.fromisoformat(str(stamp).replace("Z", "+00:00")).timestamp()
            except ValueError as exc:
                raise CredentialError(
                    f"{self.where}: exec plugin expirationTimestamp {stamp!r} is not RFC 3339"
                ) from exc
        return token, expires
