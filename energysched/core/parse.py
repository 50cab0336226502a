"""Pure parsing: Kubernetes API JSON (camelCase dicts) to core values.

Every public function returns either the value or an :class:`InputError`; bad
input never raises. Quantities follow :mod:`energysched.core.quantity`.

Effective pod requests are kube-scheduler's (``k8s.io/component-helpers/resource``
``PodRequests``, as called by NodeResourcesFit's PreFilter)::

    containers = sum of regular containers + sum of sidecars (restartPolicy Always)
    init       = max over init containers in order of
                   sidecar:  sum of sidecars started so far (including this one)
                   regular:  its request + sum of sidecars started before it
    requests   = max(containers, init)          (per resource)
    requests[r] = pod-level spec.resources.requests[r] for r in cpu, memory, hugepages-*
                                                (PodLevelResources, when set)
    requests  += spec.overhead

summed exactly and rounded once (cpu up to millicores, the rest up to units).
``pods: 1`` is added. As the API server's defaulting does, a container that sets
a limit but no request for a resource requests its limit (objects from the API
already carry this; hand-written manifests for ``explain`` may not).
Not modelled: in-place resize (the scheduler takes max(spec, status) for
running pods) and DRA-claimed resources.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from fractions import Fraction
from types import MappingProxyType
from typing import Any, Final, cast

from energysched.contract import (
    CURRENT_WATTS_ANNOTATION,
    CURRENT_WATTS_TIMESTAMP_ANNOTATION,
    PERFORMANCE_WEIGHT_ANNOTATION,
    POWER_SOURCE_ANNOTATION,
    WORK_ANNOTATION,
    WORKLOAD_TYPE_LABEL,
    WORKLOAD_TYPES,
    WorkloadType,
)
from energysched.core.errors import InputError, InputErrorSignal
from energysched.core.params import DEFAULT_CLOCK_SKEW
from energysched.core.quantity import (
    ALLOWED_QUANTITY,
    HUGE_NANOS,
    QuantityError,
    canonical,
    parse_quantity,
)
from energysched.core.values import (
    CPU,
    MEMORY,
    PODS,
    HostPort,
    NodeInfo,
    NodeSelectorRequirement,
    NodeSelectorTerm,
    PodInfo,
    PowerReading,
    Taint,
    Toleration,
    is_tracked_resource,
)

__all__ = [
    "ALLOWED_WEIGHT",
    "ALLOWED_WORKLOAD_TYPE",
    "parse_node",
    "parse_pod",
    "parse_power_reading",
    "parse_rfc3339",
    "parse_weight",
    "parse_workload_type",
    "pod_requests",
]

ALLOWED_WEIGHT: Final = (
    "a decimal number from 0.0 (energy only) to 1.0 (performance only) is allowed"
)
ALLOWED_WORKLOAD_TYPE: Final = "allowed are " + ", ".join(WORKLOAD_TYPES)
_DECIMAL: Final = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_POD_LEVEL_RESOURCES: Final = (CPU, MEMORY)
# RFC 3339 section 5.6 date-time, ASCII digits only; "T"/"Z" may be lower case.
_RFC3339: Final = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]+)?"
    r"(?:([Zz])|([+-])([0-9]{2}):([0-9]{2}))"
)

JSON = Mapping[str, Any]
Quantities = dict[str, Fraction]
#: Integer quantities are held at the same magnitude as parsed strings.
HUGE_UNITS: Final = HUGE_NANOS // 10**9
#: Host ports, as the API server validates them (0 = none).
MAX_PORT: Final = 65535


def _shown(value: object) -> str:
    """The offending value for a message: verbatim, unless it is enormous."""
    if value is None:
        return "<missing>"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**30:
        return f"<{value.bit_length()}-bit integer>"
    text = value if isinstance(value, str) else repr(value) if isinstance(value, float) else None
    if text is None:
        try:
            text = str(value)
        except ValueError:  # e.g. a container holding an enormous integer
            text = f"<{type(value).__name__}>"
    return text if len(text) <= 200 else f"{text[:160]}...({len(text)} characters)"


class _Ctx:
    """Where we are while walking one object, for error messages."""

    __slots__ = ("subject",)

    def __init__(self, subject: str) -> None:
        self.subject = subject

    def fail(self, field: str, value: object, allowed: str) -> InputErrorSignal:
        return InputErrorSignal(InputError(self.subject, field, _shown(value), allowed))

    def mapping(self, obj: JSON, key: str, path: str) -> JSON:
        got = obj.get(key)
        if got is None:
            return {}
        if not isinstance(got, Mapping):
            raise self.fail(path, got, "an object is allowed")
        return got

    def seq(self, obj: JSON, key: str, path: str) -> list[JSON]:
        got = obj.get(key)
        if got is None:
            return []
        if not isinstance(got, list) or not all(isinstance(x, Mapping) for x in got):
            raise self.fail(path, got, "a list of objects is allowed")
        return cast(list[JSON], got)

    def string(self, obj: JSON, key: str, path: str, default: str = "") -> str:
        got = obj.get(key, default)
        if got is None:
            return default
        if not isinstance(got, str):
            raise self.fail(path, got, "a string is allowed")
        return got

    def str_map(self, obj: JSON, key: str, path: str) -> Mapping[str, str]:
        raw = self.mapping(obj, key, path)
        for k, v in raw.items():
            if not isinstance(k, str):
                raise self.fail(f"{path}", k, "string keys are allowed")
            if not isinstance(v, str):
                raise self.fail(f"{path}[{k}]", v, "a string is allowed")
        return MappingProxyType(dict(raw))

    def quantities(self, obj: JSON, key: str, path: str) -> Quantities:
        """Tracked resources of a requests/limits/allocatable map; negatives are
        rejected, as the API server's validation does."""
        out: Quantities = {}
        for name, raw in self.mapping(obj, key, path).items():
            if not is_tracked_resource(str(name)):
                continue
            where = f"{path}[{name}]"
            if isinstance(raw, int) and not isinstance(raw, bool):
                # A YAML integer: its value, without str() (which refuses > 4,300 digits).
                q: Fraction = Fraction(max(-HUGE_UNITS, min(HUGE_UNITS, raw)))
            else:
                text = str(raw) if isinstance(raw, float) else raw
                if not isinstance(text, str):
                    raise self.fail(where, raw, ALLOWED_QUANTITY)
                try:
                    q = parse_quantity(text)
                except QuantityError as e:
                    raise self.fail(where, raw, f"{e.why}; {ALLOWED_QUANTITY}") from None
            if q < 0:
                raise self.fail(where, raw, "a quantity >= 0 is allowed")
            out[str(name)] = q
        return out


