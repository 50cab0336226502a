"""How a node is woken and put to sleep: one module per method of the power-control annotation.

* ``wol`` (:mod:`.wol`): the node agent suspends (or halts) the node; a magic packet wakes it.
* ``shelly-relay`` (:mod:`.shelly_relay`): for boards that cannot suspend. The node agent
  halts the node cleanly, then the manager switches the plug's relay off; relay on wakes it.
* ``command`` (:mod:`.command`): an operator's hook, two argv lists run by the manager.
* ``none``: never put to sleep.

Every failure is a :class:`MethodError` whose ``kind`` is a fixed label (the
``method`` of the wake-failure metric comes with it) and whose message names the
node's setting that failed; a password never appears in one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal, Protocol

#: What can go wrong, as a short label (for logs, Events and tests).
FailureKind = Literal["config", "unreachable", "timeout", "auth", "refused", "failed"]

#: What the node agent does on the node before the manager's own step (``None``: nothing).
AgentStep = Literal["suspend", "poweroff"]


class MethodError(Exception):
    def __init__(self, kind: FailureKind, message: str) -> None:
        super().__init__(message)
        self.kind: FailureKind = kind
        self.message = message


class PowerMethod(Protocol):
    """One node's way to sleep and wake (built from its power-control annotation)."""

    @property
    def name(self) -> str: ...

    @property
    def describe(self) -> str:
        """Where it acts, for logs and Events (never a secret)."""
        ...

    async def wake(self) -> None:
        """Start waking the node (the node is awake only when it is Ready again)."""
        ...

    async def finish_sleep(self) -> None:
        """The manager's step of putting the node to sleep, after the agent's (if any)."""
        ...

    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class NoMethod:
    """``{"method": "none"}``: the node is never put to sleep, so it is never woken."""

    name: str = "none"
    describe: str = "none"

    async def wake(self) -> None:
        raise MethodError("config", "power-control method 'none': this node cannot be woken")

    async def finish_sleep(self) -> None:
        raise MethodError("config", "power-control method 'none': this node is never slept")

    async def close(self) -> None:
        return None


METHOD_NAMES: Final = ("wol", "shelly-relay", "command", "none", "redfish")
