"""An existing Prometheus as a power source: one instant query for every node at once.

The config's ``query`` returns one series per node (for all nodes); ``seriesLabel`` names
the label that tells the nodes apart and ``seriesValue`` (``$node``, e.g. ``$node:9290``)
what it holds for a node. The monitor sends ONE request per poll to ``/api/v1/query``,
the query combined with its timestamps::

    label_replace((QUERY), "energysched_field", "watts", "", "")
      or label_replace((TIMESTAMP_QUERY), "energysched_field", "ts", "", "")

``TIMESTAMP_QUERY`` defaults to ``timestamp(QUERY)``: for a plain selector (the IPMI
exporter's ``ipmi_dcmi_power_consumption_watts``, node_exporter's
``node_hwmon_power_average_watt``) that is each sample's own scrape time, so staleness
is judged by the sample, not by when we asked. For an expression (Kepler's ``rate``)
``timestamp()`` gives the evaluation time; name the raw series instead
(``timestampQuery: timestamp(kepler_node_platform_joules_total)``).

A node gets no reading (never a wrong number) when its series is missing, when the
query returns several series for it (say ``sum by (instance)``), when its sample is
older than ``maxSampleAgeSeconds``, or when the query fails (a PromQL error is quoted).
Pure parsing here (:func:`node_outcomes`); the HTTP client is :class:`PrometheusClient`.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from string import Template
from typing import Annotated, Final

import aiohttp
from pydantic import AfterValidator, Field

from energysched.strict import show
from energysched_monitor.interfaces import NodeInfo
from energysched_monitor.readings import PowerSource, ReadError, Reading, excerpt
from energysched_monitor.redfish import tls_context
from energysched_monitor.secret import Secret
from energysched_monitor.source_interface import (
    Address,
    BuildContext,
    ConfigError,
    Credentials,
    KindFields,
    SourcePlugin,
    SourceSpec,
    access_parts,
    require_url,
)

FIELD_LABEL: Final = "energysched_field"
QUERY_PATH: Final = "/api/v1/query"
MAX_REPLY_BYTES: Final = 64 * 1024 * 1024  # 1,500 nodes x 2 series are ~0.5 MB


def combined_query(query: str, timestamp_query: str | None) -> str:
    """The one PromQL expression sent per poll: the watts and their timestamps."""
    stamps = timestamp_query or f"timestamp({query})"
    return (
        f'label_replace(({query}), "{FIELD_LABEL}", "watts", "", "")'
        f' or label_replace(({stamps}), "{FIELD_LABEL}", "ts", "", "")'
    )


@dataclass(frozen=True, slots=True)
class Series:
    labels: Mapping[str, str]
    value: float
    evaluated_at: float


def parse_response(status: int, body: str, where: str) -> list[Series]:
    """The instant vector of an ``/api/v1/query`` reply; ReadError naming the problem."""
    try:
        doc = json.loads(body)
    except ValueError:
        raise ReadError("malformed", f"{where}: HTTP {status}, not JSON: {excerpt(body)}") from None
    if not isinstance(doc, dict):
        raise ReadError("malformed", f"{where}: not a JSON object: {excerpt(body)}")
    if doc.get("status") != "success":
        kind = doc.get("errorType", "?")
        raise ReadError(
            "http" if status >= 500 else "config",
            f"{where}: HTTP {status}, PromQL {kind} error: {excerpt(str(doc.get('error', '')))}",
        )
    data = doc.get("data")
    if not isinstance(data, dict) or data.get("resultType") != "vector":
        got = data.get("resultType") if isinstance(data, dict) else data
        raise ReadError(
            "config", f"{where}: the query must give an instant vector, got {excerpt(str(got))}"
        )
    series: list[Series] = []
    for item in data.get("result") or []:
        metric, value = item.get("metric"), item.get("value")
        if not isinstance(metric, dict) or not isinstance(value, list) or len(value) != 2:
            raise ReadError("malformed", f"{where}: odd sample {excerpt(str(item))}")
        try:
            at, number = float(value[0]), float(value[1])  # "NaN", "+Inf" parse as floats
        except (TypeError, ValueError):
            raise ReadError("malformed", f"{where}: odd sample {excerpt(str(item))}") from None
        series.append(Series({str(k): str(v) for k, v in metric.items()}, number, at))
    return series


@dataclass(frozen=True, slots=True)
class NodeQuery:
    """What one node looks for in the shared result."""

    node: str
    series_value: str | None  # None: the node lacks the label it is named by
    max_age_seconds: float


@dataclass
class _Found:
    watts: list[Series] = field(default_factory=list)
    stamps: list[Series] = field(default_factory=list)


def _describe(labels: Mapping[str, str]) -> str:
    inner = ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items()) if k != FIELD_LABEL)
    return "{" + inner + "}"


def node_outcomes(
    series: Iterable[Series],
    series_label: str,
    wanted: Iterable[NodeQuery],
    now: float,
    where: str,
) -> dict[str, Reading | ReadError]:
    """Each node's reading from the shared result, or the reason it has none (pure)."""
    by_value: dict[str, _Found] = {}
    for s in series:
        key = s.labels.get(series_label)
        if key is None:
            continue
        found = by_value.setdefault(key, _Found())
        (found.stamps if s.labels.get(FIELD_LABEL) == "ts" else found.watts).append(s)
    out: dict[str, Reading | ReadError] = {}
    for q in wanted:
        out[q.node] = _one(q, by_value, series_label, now, where)
    return out


