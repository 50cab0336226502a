"""The scheduler's side of waking nodes: see :mod:`energysched.powermanager.wanted`."""

from __future__ import annotations

from energysched.powermanager.wanted import request_patch, waiting_on, wake_target

__all__ = ["request_patch", "waiting_on", "wake_target"]
