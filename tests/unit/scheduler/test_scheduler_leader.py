"""LeaderElector: the timing invariant, and single acquire/renew steps on a fake Lease store.

Failover between real replicas is the integration test (test_leader_failover.py).
"""

from __future__ import annotations

import types

import pytest

from energysched.kube.client import ApiError, api_path
from energysched.scheduler import leader
from energysched.scheduler.leader import LeaderElector
from tests.unit.scheduler.fakes import FakeKube

LEASE = api_path("coordination.k8s.io/v1", "leases", "ns", "sched")


def elector(kube: FakeKube, identity: str = "me", **timing: float) -> LeaderElector:
    return LeaderElector(kube, "ns", "sched", identity, **timing)


@pytest.mark.parametrize(
    ("lease", "renew", "retry"),
    [
        (10, 10, 2),  # renew deadline not below the lease duration
        (10, 12, 2),
        (15, 10, 10),  # retry period not below the renew deadline
        (15, 10, 11),
        (15, 10, 0),  # fine: below
    ],
)
def test_constructor_requires_retry_below_renew_below_lease(
    lease: float, renew: float, retry: float
) -> None:
    kube = FakeKube()
    if retry < renew < lease:
        elector(kube, lease_duration=lease, renew_deadline=renew, retry_period=retry)
        return
    with pytest.raises(ValueError, match="retry_period < renew_deadline < lease_duration"):
        elector(kube, lease_duration=lease, renew_deadline=renew, retry_period=retry)


def test_defaults_are_client_gos_and_not_leading_at_first() -> None:
    e = elector(FakeKube())
    assert (e.lease_duration, e.renew_deadline, e.retry_period) == (15.0, 10.0, 2.0)
    assert not e.is_leader() and e.transitions == 0


async def test_a_missing_lease_is_created_with_us_as_holder() -> None:
    kube = FakeKube()
    assert await elector(kube)._try_acquire_or_renew()
    spec = kube.objects[LEASE]["spec"]
    assert spec["holderIdentity"] == "me" and spec["leaseDurationSeconds"] == 15
    assert spec["leaseTransitions"] == 0 and spec["acquireTime"] == spec["renewTime"]


async def test_a_fresh_lease_of_someone_else_is_respected() -> None:
    kube = FakeKube()
    assert await elector(kube, "other")._try_acquire_or_renew()
    me = elector(kube)
    assert not await me._try_acquire_or_renew()
    assert kube.objects[LEASE]["spec"]["holderIdentity"] == "other"
    assert not any(verb == "replace" for verb, _, _ in kube.calls)


async def test_an_expired_lease_is_taken_over_with_a_transition(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    kube = FakeKube()
    assert await elector(kube, "other")._try_acquire_or_renew()
    me = elector(kube)
    clock = [1000.0]
    # Only the elector's clock: the event loop keeps the real one.
    monkeypatch.setattr(leader, "time", types.SimpleNamespace(monotonic=lambda: clock[0]))
    assert not await me._try_acquire_or_renew()  # first sight of the record starts our timer
    clock[0] += 14.9
    assert not await me._try_acquire_or_renew()
    clock[0] += 0.2  # the holder has not renewed for longer than its lease, on OUR clock
    assert await me._try_acquire_or_renew()
    spec = kube.objects[LEASE]["spec"]
    assert spec["holderIdentity"] == "me" and spec["leaseTransitions"] == 1


async def test_renewing_our_own_lease_keeps_acquire_time() -> None:
    kube = FakeKube()
    me = elector(kube)
    assert await me._try_acquire_or_renew()
    acquired = kube.objects[LEASE]["spec"]["acquireTime"]
    assert await me._try_acquire_or_renew()
    spec = kube.objects[LEASE]["spec"]
    assert spec["acquireTime"] == acquired and spec["leaseTransitions"] == 0


@pytest.mark.parametrize("verb", ["get", "replace"])
async def test_api_errors_and_conflicts_are_a_plain_no(verb: str) -> None:
    kube = FakeKube()
    me = elector(kube)
    assert await me._try_acquire_or_renew()
    kube.fail[verb] = ApiError(409 if verb == "replace" else 500, "x", "boom")
    assert not await me._try_acquire_or_renew()
