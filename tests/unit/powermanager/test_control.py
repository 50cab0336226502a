"""The power-control annotation: every method, and bad input named field by field."""

from __future__ import annotations

import json
from typing import Any

import pytest

from energysched.powermanager.control import (
    CommandControl,
    NoneControl,
    ShellyRelayControl,
    WolControl,
    parse_power_control,
)
from energysched.strict import DocumentError


def parse(doc: Any) -> Any:
    return parse_power_control(json.dumps(doc))


def test_every_method() -> None:
    wol = parse({"method": "wol", "mac": "AA-BB-CC-DD-EE-F0", "broadcast": "192.168.1.255"})
    assert wol == WolControl(method="wol", mac="aa:bb:cc:dd:ee:f0", broadcast="192.168.1.255")
    assert wol.port == 9
    relay = parse(
        {
            "method": "shelly-relay",
            "address": "http://10.0.0.7",
            "credentialsSecret": "energysched/plug-rpi",
            "relay": 0,
            "haltFirst": True,
        }
    )
    assert isinstance(relay, ShellyRelayControl)
    assert relay.credentials_secret == "energysched/plug-rpi" and relay.halt_first
    cmd = parse({"method": "command", "sleep": ["systemctl", "suspend"], "wake": ["wake", "x"]})
    assert isinstance(cmd, CommandControl) and cmd.wake == ["wake", "x"]
    assert isinstance(parse({"method": "none"}), NoneControl)


@pytest.mark.parametrize(
    ("doc", "names"),
    [
        ({"method": "wol", "mac": "aa:bb:cc:dd:ee", "broadcast": "10.0.0.255"}, ["mac"]),
        ({"method": "wol", "mac": "ff:ff:ff:ff:ff:ff", "broadcast": "10.0.0.255"}, ["mac"]),
        (
            {"method": "wol", "mac": "aa:bb:cc:dd:ee:f0", "broadcast": "255.255.255.255"},
            ["broadcast"],
        ),
        (
            {"method": "wol", "mac": "aa:bb:cc:dd:ee:f0", "broadcast": "x", "port": "9"},
            [
                "broadcast",
                "port",
            ],
        ),
        (
            {"method": "wol", "mac": "aa:bb:cc:dd:ee:f0", "broadcast": "10.0.0.3", "port": 0},
            ["port"],
        ),
        ({"method": "ipmi"}, ["method", "'ipmi'"]),
        ({"mac": "aa:bb:cc:dd:ee:f0"}, ["method"]),
        ({"method": "command", "sleep": [], "wake": ["x"]}, ["sleep"]),
        ({"method": "command", "sleep": "halt", "wake": ["x"]}, ["sleep"]),
        ({"method": "command", "sleep": ["x"], "wake": [""]}, ["wake"]),
        (
            {"method": "shelly-relay", "address": "http://p", "credentialsSecret": "p"},
            [
                "credentialsSecret",
                "'p'",
            ],
        ),
        ({"method": "shelly-relay", "address": "ftp://p"}, ["address", "'ftp://p'"]),
        ({"method": "shelly-relay", "address": "http://p", "relay": True}, ["relay"]),
        ({"method": "none", "mac": "aa:bb:cc:dd:ee:f0"}, ["mac", "unknown field"]),
        ([1, 2], ["JSON object"]),
    ],
)
def test_bad_input_names_field_and_value(doc: Any, names: list[str]) -> None:
    with pytest.raises(DocumentError) as err:
        parse(doc)
    for name in names:
        assert name in str(err.value)


@pytest.mark.parametrize("text", ["", "{", "nan", '{"method": "wol"' + "]" * 3, "[" * 100000])
def test_unreadable_text_is_a_document_error(text: str) -> None:
    with pytest.raises(DocumentError):
        parse_power_control(text)
