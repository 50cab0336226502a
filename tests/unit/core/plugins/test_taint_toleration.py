"""The TaintToleration filter plugin (energysched/core/filters/taints.py), table-driven.

Every case runs through both the vectorised pass and the reference per-node
check (``core_helpers.verdict`` asserts they agree).
"""

from __future__ import annotations

import pytest

from tests.unit.core.core_helpers import node, pod, verdict
from tests.unit.core.plugins.filter_helpers import (
    taint,
    tol,
    untolerated,
)


@pytest.mark.parametrize(
    ("taints", "tolerations", "expected"),
    [
        ([], [], ()),
        ([taint("k", "v")], [], (untolerated("k", "v"),)),
        ([taint("k")], [], (untolerated("k"),)),
        ([taint("k", "v")], [tol(key="k", operator="Equal", value="v", effect="NoSchedule")], ()),
        ([taint("k", "v")], [tol(key="k", value="v")], ()),  # operator "" is Equal
        ([taint("k", "v")], [tol(key="k", operator="Equal", value="w")], (untolerated("k", "v"),)),
        ([taint("k", "v")], [tol(key="k", operator="Exists")], ()),
        ([taint("k", "v")], [tol(operator="Exists")], ()),  # wildcard key
        ([taint("k", "v", "NoExecute")], [tol(operator="Exists")], ()),
        (
            [taint("k", "v")],
            [tol(operator="Exists", effect="NoExecute")],
            (untolerated("k", "v"),),
        ),  # wildcard key, but only for NoExecute
        ([taint("k", "v", "NoExecute")], [tol(key="k", operator="Equal", value="v")], ()),
        ([taint("k", "v", "NoExecute")], [], (untolerated("k", "v"),)),
        (
            [taint("k", "v", "NoExecute")],
            [tol(key="k", operator="Exists", effect="NoSchedule")],
            (untolerated("k", "v"),),
        ),
        ([taint("k", "v", "PreferNoSchedule")], [], ()),  # does not filter
        ([taint("a"), taint("b")], [tol(key="a", operator="Exists")], (untolerated("b"),)),
        ([taint("a"), taint("b")], [], (untolerated("a"),)),  # the first only
        ([taint("k", "v")], [tol(key="k", operator="Bogus", value="v")], (untolerated("k", "v"),)),
        (
            [taint("k", "v", "PreferNoSchedule"), taint("x", "y")],
            [tol(key="x", operator="Exists")],
            (),
        ),
    ],
)
def test_taints(
    taints: list[dict[str, str]], tolerations: list[dict[str, str]], expected: tuple[str, ...]
) -> None:
    assert verdict(pod(tolerations=tolerations), node("n", taints=taints)) == expected
