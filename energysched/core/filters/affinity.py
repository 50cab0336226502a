"""NodeAffinity: ``spec.nodeSelector`` AND required node affinity.

Semantics of ``k8s.io/component-helpers/scheduling/corev1/nodeaffinity``:

- nodeSelector: every key must be present with exactly that value.
- required affinity: the terms are ORed; within a term, matchExpressions and
  matchFields are ANDed. A term with neither matches nothing, and so does a
  required affinity with no terms.
- A term with an invalid requirement is dropped (matches nothing); the other
  terms still count. Invalid: an unknown operator; In/NotIn without values;
  Exists/DoesNotExist with values; Gt/Lt without exactly one int64 value;
  matchFields with an operator other than In/NotIn or not exactly one value.
- In: label present with one of the values. NotIn: label absent, or present
  with none of the values. Gt/Lt: label present, parses as int64, compares.
- matchFields: the only field is ``metadata.name``; other keys read as "".
  (Label-key/value syntax is not re-validated: the API server already did.)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import numpy as np

from energysched.core.interface import Filter, Rejection, SameReason
from energysched.core.nodetable import BoolArray, NodeTable, parse_int64
from energysched.core.snapshot import ClusterSnapshot, NodeUsage
from energysched.core.values import NodeInfo, NodeSelectorRequirement, NodeSelectorTerm, PodInfo

NAME: Final = "NodeAffinity"
REASON: Final = "node(s) didn't match Pod's node affinity/selector"
_LABEL_OPERATORS: Final = frozenset({"In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt"})


def _label_req_valid(r: NodeSelectorRequirement) -> bool:
    if r.operator not in _LABEL_OPERATORS:
        return False
    if r.operator in ("In", "NotIn"):
        return len(r.values) > 0
    if r.operator in ("Exists", "DoesNotExist"):
        return len(r.values) == 0
    return len(r.values) == 1 and parse_int64(r.values[0]) is not None


def _field_req_valid(r: NodeSelectorRequirement) -> bool:
    return r.operator in ("In", "NotIn") and len(r.values) == 1


def term_valid(term: NodeSelectorTerm) -> bool:
    """Whether upstream keeps the term at all (non-empty and every requirement valid)."""
    if not term.match_expressions and not term.match_fields:
        return False
    return all(_label_req_valid(r) for r in term.match_expressions) and all(
        _field_req_valid(r) for r in term.match_fields
    )


def _label_matches(r: NodeSelectorRequirement, labels: Mapping[str, str]) -> bool:
    value = labels.get(r.key)
    if r.operator == "In":
        return value is not None and value in r.values
    if r.operator == "NotIn":
        return value is None or value not in r.values
    if r.operator == "Exists":
        return value is not None
    if r.operator == "DoesNotExist":
        return value is None
    if value is None:
        return False
    have = parse_int64(value)
    want = parse_int64(r.values[0])
    if have is None or want is None:
        return False
    return have > want if r.operator == "Gt" else have < want


def _field_value(key: str, node: NodeInfo) -> str:
    return node.name if key == "metadata.name" else ""


def term_matches(term: NodeSelectorTerm, node: NodeInfo) -> bool:
    if not term_valid(term):
        return False
    if not all(_label_matches(r, node.labels) for r in term.match_expressions):
        return False
    for r in term.match_fields:
        equal = _field_value(r.key, node) == r.values[0]
        if equal != (r.operator == "In"):
            return False
    return True


def matches(pod: PodInfo, node: NodeInfo) -> bool:
    """The reference (per node) check."""
    if any(node.labels.get(k) != v for k, v in pod.node_selector.items()):
        return False
    if pod.required_affinity is None:
        return True
    return any(term_matches(t, node) for t in pod.required_affinity)


def check(pod: PodInfo, node: NodeInfo, usage: NodeUsage) -> tuple[str, ...]:
    return () if matches(pod, node) else (REASON,)


# -- vectorised -----------------------------------------------------------------------


def _label_mask(r: NodeSelectorRequirement, table: NodeTable) -> BoolArray:
    if r.operator == "In":
        return table.label_in(r.key, r.values)
    if r.operator == "NotIn":
        return ~table.label_in(r.key, r.values)
    if r.operator == "Exists":
        return table.has_label(r.key).copy()
    if r.operator == "DoesNotExist":
        return ~table.has_label(r.key)
    want = parse_int64(r.values[0])
    assert want is not None  # term_valid checked it
    idx, vals = table.label_ints(r.key)
    mask = np.zeros(table.size, dtype=np.bool_)
    mask[idx[vals > want] if r.operator == "Gt" else idx[vals < want]] = True
    return mask


def _field_mask(r: NodeSelectorRequirement, table: NodeTable) -> BoolArray:
    if r.key == "metadata.name":
        mask = np.zeros(table.size, dtype=np.bool_)
        i = table.index.get(r.values[0])
        if i is not None:
            mask[i] = True
    else:
        mask = np.full(table.size, r.values[0] == "", dtype=np.bool_)
    return mask if r.operator == "In" else ~mask


def _term_mask(term: NodeSelectorTerm, table: NodeTable) -> BoolArray | None:
    if not term_valid(term):
        return None
    mask = np.ones(table.size, dtype=np.bool_)
    for r in term.match_expressions:
        mask &= _label_mask(r, table)
    for r in term.match_fields:
        mask &= _field_mask(r, table)
    return mask


def passing(pod: PodInfo, table: NodeTable) -> BoolArray | None:
    """Nodes that pass, or ``None`` when all do (no selector, no required affinity)."""
    mask: BoolArray | None = None
    for k, v in pod.node_selector.items():
        m = table.label_in(k, (v,))
        mask = m if mask is None else mask & m
    if pod.required_affinity is not None:
        terms = np.zeros(table.size, dtype=np.bool_)
        for term in pod.required_affinity:
            tm = _term_mask(term, table)
            if tm is not None:
                terms |= tm
        mask = terms if mask is None else mask & terms
    return mask


def filter_all(pod: PodInfo, snap: ClusterSnapshot) -> Rejection | None:
    mask = passing(pod, snap.table)
    return None if mask is None else SameReason(~mask, REASON)


PLUGIN: Final = Filter(NAME, 40, check, filter_all)
