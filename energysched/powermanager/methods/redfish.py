"""A server's BMC: ``ComputerSystem.Reset`` with ``GracefulShutdown`` to sleep, ``On`` to wake.

For servers, what Wake-on-LAN is for desktops, and more reliable: the BMC is powered
while the host is off. The power manager drains the node first; ``GracefulShutdown``
asks the host's OS to shut down cleanly (ACPI), so no node agent step is needed.

The reset types the BMC announces (``ResetType@Redfish.AllowableValues``) are respected:
a BMC that does not offer ``GracefulShutdown`` is not sent ``ForceOff`` instead (a
forced power-off is not ours to choose), and one that does not offer ``On`` is not
woken some other way; each says so. A system already in the wanted power state is not
sent anything. The transport (session or Basic auth, TLS) is the monitor's Redfish client
(:class:`energysched_monitor.redfish.RedfishClient`): one implementation of a BMC's auth
for readings and commands alike. Every failure is a :class:`MethodError`; the manager
then leaves the node awake (or marks the wake failed) and says why.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from energysched.powermanager.methods import FailureKind, MethodError
from energysched_monitor.readings import ReadError
from energysched_monitor.redfish import SERVICE_ROOT, RedfishClient
from energysched_monitor.redfish_payload import (
    ResetAction,
    collection_members,
    reset_action,
    service_link,
)
from energysched_monitor.secret import Secret

_KINDS: dict[str, FailureKind] = {
    "timeout": "timeout",
    "unreachable": "unreachable",
    "auth": "auth",
    "config": "config",
}
SLEEP_RESET: str = "GracefulShutdown"
WAKE_RESET: str = "On"


@dataclass
class RedfishReset:
    address: str
    system: str | None = None  # ComputerSystem id; None: the BMC's only system
    username: str = "admin"
    password: Secret | None = field(default=None, repr=False)
    auth: str = "session"
    insecure: bool = False
    timeout: float = 15.0
    name: str = "redfish"

    def __post_init__(self) -> None:
        try:
            self._client = RedfishClient(
                self.address,
                username=self.username,
                password=self.password,
                auth=self.auth,
                insecure=self.insecure,
                timeout=self.timeout,
            )
        except ReadError as exc:
            raise MethodError("config", str(exc)) from None

    @property
    def describe(self) -> str:
        return f"redfish {self._client.base_url} system {self.system or '(the only one)'}"

    async def _system_path(self) -> str:
        if self.system is not None:
            return f"{SERVICE_ROOT}/Systems/{self.system}"
        root = await self._client.get(SERVICE_ROOT)
        collection = service_link(root.body, "Systems", self._client.base_url + SERVICE_ROOT)
        members = collection_members(
            (await self._client.get(collection)).body, self._client.base_url + collection
        )
        if len(members) != 1:
            raise ReadError(
                "config",
                f"{self._client.base_url}{collection} lists {len(members)} systems: name one "
                "with 'system' in the power-control annotation",
            )
        return members[0]

    async def power_state(self) -> str | None:
        """The system's PowerState as the BMC reports it (On, Off, PoweringOn, ...)."""
        try:
            path = await self._system_path()
            return reset_action((await self._client.get(path)).body, path).power_state
        except ReadError as exc:
            raise MethodError(_KINDS.get(exc.kind, "failed"), str(exc)) from None

    async def reset(self, reset_type: str, done_states: tuple[str, ...]) -> None:
        word = f"ComputerSystem.Reset {reset_type}"
        try:
            path = await self._system_path()
            action: ResetAction = reset_action((await self._client.get(path)).body, path)
            if action.power_state in done_states:
                return  # already there: nothing to send
            if action.allowed is not None and reset_type not in action.allowed:
                raise MethodError(
                    "refused",
                    f"{word}: {self.describe} offers only {list(action.allowed)} "
                    f"(ResetType@Redfish.AllowableValues)",
                )
            reply = await self._client.request("POST", action.target, {"ResetType": reset_type})
        except ReadError as exc:
            raise MethodError(_KINDS.get(exc.kind, "failed"), f"{word}: {exc}") from None
        if reply.status not in (200, 202, 204):
            detail = reply.body
            if isinstance(detail, dict) and isinstance(detail.get("error"), dict):
                detail = detail["error"].get("message", detail)
            raise MethodError(
                "refused", f"{word}: {self.describe} answered HTTP {reply.status}: {detail!r:.300}"
            )

    async def finish_sleep(self) -> None:
        await self.reset(SLEEP_RESET, ("Off", "PoweringOff"))

    async def wake(self) -> None:
        await self.reset(WAKE_RESET, ("On", "PoweringOn"))

    async def close(self) -> None:
        await self._client.close()