def _add(into: Quantities, more: Mapping[str, Fraction]) -> None:
    for k, v in more.items():
        into[k] = into.get(k, Fraction(0)) + v


def _max(into: Quantities, other: Mapping[str, Fraction]) -> None:
    for k, v in other.items():
        if k not in into or v > into[k]:
            into[k] = v


def _container_requests(ctx: _Ctx, container: JSON, path: str) -> Quantities:
    resources = ctx.mapping(container, "resources", f"{path}.resources")
    reqs = ctx.quantities(resources, "requests", f"{path}.resources.requests")
    limits = ctx.quantities(resources, "limits", f"{path}.resources.limits")
    for name, limit in limits.items():
        reqs.setdefault(name, limit)  # API server defaulting: request = limit
    return reqs


def _is_sidecar(container: JSON) -> bool:
    return container.get("restartPolicy") == "Always"


def _pod_requests(ctx: _Ctx, spec: JSON) -> dict[str, int]:
    reqs: Quantities = {}
    for i, c in enumerate(ctx.seq(spec, "containers", "spec.containers")):
        _add(reqs, _container_requests(ctx, c, f"spec.containers[{i}]"))
    sidecars: Quantities = {}
    init_peak: Quantities = {}
    for i, c in enumerate(ctx.seq(spec, "initContainers", "spec.initContainers")):
        creqs = _container_requests(ctx, c, f"spec.initContainers[{i}]")
        if _is_sidecar(c):
            _add(reqs, creqs)
            _add(sidecars, creqs)
            _max(init_peak, sidecars)
        else:
            during: Quantities = dict(creqs)
            _add(during, sidecars)
            _max(init_peak, during)
    _max(reqs, init_peak)

    pod_res = ctx.mapping(spec, "resources", "spec.resources")
    if pod_res:
        pod_reqs = ctx.quantities(pod_res, "requests", "spec.resources.requests")
        for name, limit in ctx.quantities(pod_res, "limits", "spec.resources.limits").items():
            pod_reqs.setdefault(name, limit)
        for name, q in pod_reqs.items():
            if name in _POD_LEVEL_RESOURCES or name.startswith("hugepages-"):
                reqs[name] = q
    _add(reqs, ctx.quantities(spec, "overhead", "spec.overhead"))

    out = {name: canonical(name, q) for name, q in sorted(reqs.items()) if name != PODS}
    out[PODS] = 1
    return out


