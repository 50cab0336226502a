"""Property-based fuzzing (hypothesis) of everything the core reads from outside.

Quantities, pods, nodes, annotations and profiles: whatever the input, the only
outcomes are a value or the documented error type (QuantityError, InputError,
ValidationFailure); no other exception escapes. Decisions over clusters built
from arbitrary (even non-finite) figures and readings: no NaN or inf reaches a
ranking, and the fast path and explain agree.
"""

from __future__ import annotations

import math
from datetime import timedelta
from fractions import Fraction
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from energysched.contract import (
    CURRENT_WATTS_ANNOTATION,
    CURRENT_WATTS_TIMESTAMP_ANNOTATION,
    PERFORMANCE_WEIGHT_ANNOTATION,
    SCORING_MODES,
    WORKLOAD_TYPE_LABEL,
    WORKLOAD_TYPES,
)
from energysched.core import (
    ClusterSnapshot,
    InputError,
    NodeInfo,
    PodInfo,
    PowerReading,
    QuantityError,
    RecentBind,
    ScheduleParams,
    parse_node,
    parse_pod,
    parse_power_reading,
    parse_quantity,
    parse_weight,
    parse_workload_type,
    pod_requests,
    schedule_one,
)
from energysched.core.quantity import canonical
from energysched.core.scores.hybrid import HybridNode, counts_of
from energysched.core.state import build_snapshot
from energysched.kb.profiles import KnowledgeBase, ProfileSpec, WorkloadFigures
from energysched.kb.validate import ValidationFailure, parse_profile
from tests.unit.core.core_helpers import NOW

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# -- building blocks --------------------------------------------------------------------

_QUANTITY_CHARS = "0123456789.+-eEinumkKMGTP \u0661x"
quantity_texts = st.one_of(
    st.text(alphabet=_QUANTITY_CHARS, max_size=14),
    st.text(max_size=8),
    st.builds(
        lambda a, b, s: a + b + s,
        st.sampled_from(["", "-", "+", "0", "1", "9" * 30, "1." + "0" * 40]),
        st.sampled_from(["", "1", ".5", "e3", "e-12", "e999", "e4294967296"]),
        st.sampled_from(["", "m", "Ki", "Ei", "Pi", "E", "n", "u"]),
    ),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    quantity_texts,
)
# Arbitrary JSON-ish trees (what yaml.safe_load or the API can hand us), keys mostly strings.
json_like = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.one_of(st.text(max_size=10), st.integers(-5, 5)), children, max_size=4),
    ),
    max_leaves=12,
)


def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """The well-formed value mostly, anything JSON-ish sometimes."""
    return st.one_of(strategy, strategy, strategy, json_like)


