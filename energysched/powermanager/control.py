"""The power-control node annotation: how one node is woken and put to sleep (strict).

One JSON object, its ``method`` choosing the rest::

    {"method": "wol", "mac": "aa:bb:cc:dd:ee:ff", "broadcast": "192.168.1.255", "port": 9}
    {"method": "shelly-relay", "address": "http://10.0.0.7", "credentialsSecret": "ns/name",
     "relay": 0, "haltFirst": true}
    {"method": "command", "sleep": ["argv", ...], "wake": ["argv", ...]}
    {"method": "none"}

Read by :mod:`energysched.strict`: no coercion, unknown fields are errors, every problem
named with its field and value. A node whose annotation is bad stays awake, and the
power manager says why (Event, log line).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Final, Literal

from pydantic import Field, field_validator

from energysched.powermanager.methods.wol import parse_broadcast, parse_mac
from energysched.strict import (
    DocumentError,
    Problem,
    StrictModel,
    load_json,
    show,
    validate,
)

_NAME = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_SECRET_REF = rf"{_NAME}/{_NAME}(\.{_NAME})*"


class WolControl(StrictModel):
    method: Literal["wol"]
    mac: str
    broadcast: str
    port: Annotated[int, Field(ge=1, le=65535)] = 9

    @field_validator("mac")
    @classmethod
    def _mac(cls, value: str) -> str:
        parse_mac(value)
        return value.lower().replace("-", ":")

    @field_validator("broadcast")
    @classmethod
    def _broadcast(cls, value: str) -> str:
        return parse_broadcast(value)


class ShellyRelayControl(StrictModel):
    method: Literal["shelly-relay"]
    address: Annotated[str, Field(min_length=1, max_length=253)]
    #: ``namespace/name`` of a Secret with ``password`` (and optionally ``username``);
    #: it must live in the power manager's own namespace (its Role reads no other).
    credentials_secret: str | None = None
    relay: Annotated[int, Field(ge=0, le=15)] = 0
    #: Halt the node cleanly (through the node agent) before the relay goes off.
    halt_first: bool = True

    @field_validator("credentials_secret")
    @classmethod
    def _secret(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(_SECRET_REF, value):
            raise ValueError(f"expected namespace/name of a Secret, got {show(value)}")
        return value

    @field_validator("address")
    @classmethod
    def _address(cls, value: str) -> str:
        if any(c.isspace() for c in value) or not (
            value.startswith(("http://", "https://")) or "://" not in value
        ):
            raise ValueError(f"expected http://host[:port] or a host name, got {show(value)}")
        return value


class RedfishControl(StrictModel):
    """A server's BMC: ``ComputerSystem.Reset`` GracefulShutdown / On (methods.redfish)."""

    method: Literal["redfish"]
    address: Annotated[str, Field(min_length=1, max_length=253)]
    #: ``namespace/name`` of a Secret with ``username`` and ``password`` (the BMC account)
    credentials_secret: str | None = None
    system: Annotated[str, Field(pattern=r"^[A-Za-z0-9._~:@!$&'()*+,;=-]+$")] | None = None
    auth: Literal["session", "basic"] = "session"
    insecure_skip_tls_verify: bool = Field(default=False, alias="insecureSkipTLSVerify")

    @field_validator("credentials_secret")
    @classmethod
    def _secret(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(_SECRET_REF, value):
            raise ValueError(f"expected namespace/name of a Secret, got {show(value)}")
        return value

    @field_validator("address")
    @classmethod
    def _address(cls, value: str) -> str:
        if any(c.isspace() for c in value) or not value.startswith(("http://", "https://")):
            raise ValueError(f"expected an http(s):// URL of the BMC, got {show(value)}")
        return value


class CommandControl(StrictModel):
    method: Literal["command"]
    sleep: Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=1)]
    wake: Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=1)]


class NoneControl(StrictModel):
    method: Literal["none"]


PowerControl = WolControl | ShellyRelayControl | CommandControl | NoneControl | RedfishControl
_MODELS: Final[dict[str, type[StrictModel]]] = {
    "wol": WolControl,
    "shelly-relay": ShellyRelayControl,
    "command": CommandControl,
    "none": NoneControl,
    "redfish": RedfishControl,
}


def parse_power_control(text: str, where: str = "power-control") -> PowerControl:
    """The annotation's value as a model, or DocumentError naming each field and value."""
    doc: Any = load_json(text, where)
    if not isinstance(doc, dict):
        raise DocumentError([Problem("", f"must be a JSON object, got {show(doc)}")], where)
    method = doc.get("method")
    model = _MODELS.get(method) if isinstance(method, str) else None
    if model is None:
        allowed = ", ".join(_MODELS)
        message = (
            "missing; allowed: " + allowed
            if "method" not in doc
            else f"unknown method {show(method)}; allowed: {allowed}"
        )
        raise DocumentError([Problem("method", message)], where)
    result = validate(model, doc, where=where)
    assert isinstance(
        result, WolControl | ShellyRelayControl | CommandControl | NoneControl | RedfishControl
    )
    return result