def _not_an_object(kind: str, obj: object) -> InputError | None:
    if isinstance(obj, Mapping):
        return None
    what = "a list" if isinstance(obj, list | tuple) else f"a {type(obj).__name__}"
    return InputError(
        f"{kind} <unnamed>", "the object", f"<{what}>", f"a {kind} object (a mapping) is required"
    )


def pod_requests(pod: JSON) -> Mapping[str, int] | InputError:
    """Effective requests of a pod object (see module doc), canonical integers."""
    if (bad := _not_an_object("pod", pod)) is not None:
        return bad
    ctx = _Ctx(_pod_subject(pod))
    try:
        spec = ctx.mapping(pod, "spec", "spec")
        return MappingProxyType(_pod_requests(ctx, spec))
    except InputErrorSignal as e:
        return e.error


def _pod_subject(pod: JSON) -> str:
    meta = pod.get("metadata")
    if isinstance(meta, Mapping):
        ns, name = meta.get("namespace"), meta.get("name")
        ns = ns if isinstance(ns, str) and ns else "default"
        name = _shown(name) if isinstance(name, str) and name else "<unnamed>"
        return f"pod {ns}/{name}"
    return "pod <unnamed>"


def _normalise_ip(ip: str) -> str:
    # kube-scheduler's HostPortInfo treats only "" and "0.0.0.0" as "all
    # addresses"; "::" is compared like any other IP (framework/types.go).
    return ip or "0.0.0.0"


def _host_ports(ctx: _Ctx, spec: JSON) -> tuple[HostPort, ...]:
    """``GetHostPorts``: ports with hostPort > 0 of sidecars and regular containers."""
    out: list[HostPort] = []
    groups = [
        ("spec.initContainers", ctx.seq(spec, "initContainers", "spec.initContainers"), True),
        ("spec.containers", ctx.seq(spec, "containers", "spec.containers"), False),
    ]
    for path, containers, only_sidecars in groups:
        for i, c in enumerate(containers):
            if only_sidecars and not _is_sidecar(c):
                continue
            for j, p in enumerate(ctx.seq(c, "ports", f"{path}[{i}].ports")):
                where = f"{path}[{i}].ports[{j}]"
                hp = p.get("hostPort", 0)
                if not isinstance(hp, int) or isinstance(hp, bool) or not 0 <= hp <= MAX_PORT:
                    raise ctx.fail(
                        f"{where}.hostPort", hp, f"an integer from 0 to {MAX_PORT} is allowed"
                    )
                if hp == 0:
                    continue
                proto = ctx.string(p, "protocol", f"{where}.protocol") or "TCP"
                ip = _normalise_ip(ctx.string(p, "hostIP", f"{where}.hostIP"))
                out.append(HostPort(port=hp, protocol=proto, ip=ip))
    return tuple(out)