resource_maps = st.dictionaries(
    st.sampled_from(["cpu", "memory", "pods", "nvidia.com/gpu", "hugepages-2Mi", "storage"]),
    st.one_of(quantity_texts, st.integers(-(10**400), 10**400), st.floats()),
    max_size=4,
)
ports = st.fixed_dictionaries(
    {},
    optional={
        "hostPort": st.one_of(st.integers(-2, 70000), st.integers(), json_like),
        "protocol": maybe(st.sampled_from(["TCP", "UDP", "SCTP", ""])),
        "hostIP": maybe(st.sampled_from(["", "0.0.0.0", "::", "10.0.0.1"])),
    },
)
containers = st.fixed_dictionaries(
    {},
    optional={
        "name": maybe(st.text(max_size=5)),
        "resources": maybe(
            st.fixed_dictionaries(
                {}, optional={"requests": maybe(resource_maps), "limits": maybe(resource_maps)}
            )
        ),
        "ports": maybe(st.lists(maybe(ports), max_size=2)),
        "restartPolicy": maybe(st.sampled_from(["Always", "Never"])),
    },
)
requirements = st.fixed_dictionaries(
    {},
    optional={
        "key": maybe(st.sampled_from(["zone", "gen", "metadata.name"])),
        "operator": maybe(st.sampled_from(["In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt"])),
        "values": maybe(st.lists(st.text(alphabet="0123456789-+a", max_size=25), max_size=3)),
    },
)
annotation_values = st.one_of(
    st.text(max_size=30),
    st.sampled_from(
        [
            "0.5",
            "1e400",
            "nan",
            "-0",
            " 7 ",
            "2026-03-01T12:00:00Z",
            "2099-01-01T00:00:00Z",
            "2026-01-31T11Z",
            "20260131T115955Z",
            "0001-01-01T00:00:00+01:00",
            "9999-12-31T23:59:59-23:59",
            "١٢",
            "9" * 5000,
        ]
    ),
)
metadata = st.fixed_dictionaries(
    {},
    optional={
        "name": maybe(st.text(min_size=1, max_size=8)),
        "namespace": maybe(st.text(max_size=5)),
        "uid": maybe(st.text(max_size=5)),
        "labels": maybe(
            st.dictionaries(
                st.sampled_from([WORKLOAD_TYPE_LABEL, "zone", "gen"]),
                maybe(st.sampled_from([*WORKLOAD_TYPES, "gaming", "1", "a"])),
                max_size=3,
            )
        ),
        "annotations": maybe(
            st.dictionaries(
                st.sampled_from(
                    [
                        PERFORMANCE_WEIGHT_ANNOTATION,
                        CURRENT_WATTS_ANNOTATION,
                        CURRENT_WATTS_TIMESTAMP_ANNOTATION,
                    ]
                ),
                annotation_values,
                max_size=3,
            )
        ),
    },
)
pod_objects = st.fixed_dictionaries(
    {},
    optional={
        "metadata": maybe(metadata),
        "spec": maybe(
            st.fixed_dictionaries(
                {},
                optional={
                    "containers": maybe(st.lists(maybe(containers), max_size=3)),
                    "initContainers": maybe(st.lists(maybe(containers), max_size=2)),
                    "overhead": maybe(resource_maps),
                    "resources": maybe(
                        st.fixed_dictionaries({}, optional={"requests": maybe(resource_maps)})
                    ),
                    "nodeSelector": maybe(
                        st.dictionaries(st.text(max_size=4), st.text(max_size=4))
                    ),
                    "nodeName": maybe(st.text(max_size=4)),
                    "tolerations": maybe(
                        st.lists(
                            maybe(
                                st.dictionaries(
                                    st.sampled_from(["key", "operator", "value", "effect"]),
                                    st.text(max_size=6),
                                )
                            ),
                            max_size=2,
                        )
                    ),
                    "affinity": maybe(
                        st.fixed_dictionaries(
                            {},
                            optional={
                                "nodeAffinity": maybe(
                                    st.fixed_dictionaries(
                                        {},
                                        optional={
                                            "requiredDuringSchedulingIgnoredDuringExecution": maybe(
                                                st.fixed_dictionaries(
                                                    {},
                                                    optional={
                                                        "nodeSelectorTerms": maybe(
                                                            st.lists(
                                                                st.fixed_dictionaries(
                                                                    {},
                                                                    optional={
                                                                        "matchExpressions": maybe(
                                                                            st.lists(
                                                                                maybe(requirements),
                                                                                max_size=2,
                                                                            )
                                                                        )
                                                                    },
                                                                ),
                                                                max_size=2,
                                                            )
                                                        )
                                                    },
                                                )
                                            )
                                        },
                                    )
                                )
                            },
                        )
                    ),
                },
            )
        ),
        "status": maybe(st.fixed_dictionaries({}, optional={"phase": maybe(st.text(max_size=9))})),
    },
)
node_objects = st.fixed_dictionaries(
    {},
    optional={
        "metadata": maybe(metadata),
        "spec": maybe(
            st.fixed_dictionaries(
                {},
                optional={
                    "unschedulable": maybe(st.booleans()),
                    "taints": maybe(
                        st.lists(
                            maybe(
                                st.dictionaries(
                                    st.sampled_from(["key", "value", "effect"]),
                                    st.text(max_size=6),
                                )
                            ),
                            max_size=2,
                        )
                    ),
                },
            )
        ),
        "status": maybe(st.fixed_dictionaries({}, optional={"allocatable": maybe(resource_maps)})),
    },
)


