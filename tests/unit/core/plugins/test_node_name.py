"""The NodeName filter plugin (energysched/core/filters/nodename.py), table-driven.

Every case runs through both the vectorised pass and the reference per-node
check (``core_helpers.verdict`` asserts they agree).
"""

from __future__ import annotations

import pytest

from tests.unit.core.core_helpers import node, pod, verdict
from tests.unit.core.plugins.filter_helpers import (
    NODENAME,
)

pytestmark = pytest.mark.unit


def test_node_name() -> None:
    assert verdict(pod(node_name="other"), node("n")) == (NODENAME,)
    assert verdict(pod(node_name="n"), node("n")) == ()