def _requirements(ctx: _Ctx, raw: list[JSON], path: str) -> tuple[NodeSelectorRequirement, ...]:
    out = []
    for i, r in enumerate(raw):
        values = r.get("values") or []
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise ctx.fail(f"{path}[{i}].values", values, "a list of strings is allowed")
        out.append(
            NodeSelectorRequirement(
                key=ctx.string(r, "key", f"{path}[{i}].key"),
                operator=ctx.string(r, "operator", f"{path}[{i}].operator"),
                values=tuple(values),
            )
        )
    return tuple(out)


def _required_affinity(ctx: _Ctx, spec: JSON) -> tuple[NodeSelectorTerm, ...] | None:
    affinity = ctx.mapping(spec, "affinity", "spec.affinity")
    node_aff = ctx.mapping(affinity, "nodeAffinity", "spec.affinity.nodeAffinity")
    base = "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution"
    if node_aff.get("requiredDuringSchedulingIgnoredDuringExecution") is None:
        return None
    required = ctx.mapping(node_aff, "requiredDuringSchedulingIgnoredDuringExecution", base)
    terms = []
    for i, t in enumerate(ctx.seq(required, "nodeSelectorTerms", f"{base}.nodeSelectorTerms")):
        p = f"{base}.nodeSelectorTerms[{i}]"
        terms.append(
            NodeSelectorTerm(
                match_expressions=_requirements(
                    ctx,
                    ctx.seq(t, "matchExpressions", f"{p}.matchExpressions"),
                    f"{p}.matchExpressions",
                ),
                match_fields=_requirements(
                    ctx, ctx.seq(t, "matchFields", f"{p}.matchFields"), f"{p}.matchFields"
                ),
            )
        )
    return tuple(terms)


def _tolerations(ctx: _Ctx, spec: JSON) -> tuple[Toleration, ...]:
    out = []
    for i, t in enumerate(ctx.seq(spec, "tolerations", "spec.tolerations")):
        p = f"spec.tolerations[{i}]"
        out.append(
            Toleration(
                key=ctx.string(t, "key", f"{p}.key"),
                operator=ctx.string(t, "operator", f"{p}.operator"),
                value=ctx.string(t, "value", f"{p}.value"),
                effect=ctx.string(t, "effect", f"{p}.effect"),
            )
        )
    return tuple(out)


def parse_pod(pod: JSON) -> PodInfo | InputError:
    """A pod object from the API (``kubectl get pod -o json`` shape) as :class:`PodInfo`."""
    if (bad := _not_an_object("pod", pod)) is not None:
        return bad
    ctx = _Ctx(_pod_subject(pod))
    try:
        meta = ctx.mapping(pod, "metadata", "metadata")
        name = ctx.string(meta, "name", "metadata.name")
        if not name:
            raise ctx.fail("metadata.name", None, "a non-empty name is required")
        spec = ctx.mapping(pod, "spec", "spec")
        status = ctx.mapping(pod, "status", "status")
        return PodInfo(
            name=name,
            namespace=ctx.string(meta, "namespace", "metadata.namespace") or "default",
            uid=ctx.string(meta, "uid", "metadata.uid"),
            labels=ctx.str_map(meta, "labels", "metadata.labels"),
            annotations=ctx.str_map(meta, "annotations", "metadata.annotations"),
            scheduler_name=ctx.string(spec, "schedulerName", "spec.schedulerName")
            or "default-scheduler",
            node_name=ctx.string(spec, "nodeName", "spec.nodeName"),
            phase=ctx.string(status, "phase", "status.phase") or "Pending",
            requests=MappingProxyType(_pod_requests(ctx, spec)),
            node_selector=ctx.str_map(spec, "nodeSelector", "spec.nodeSelector"),
            required_affinity=_required_affinity(ctx, spec),
            tolerations=_tolerations(ctx, spec),
            host_ports=_host_ports(ctx, spec),
            started_at=_start_time(status),
            owner_kinds=_owner_kinds(meta),
        )
    except InputErrorSignal as e:
        return e.error