def _one(
    q: NodeQuery, by_value: Mapping[str, _Found], label: str, now: float, where: str
) -> Reading | ReadError:
    if q.series_value is None:
        return ReadError("config", f"node {q.node} lacks the node label that names its series")
    selector = f'{label}="{q.series_value}"'
    found = by_value.get(q.series_value)
    if found is None or not found.watts:
        return ReadError(
            "stale",
            f"{where}: no series with {selector} (target down, not scraped, or another name)",
        )
    if len(found.watts) > 1:
        shown = ", ".join(_describe(s.labels) for s in found.watts[:3])
        return ReadError(
            "malformed",
            f"{where}: {len(found.watts)} series for {selector}: {shown}; one per node is "
            f"needed (aggregate, e.g. sum by ({label}) (...), or narrow the selector)",
        )
    watts = found.watts[0]
    if not math.isfinite(watts.value):
        return ReadError("malformed", f"{where}: {selector}: value {watts.value!r} W")
    sampled_at = watts.evaluated_at
    if len(found.stamps) == 1 and math.isfinite(found.stamps[0].value):
        sampled_at = found.stamps[0].value
    age = now - sampled_at
    if age > q.max_age_seconds:
        return ReadError(
            "stale",
            f"{where}: {selector}: the sample is {age:.0f} s old "
            f"(maxSampleAgeSeconds {q.max_age_seconds:g})",
        )
    return Reading(
        watts.value,
        "prometheus",
        sampled_at=min(sampled_at, now),
        detail={"series": _describe(watts.labels)},
    )


