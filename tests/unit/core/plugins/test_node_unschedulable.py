"""The NodeUnschedulable filter plugin (energysched/core/filters/unschedulable.py), table-driven.

Every case runs through both the vectorised pass and the reference per-node
check (``core_helpers.verdict`` asserts they agree).
"""

from __future__ import annotations

import pytest

from tests.unit.core.core_helpers import node, pod, verdict
from tests.unit.core.plugins.filter_helpers import (
    UNSCHED,
    tol,
)


@pytest.mark.parametrize(
    ("tolerations", "expected"),
    [
        ([], (UNSCHED,)),
        ([tol(key="node.kubernetes.io/unschedulable", operator="Exists", effect="NoSchedule")], ()),
        ([tol(key="node.kubernetes.io/unschedulable", operator="Exists")], ()),
        ([tol(operator="Exists")], ()),  # empty key + Exists tolerates everything
        (
            [tol(key="node.kubernetes.io/unschedulable", operator="Exists", effect="NoExecute")],
            (UNSCHED,),
        ),
        ([tol(key="other", operator="Exists")], (UNSCHED,)),
    ],
)
def test_unschedulable(tolerations: list[dict[str, str]], expected: tuple[str, ...]) -> None:
    assert verdict(pod(tolerations=tolerations), node("n", unschedulable=True)) == expected


def test_schedulable_node_passes() -> None:
    assert verdict(pod(), node("n")) == ()