def _owner_kinds(meta: Mapping[str, Any]) -> tuple[str, ...]:
    # Set by controllers, not users, and read by no filter or score: what is not a
    # list of objects with a string kind is skipped, not an error.
    owners = meta.get("ownerReferences")
    if not isinstance(owners, list):
        return ()
    return tuple(
        o["kind"] for o in owners if isinstance(o, Mapping) and isinstance(o.get("kind"), str)
    )


def _start_time(status: Mapping[str, Any]) -> datetime | None:
    # Written by the kubelet, not by users: a malformed value is "not known", not an error.
    raw = status.get("startTime")
    return parse_rfc3339(raw) if isinstance(raw, str) else None


def parse_node(node: JSON) -> NodeInfo | InputError:
    """A node object from the API as :class:`NodeInfo` (allocatable canonicalised)."""
    if (bad := _not_an_object("node", node)) is not None:
        return bad
    meta_raw = node.get("metadata")
    shown = meta_raw.get("name") if isinstance(meta_raw, Mapping) else None
    ctx = _Ctx(f"node {_shown(shown) if isinstance(shown, str) and shown else '<unnamed>'}")
    try:
        meta = ctx.mapping(node, "metadata", "metadata")
        name = ctx.string(meta, "name", "metadata.name")
        if not name:
            raise ctx.fail("metadata.name", None, "a non-empty name is required")
        spec = ctx.mapping(node, "spec", "spec")
        status = ctx.mapping(node, "status", "status")
        alloc = ctx.quantities(status, "allocatable", "status.allocatable")
        taints = []
        for i, t in enumerate(ctx.seq(spec, "taints", "spec.taints")):
            taints.append(
                Taint(
                    key=ctx.string(t, "key", f"spec.taints[{i}].key"),
                    value=ctx.string(t, "value", f"spec.taints[{i}].value"),
                    effect=ctx.string(t, "effect", f"spec.taints[{i}].effect"),
                )
            )
        unschedulable = spec.get("unschedulable", False)
        if not isinstance(unschedulable, bool):
            raise ctx.fail("spec.unschedulable", unschedulable, "true or false is allowed")
        return NodeInfo(
            name=name,
            labels=ctx.str_map(meta, "labels", "metadata.labels"),
            annotations=ctx.str_map(meta, "annotations", "metadata.annotations"),
            allocatable=MappingProxyType({k: canonical(k, q) for k, q in sorted(alloc.items())}),
            taints=tuple(taints),
            unschedulable=unschedulable,
        )
    except InputErrorSignal as e:
        return e.error


def parse_rfc3339(text: str) -> datetime | None:
    """An RFC 3339 date-time (``2026-01-31T12:00:00Z``, ``...t...z``, ``+01:00``), or None.

    Stricter than :meth:`datetime.fromisoformat`, which also takes ISO 8601
    forms RFC 3339 does not have (``2026-01-31T11Z``, ``20260131T115955Z``, no
    zone, non-ASCII digits). A leap second (``:60``) is not representable and
    rejected; fractions beyond microseconds are truncated.
    """
    m = _RFC3339.fullmatch(text)
    if m is None:
        return None
    year, month, day, hour, minute, second, frac, z, sign, oh, om = m.groups()
    micro = int((frac[1:] + "000000")[:6]) if frac else 0
    try:
        if z:
            tz = UTC
        else:
            if int(oh) > 23 or int(om) > 59:
                return None
            offset = timedelta(hours=int(oh), minutes=int(om))
            tz = timezone(-offset if sign == "-" else offset)
        ts = datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second), micro, tzinfo=tz
        )
        ts.astimezone(UTC)  # out of range once in UTC (year 1 with a negative offset...)
    except (ValueError, OverflowError):
        return None
    return ts