# -- parsers: a value or the documented error, nothing else ------------------------------


@FUZZ
@given(quantity_texts)
def test_quantity_is_a_fraction_or_quantity_error(text: str) -> None:
    try:
        q = parse_quantity(text)
    except QuantityError:
        return
    assert isinstance(q, Fraction)
    for resource in ("cpu", "memory"):
        assert -(2**63) <= canonical(resource, q) <= 2**63 - 1


@FUZZ
@given(st.one_of(pod_objects, json_like))
def test_pod_is_parsed_or_an_input_error(obj: Any) -> None:
    got = parse_pod(obj)
    assert isinstance(got, PodInfo | InputError)
    reqs = pod_requests(obj)
    assert isinstance(reqs, InputError) or all(0 <= v <= 2**63 - 1 for v in reqs.values())
    if isinstance(got, InputError):
        assert got.message  # renders
        return
    assert all(0 <= v <= 2**63 - 1 for v in got.requests.values()), got.requests
    assert all(0 < p.port <= 65535 for p in got.host_ports)
    weight = parse_weight(got, 0.5)
    assert isinstance(weight, InputError) or 0.0 <= weight <= 1.0
    assert isinstance(parse_workload_type(got), InputError | str | None)


@FUZZ
@given(st.one_of(node_objects, json_like))
def test_node_is_parsed_or_an_input_error(obj: Any) -> None:
    got = parse_node(obj)
    assert isinstance(got, NodeInfo | InputError)
    if isinstance(got, InputError):
        assert got.message
        return
    assert all(0 <= v <= 2**63 - 1 for v in got.allocatable.values())
    got.structural_key()  # sortable: keys are strings
    reading = parse_power_reading(got, now=NOW)
    if isinstance(reading, PowerReading):
        assert math.isfinite(reading.watts) and reading.watts >= 0
        assert reading.timestamp - NOW <= timedelta(seconds=30)
        reading.timestamp.timestamp()
    else:
        assert reading is None or isinstance(reading, InputError)


profile_numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.sampled_from([0, 1e-3, 1e15, 1e6, 5e-324, 1e308, -1]),
    json_like,
)
profile_objects = st.fixed_dictionaries(
    {},
    optional={
        "apiVersion": maybe(st.just("energy.thesis.io/v1alpha1")),
        "kind": maybe(st.just("EnergyProfile")),
        "metadata": maybe(st.fixed_dictionaries({"name": maybe(st.just("p"))})),
        "spec": maybe(
            st.fixed_dictionaries(
                {},
                optional={
                    "nodeSelector": maybe(st.just({"kubernetes.io/hostname": "n"})),
                    "idlePowerWatts": profile_numbers,
                    "maxPowerWatts": profile_numbers,
                    "workloads": maybe(
                        st.dictionaries(
                            st.sampled_from([*WORKLOAD_TYPES, "gaming"]),
                            maybe(
                                st.fixed_dictionaries(
                                    {},
                                    optional={
                                        "performance": profile_numbers,
                                        "powerWatts": profile_numbers,
                                    },
                                )
                            ),
                            max_size=3,
                        )
                    ),
                },
            )
        ),
    },
)


@FUZZ
@given(st.one_of(profile_objects, json_like))
def test_profile_is_parsed_or_a_validation_failure(obj: Any) -> None:
    got = parse_profile(obj)
    assert isinstance(got, ProfileSpec | ValidationFailure)
    if isinstance(got, ValidationFailure):
        assert str(got)
        return
    for fig in got.workloads.values():
        eff = fig.efficiency
        assert math.isfinite(eff) and eff > 0 and math.isfinite(100 * fig.performance)


# -- decisions: no NaN or inf, fast == explain ------------------------------------------

any_float = st.floats(allow_nan=True, allow_infinity=True)
figure_floats = st.one_of(
    st.sampled_from([0.0, 1e-3, 1e15, 5e-324, 1e308, 7.0, 2.5, 100.0, math.nan, math.inf]),
    any_float,
)
#: Mostly small (so that nodes are feasible and get scored), sometimes the int64 edge.
sizes = st.one_of(st.sampled_from([0, 1, 1000, 2**40]), st.integers(0, 2**63 - 1))