class PrometheusClient:
    """``GET /api/v1/query`` against one Prometheus; raises ReadError."""

    def __init__(
        self,
        address: str,
        *,
        username: str = "",
        password: Secret | None = None,
        ca_bundle: str | None = None,
        insecure: bool = False,
        timeout: float = 10.0,
    ) -> None:
        self.base_url = address.strip().rstrip("/")
        self.username = username
        self._password = password
        self.timeout = timeout
        self._ssl = tls_context(ca_bundle, insecure)
        self._session: aiohttp.ClientSession | None = None
        self.requests = 0  # sent, for the benchmark and the tests

    def __repr__(self) -> str:
        return f"PrometheusClient({self.base_url!r})"

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def query(self, promql: str) -> list[Series]:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=4, ssl=self._ssl),
                timeout=aiohttp.ClientTimeout(total=self.timeout),
            )
        headers = {}
        if self._password:
            headers["Authorization"] = aiohttp.encode_basic_auth(
                self.username, self._password.reveal()
            )
        url = self.base_url + QUERY_PATH
        self.requests += 1
        try:
            async with asyncio.timeout(self.timeout):
                # POST: a query for 1,500 nodes may not fit in a URL; the API takes a form.
                async with self._session.post(url, data={"query": promql}, headers=headers) as resp:
                    raw = await resp.content.read(MAX_REPLY_BYTES + 1)
                    while len(raw) <= MAX_REPLY_BYTES:
                        chunk = await resp.content.read()
                        if not chunk:
                            break
                        raw += chunk
                    status = resp.status
        except TimeoutError:
            raise ReadError("timeout", f"{url}: no answer within {self.timeout:g} s") from None
        except (aiohttp.ClientConnectionError, OSError) as exc:
            raise ReadError("unreachable", f"{url}: {type(exc).__name__}: {exc}") from None
        except aiohttp.ClientError as exc:
            raise ReadError("http", f"{url}: {type(exc).__name__}: {exc}") from None
        if len(raw) > MAX_REPLY_BYTES:
            raise ReadError("malformed", f"{url}: reply longer than {MAX_REPLY_BYTES} bytes")
        if status == 401 or status == 403:
            raise ReadError("auth", f"{url}: HTTP {status}: check the credentials")
        return parse_response(status, raw.decode("utf-8", errors="replace"), url)


# -- the kind ``prometheus`` -----------------------------------------------------------


def _template(value: str) -> str:
    try:
        names = Template(value).get_identifiers()
    except ValueError as exc:
        raise ValueError(f"not a template ({exc}), got {show(value)}") from None
    if not Template(value).is_valid() or set(names) - {"node"}:
        raise ValueError(f"only $node may be substituted, got {show(value)}")
    return value


PromQL = Annotated[str, Field(min_length=1, max_length=4096)]


class PrometheusFields(KindFields):
    address: Address | None = None
    credentials: Credentials = None  # Basic auth
    query: PromQL | None = None  # one series per node, all nodes at once
    timestamp_query: PromQL | None = None  # default timestamp(<query>)
    series_label: Annotated[str, Field(pattern=r"^[a-zA-Z_][a-zA-Z0-9_]*$")] = "node"
    #: The series label's value for a node ($node: its name, or its ``node_label``).
    series_value: Annotated[str, Field(min_length=1, max_length=253), AfterValidator(_template)] = (
        "$node"
    )
    node_label: Annotated[str, Field(min_length=1, max_length=316)] | None = None
    max_sample_age_seconds: Annotated[float, Field(gt=0)] = 60.0  # older: no reading

    def series_value_for(self, node: NodeInfo) -> str | None:
        """The value of ``series_label`` that is this node's series (None if the node lacks
        the ``node_label`` it is named by)."""
        name = node.name if self.node_label is None else node.labels.get(self.node_label)
        if name is None:
            return None
        return Template(self.series_value).safe_substitute(node=name)


def _check(fields: PrometheusFields) -> None:
    require_url("prometheus", fields.address)
    if fields.query is None:
        raise ValueError("a prometheus source needs a query")


def _describe_source(spec: SourceSpec, fields: PrometheusFields) -> list[str]:
    return [
        *access_parts(spec),
        f"query={fields.query!r} {fields.series_label}={fields.series_value!r}",
    ]


def _build(spec: SourceSpec, fields: PrometheusFields, ctx: BuildContext) -> PowerSource:
    raise ConfigError(
        f"node {ctx.node}: kind prometheus is served by the cluster-wide mode "
        "(--prometheus: one query for all nodes), not by the per-node DaemonSet"
    )


PLUGIN: Final = SourcePlugin(
    "prometheus", PrometheusFields, _build, check=_check, describe=_describe_source, tls=True
)
