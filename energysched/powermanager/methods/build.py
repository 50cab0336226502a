"""The method object for a node's parsed power-control annotation."""

from __future__ import annotations

from energysched.powermanager.control import (
    CommandControl,
    PowerControl,
    RedfishControl,
    ShellyRelayControl,
    WolControl,
)
from energysched.powermanager.methods import NoMethod, PowerMethod
from energysched.powermanager.methods.command import CommandHook
from energysched.powermanager.methods.redfish import RedfishReset
from energysched.powermanager.methods.shelly_relay import ShellyRelay
from energysched.powermanager.methods.wol import WakeOnLan
from energysched_monitor.secret import Secret


def build_method(
    control: PowerControl,
    node: str,
    *,
    username: str = "admin",
    password: Secret | None = None,
    command_timeout: float = 120.0,
) -> PowerMethod:
    """``password`` (and ``username``): the Secret named by a shelly-relay's or a redfish
    method's credentials."""
    if isinstance(control, WolControl):
        return WakeOnLan(control.mac, control.broadcast, control.port)
    if isinstance(control, ShellyRelayControl):
        return ShellyRelay(control.address, control.relay, username, password)
    if isinstance(control, RedfishControl):
        return RedfishReset(
            control.address,
            control.system,
            username,
            password,
            auth=control.auth,
            insecure=control.insecure_skip_tls_verify,
        )
    if isinstance(control, CommandControl):
        return CommandHook(tuple(control.sleep), tuple(control.wake), node, command_timeout)
    return NoMethod()