@st.composite
def clusters(draw: st.DrawFn) -> tuple[ClusterSnapshot, PodInfo]:
    n = draw(st.integers(1, 6))
    names = [f"n{i}" for i in range(n)]
    profiles = []
    for name in names:
        if draw(st.integers(0, 4)):
            workloads = {
                wt: WorkloadFigures(draw(figure_floats), draw(figure_floats))
                for wt in draw(st.sets(st.sampled_from(WORKLOAD_TYPES), min_size=1, max_size=3))
            }
            profiles.append(
                ProfileSpec(
                    name=name,
                    node_selector={"kubernetes.io/hostname": name},
                    idle_power_watts=draw(figure_floats),
                    workloads=workloads,  # type: ignore[arg-type]
                )
            )
    nodes = [
        NodeInfo(
            name=name,
            labels={"kubernetes.io/hostname": name},
            allocatable={
                "cpu": draw(st.sampled_from([2**62, 4000])),
                "memory": draw(st.sampled_from([2**62, 2**63 - 1])),
                "pods": draw(st.sampled_from([110, 110, 0])),
            },
        )
        for name in names
    ]
    placed = [
        PodInfo(
            name=f"e{i}",
            uid=f"e{i}",
            node_name=draw(st.sampled_from(names)),
            phase="Running",
            requests={"pods": 1, "memory": draw(sizes)},
        )
        for i in range(draw(st.integers(0, 4)))
    ]
    readings = {
        name: PowerReading(
            draw(any_float), NOW + timedelta(seconds=draw(st.integers(-(10**6), 10**9)))
        )
        for name in names
        if draw(st.booleans())
    }
    binds = [
        RecentBind(
            draw(st.sampled_from(names)),
            f"b{j}",
            NOW - timedelta(seconds=draw(st.integers(0, 100))),
            draw(st.sampled_from([*WORKLOAD_TYPES, None])),
        )
        for j in range(draw(st.integers(0, 3)))
    ]
    snap = build_snapshot(
        nodes,
        placed,
        now=NOW,
        kb=KnowledgeBase.of(profiles),
        readings=readings,
        recent_binds=binds,
    )
    pod = PodInfo(
        name="p",
        uid="p",
        labels={WORKLOAD_TYPE_LABEL: draw(st.sampled_from(WORKLOAD_TYPES))}
        if draw(st.integers(0, 4))
        else {},
        annotations={PERFORMANCE_WEIGHT_ANNOTATION: draw(st.sampled_from(["0", "0.5", "1"]))},
        requests={"pods": 1, "cpu": draw(sizes), "memory": draw(st.integers(0, 10))},
    )
    return snap, pod


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(clusters(), st.sampled_from(SCORING_MODES), st.sampled_from(["ignore", "penalize", "busy"]))
def test_no_nan_or_inf_reaches_a_decision(
    cluster: tuple[ClusterSnapshot, PodInfo], mode: Any, policy: Any
) -> None:
    snap, pod = cluster
    params = ScheduleParams(mode=mode, stale_policy=policy)
    fast = schedule_one(pod, snap, params)
    full = schedule_one(pod, snap, params, explain=True)
    assert (fast.node, fast.runner_up) == (full.node, full.runner_up)
    assert fast.ranking == full.ranking[: len(fast.ranking)]
    assert (
        counts_of(fast.part).stale,
        counts_of(fast.part).missing,
        counts_of(fast.part).future,
    ) == (
        counts_of(full.part).stale,
        counts_of(full.part).missing,
        counts_of(full.part).future,
    )
    for b in full.ranking:
        assert math.isfinite(b.score) and math.isfinite(b.base_score), b
        if isinstance(b.part, HybridNode):
            assert math.isfinite(b.part.predicted_watts), b
        for x in (b.raw_p, b.raw_e, b.norm_p, b.norm_e, b.power_watts):
            assert x is None or math.isfinite(x), b
    if fast.node is not None:
        assert fast.scheduled_message
