"""Lease-based leader election (coordination.k8s.io/v1), as client-go's leaderelection.

* A candidate takes the Lease when it does not exist or its holder has not
  renewed it for ``lease_duration`` — measured on OUR clock from when we last
  saw the record change, never by comparing timestamps across machines.
* The leader renews every ``retry_period``; if it cannot renew within
  ``renew_deadline`` it stops leading. ``renew_deadline`` < ``lease_duration``,
  so the old leader stops binding before anyone else may take over: two
  replicas never both bind.
* Every write is an optimistic update on the Lease's resourceVersion.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from dataclasses import dataclass, field

import structlog

from energysched.kube.client import JSON, ApiError, KubeClient, api_path

log = structlog.get_logger(__name__)


def _now_micro() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class LeaderElector:
    kube: KubeClient
    namespace: str
    name: str
    identity: str
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0
    _observed: tuple[str, str] = field(default=("", ""), init=False)  # (holder, renewTime)
    _observed_at: float = field(default=0.0, init=False)
    _last_renew: float = field(default=-1e18, init=False)
    became_leader: asyncio.Event = field(default_factory=asyncio.Event, init=False)
    transitions: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        if not self.retry_period < self.renew_deadline < self.lease_duration:
            raise ValueError("need retry_period < renew_deadline < lease_duration")

    @property
    def path(self) -> str:
        return api_path("coordination.k8s.io/v1", "leases", self.namespace, self.name)

    def is_leader(self) -> bool:
        """True only while our last successful renewal is within the renew deadline."""
        return (
            self.became_leader.is_set()
            and time.monotonic() - self._last_renew < self.renew_deadline
        )

    def seconds_since_renewal(self) -> float:
        return time.monotonic() - self._last_renew

    async def run(self) -> None:
        """Acquire, then renew until leadership is lost (then return)."""
        while not await self._try_acquire_or_renew():
            await asyncio.sleep(self.retry_period)
        self.became_leader.set()
        self.transitions += 1
        log.info("became leader", lease=f"{self.namespace}/{self.name}", identity=self.identity)
        while True:
            await asyncio.sleep(self.retry_period)
            deadline = self._last_renew + self.renew_deadline
            while time.monotonic() < deadline:
                if await self._try_acquire_or_renew():
                    break
                await asyncio.sleep(
                    min(self.retry_period / 2, max(0.0, deadline - time.monotonic()))
                )
            else:
                self.became_leader.clear()
                log.error("lost leadership: could not renew in time", identity=self.identity)
                return

    async def release(self) -> None:
        """Give the lease up on a clean shutdown so a standby takes over at once."""
        if not self.became_leader.is_set():
            return
        self.became_leader.clear()
        try:
            lease = await self.kube.get(self.path)
            if lease["spec"].get("holderIdentity") == self.identity:
                lease["spec"]["holderIdentity"] = None
                lease["spec"]["leaseDurationSeconds"] = 1
                await self.kube.replace(self.path, lease)
        except ApiError as exc:
            log.warning("could not release lease", error=str(exc))

    async def _try_acquire_or_renew(self) -> bool:
        start = time.monotonic()
        spec = {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": int(self.lease_duration),
            "renewTime": _now_micro(),
        }
        try:
            lease: JSON = await self.kube.get(self.path)
        except ApiError as exc:
            if not exc.not_found:
                log.warning("lease read failed", error=str(exc))
                return False
            body = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": self.name, "namespace": self.namespace},
                "spec": {**spec, "acquireTime": spec["renewTime"], "leaseTransitions": 0},
            }
            try:
                await self.kube.create(
                    api_path("coordination.k8s.io/v1", "leases", self.namespace), body
                )
            except ApiError:
                return False
            self._last_renew = start
            return True

        current = lease.get("spec") or {}
        holder = current.get("holderIdentity") or ""
        record = (holder, str(current.get("renewTime")))
        if record != self._observed:
            self._observed, self._observed_at = record, time.monotonic()
        duration = float(current.get("leaseDurationSeconds") or self.lease_duration)
        held_by_other = holder and holder != self.identity
        if held_by_other and time.monotonic() - self._observed_at < duration:
            return False
        new_spec = {**current, **spec}
        if holder != self.identity:
            new_spec["acquireTime"] = spec["renewTime"]
            new_spec["leaseTransitions"] = int(current.get("leaseTransitions") or 0) + 1
        lease["spec"] = new_spec
        try:
            await self.kube.replace(self.path, lease)  # carries resourceVersion: optimistic
        except ApiError as exc:
            if not exc.conflict:
                log.warning("lease update failed", error=str(exc))
            return False
        self._last_renew = start
        return True
