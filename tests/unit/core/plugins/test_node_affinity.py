"""The NodeAffinity filter plugin (energysched/core/filters/affinity.py), table-driven.

Every case runs through both the vectorised pass and the reference per-node
check (``core_helpers.verdict`` asserts they agree).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.core.core_helpers import node, pod, verdict
from tests.unit.core.plugins.filter_helpers import (
    AFFINITY,
    LABELS,
    expr,
    field,
    required,
    term,
)


@pytest.mark.parametrize(
    ("selector", "affinity", "fits"),
    [
        ({}, None, True),
        ({"zone": "a"}, None, True),
        ({"zone": "a", "disk": "ssd"}, None, True),
        ({"zone": "b"}, None, False),
        ({"missing": ""}, None, False),
        ({}, required(term(expr("zone", "In", "a", "b"))), True),
        ({}, required(term(expr("zone", "In", "b"))), False),
        ({}, required(term(expr("zone", "NotIn", "a"))), False),
        ({}, required(term(expr("zone", "NotIn", "b"))), True),
        ({}, required(term(expr("absent", "NotIn", "b"))), True),  # absent label passes NotIn
        ({}, required(term(expr("absent", "In", "b"))), False),
        ({}, required(term(expr("zone", "Exists"))), True),
        ({}, required(term(expr("absent", "Exists"))), False),
        ({}, required(term(expr("absent", "DoesNotExist"))), True),
        ({}, required(term(expr("zone", "DoesNotExist"))), False),
        ({}, required(term(expr("gen", "Gt", "4"))), True),
        ({}, required(term(expr("gen", "Gt", "5"))), False),
        ({}, required(term(expr("gen", "Lt", "6"))), True),
        ({}, required(term(expr("gen", "Lt", "+6"))), True),  # ParseInt accepts a sign
        ({}, required(term(expr("gen", "Lt", "5"))), False),
        ({}, required(term(expr("name", "Gt", "1"))), False),  # label is not an integer
        ({}, required(term(expr("absent", "Gt", "1"))), False),
        ({}, required(term(expr("gen", "Gt", "four"))), False),  # invalid term
        ({}, required(term(expr("gen", "Gt", "1", "2"))), False),  # invalid term
        ({}, required(term(expr("zone", "In"))), False),  # In without values: invalid
        ({}, required(term(expr("zone", "Exists", "a"))), False),  # Exists with values: invalid
        ({}, required(term(expr("zone", "Equals", "a"))), False),  # unknown operator
        ({}, required(term(expr("zone", "In", "a"), expr("disk", "In", "hdd"))), False),  # AND
        ({}, required(term(expr("zone", "In", "b")), term(expr("disk", "In", "ssd"))), True),  # OR
        ({}, required(term(expr("zone", "In")), term(expr("disk", "In", "ssd"))), True),
        ({}, required(), False),  # no terms: matches nothing
        ({}, required(term()), False),  # a term without requirements matches nothing
        ({}, required(term(fields=(field("In", "n"),))), True),
        ({}, required(term(fields=(field("In", "m"),))), False),
        ({}, required(term(fields=(field("NotIn", "m"),))), True),
        ({}, required(term(fields=(field("NotIn", "n"),))), False),
        ({}, required(term(fields=(field("In", "n", "m"),))), False),  # one value only
        ({}, required(term(fields=(field("Exists"),))), False),  # In/NotIn only
        ({}, required(term(expr("zone", "In", "a"), fields=(field("In", "m"),))), False),
        ({"zone": "a"}, required(term(expr("disk", "In", "hdd"))), False),  # selector AND aff.
        ({"zone": "b"}, required(term(expr("disk", "In", "ssd"))), False),
        ({"zone": "a"}, required(term(expr("disk", "In", "ssd"))), True),
    ],
)
def test_affinity(selector: dict[str, str], affinity: dict[str, Any] | None, fits: bool) -> None:
    spec: dict[str, Any] = {"nodeSelector": selector}
    if affinity is not None:
        spec["affinity"] = affinity
    assert verdict(pod(**spec), node("n", labels=LABELS)) == (() if fits else (AFFINITY,))
