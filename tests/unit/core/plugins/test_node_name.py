"""The NodeName filter plugin (energysched/core/filters/nodename.py), table-driven.

Every case runs through both the vectorised pass and the reference per-node
check (``core_helpers.verdict`` asserts they agree).
"""

from __future__ import annotations

from tests.unit.core.core_helpers import node, pod, verdict
from tests.unit.core.plugins.filter_helpers import (
    NODENAME,
)


def test_node_name() -> None:
    assert verdict(pod(node_name="other"), node("n")) == (NODENAME,)
    assert verdict(pod(node_name="n"), node("n")) == ()