def parse_power_reading(
    node: NodeInfo, *, now: datetime | None = None, max_skew: timedelta = DEFAULT_CLOCK_SKEW
) -> PowerReading | InputError | None:
    """The monitor's reading from a node's annotations; ``None`` when it wrote none.

    Watts must be a finite, non-negative decimal; the timestamp RFC 3339 with a
    zone (the monitor writes UTC). A bad reading is an error value: the
    controller logs it and treats the node as having no reading. With ``now``,
    a timestamp more than ``max_skew`` in the future is an error too (the
    scoring applies the same bound at decision time: see
    :attr:`~energysched.core.params.ScheduleParams.clock_skew_allowance`).
    """
    ann = node.annotations
    raw_watts = ann.get(CURRENT_WATTS_ANNOTATION)
    if raw_watts is None:
        return None
    subject = f"node {node.name}"
    text = raw_watts.strip()
    watts = float(text) if _DECIMAL.fullmatch(text) else math.nan
    if not math.isfinite(watts) or watts < 0:
        return InputError(
            subject,
            f"annotation {CURRENT_WATTS_ANNOTATION}",
            _shown(raw_watts),
            "a non-negative decimal number of watts is allowed",
        )
    raw_ts = ann.get(CURRENT_WATTS_TIMESTAMP_ANNOTATION)
    field = f"annotation {CURRENT_WATTS_TIMESTAMP_ANNOTATION}"
    allowed_ts = 'an RFC 3339 timestamp with a zone is allowed (e.g. "2026-01-31T12:00:00Z")'
    if raw_ts is None:
        return InputError(subject, field, "<missing>", allowed_ts)
    ts = parse_rfc3339(raw_ts.strip())
    if ts is None:
        return InputError(subject, field, _shown(raw_ts), allowed_ts)
    if now is not None and ts - now > max_skew:
        return InputError(
            subject,
            field,
            raw_ts,
            f"it is {(ts - now).total_seconds():.0f}s in the future (now {now.isoformat()}); "
            f"at most {max_skew.total_seconds():g}s of clock skew is allowed",
        )
    source = ann.get(POWER_SOURCE_ANNOTATION, "unknown") or "unknown"
    return PowerReading(watts=watts, timestamp=ts, source=source)


def parse_workload_type(pod: PodInfo) -> WorkloadType | InputError | None:
    """The pod's workload type; ``None`` when the label is absent."""
    raw = pod.workload_type_raw
    if raw is None:
        return None
    for wt in WORKLOAD_TYPES:
        if raw == wt:
            return wt
    return InputError(f"pod {pod.key}", f"label {WORKLOAD_TYPE_LABEL}", raw, ALLOWED_WORKLOAD_TYPE)


#: Largest accepted work annotation: far above any real job, small enough that
#: work / performance stays finite.
MAX_WORK: Final = 1e15
ALLOWED_WORK: Final = f"allowed is a decimal amount of work > 0 and <= {MAX_WORK:g}"


def parse_work(pod: PodInfo) -> float | InputError | None:
    """The pod's amount of work (``energy.thesis.io/work``); ``None`` when absent."""
    raw = pod.annotations.get(WORK_ANNOTATION)
    if raw is None:
        return None
    text = raw.strip()
    if len(text) <= 64 and _DECIMAL.fullmatch(text):
        work = float(text)
        if 0.0 < work <= MAX_WORK:
            return work
    return InputError(f"pod {pod.key}", f"annotation {WORK_ANNOTATION}", raw, ALLOWED_WORK)


def parse_weight(pod: PodInfo, default: float) -> float | InputError:
    """The pod's performance weight, or ``default`` when the annotation is absent."""
    raw = pod.weight_raw
    if raw is None:
        return default
    text = raw.strip()
    if _DECIMAL.fullmatch(text):
        w = float(text)
        if 0.0 <= w <= 1.0:
            return w
    return InputError(
        f"pod {pod.key}", f"annotation {PERFORMANCE_WEIGHT_ANNOTATION}", raw, ALLOWED_WEIGHT
    )
