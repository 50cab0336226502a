"""Per profile x workload type, a posterior for performance and for working power.

The model (one figure at a time, in logs, because the error of an estimate is a factor):
``log(observed) ~ N(log(true figure), obs_sigma^2)`` with the prior
``log(true figure) ~ N(log(spec figure), log(factor)^2)``: the profile's figure, uncertain
by a factor of 2 when its ``source`` is ``estimated`` or unsaid, 1.25 when ``measured``
(one standard deviation). Conjugate, so a figure's whole state is three numbers: the
decayed observation weight, the decayed weighted sum of logs, and when it was last
updated. Old data fades with a half-life (weights x 0.5 per half-life), so a drifted
node is relearned. The store is bounded by construction: one small state per
(profile, workload type, figure), nothing per observation.

Outliers: an observation more than ``outlier_sigmas`` predictive standard deviations
from the posterior is refused and counted, unless ``accept_after`` such refusals come in
a row for the same figure (then the node has changed, and the run is believed).

A profile's spec changing under learned figures: the figure's state is **reset** (the new
spec is the new prior, the observations of the old one are dropped and counted as
``spec-changed``). A person who edits a figure has new knowledge (a re-benchmark, a new
BIOS); mixing old observations into the new prior would argue with them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Final, Literal

from energysched.contract import WorkloadType
from energysched.kb.profiles import KnowledgeBase, ProfileSpec
from energysched.learning.observe import Observation

Figure = Literal["performance", "power"]
FIGURES: Final[tuple[Figure, ...]] = ("performance", "power")

#: Why an observation (or a figure of one) was not learned from, beyond observe's reasons.
EstimateRejection = Literal["outlier", "unknown-profile", "no-spec-figure", "spec-changed"]


@dataclass(frozen=True, slots=True)
class LearnConfig:
    #: Prior width (one standard deviation, as a factor) by the figure's ``source``.
    prior_factor_estimated: float = 2.0
    prior_factor_measured: float = 1.25
    #: Run-to-run spread of one observation (log standard deviation).
    obs_sigma: float = 0.1
    #: Observations lose half their weight per half-life (seconds; inf: never).
    half_life_s: float = 7 * 86400.0
    outlier_sigmas: float = 4.0
    accept_after: int = 3


@dataclass(frozen=True, slots=True)
class FigureState:
    """The posterior of one figure, as sufficient statistics (see module doc)."""

    #: The spec figure this state was learned against (its prior's centre).
    spec: float
    prior_sigma: float
    weight: float = 0.0  # decayed number of observations
    sum_log: float = 0.0  # decayed weighted sum of log(observed)
    count: int = 0  # observations ever accepted (not decayed)
    last: float = -math.inf  # POSIX seconds of the last update
    outliers_in_row: int = 0

    def decayed(self, now: float, half_life_s: float) -> FigureState:
        if not math.isfinite(self.last) or now <= self.last or not math.isfinite(half_life_s):
            return self
        k = 0.5 ** ((now - self.last) / half_life_s)
        return replace(self, weight=self.weight * k, sum_log=self.sum_log * k)

    def log_posterior(self, obs_sigma: float) -> tuple[float, float]:
        """(mean, standard deviation) of the log of the figure."""
        p0 = 1.0 / self.prior_sigma**2
        p1 = self.weight / obs_sigma**2
        mean = (math.log(self.spec) * p0 + self.sum_log / obs_sigma**2) / (p0 + p1)
        return mean, math.sqrt(1.0 / (p0 + p1))

    def estimate(self, obs_sigma: float) -> tuple[float, float]:
        """(learned figure = exp(posterior log mean), uncertainty as a factor = exp(sd))."""
        m, s = self.log_posterior(obs_sigma)
        return math.exp(m), math.exp(s)


Key = tuple[str, WorkloadType, Figure]


@dataclass(frozen=True, slots=True)
class Learned:
    """What the learner holds for one (profile, workload type): for status and explain."""

    performance: float
    performance_factor: float  # uncertainty, one standard deviation as a factor
    power_watts: float
    power_factor: float
    performance_count: int
    power_count: int
    last: float  # POSIX seconds; -inf: never updated


def _source_factor(profile: ProfileSpec, wt: WorkloadType, cfg: LearnConfig) -> float:
    fig = profile.workloads.get(wt)
    return (
        cfg.prior_factor_measured
        if fig is not None and fig.source == "measured"
        else cfg.prior_factor_estimated
    )


def _spec_value(profile: ProfileSpec, wt: WorkloadType, figure: Figure) -> float | None:
    fig = profile.workloads.get(wt)
    if fig is None:
        return None
    v = fig.performance if figure == "performance" else fig.power_watts
    return v if math.isfinite(v) and v > 0 else None


class Estimator:
    """The posterior of every (profile, workload type, figure). Pure; not thread-safe.

    ``counts`` holds how many observations (or figures of one) each rule refused.
    """

    def __init__(self, cfg: LearnConfig | None = None) -> None:
        self.cfg = cfg or LearnConfig()
        self.states: dict[Key, FigureState] = {}
        self.counts: dict[str, int] = {}

    def _count(self, reason: str) -> None:
        self.counts[reason] = self.counts.get(reason, 0) + 1

    def _state(self, profile: ProfileSpec, wt: WorkloadType, figure: Figure) -> FigureState | None:
        spec = _spec_value(profile, wt, figure)
        key = (profile.name, wt, figure)
        if spec is None:
            self.states.pop(key, None)
            return None
        prior = math.log(_source_factor(profile, wt, self.cfg))
        st = self.states.get(key)
        if st is None or st.spec != spec or st.prior_sigma != prior:
            if st is not None and st.count:
                self._count("spec-changed")
            st = FigureState(spec=spec, prior_sigma=prior)
            self.states[key] = st
        return st

    def sync(self, kb: KnowledgeBase) -> None:
        """Drop the states of deleted profiles or types; reset those whose spec changed."""
        live: set[Key] = set()
        for p in kb.profiles.values():
            for wt in p.workloads:
                for figure in FIGURES:
                    if self._state(p, wt, figure) is not None:
                        live.add((p.name, wt, figure))
        for key in [k for k in self.states if k not in live]:
            del self.states[key]

    def _learn(
        self, key: Key, st: FigureState, value: float, at: float, extra_sigma: float = 0.0
    ) -> None:
        """Add one observation, weighed by obs_sigma^2 / (obs_sigma^2 + extra_sigma^2)."""
        cfg = self.cfg
        st = st.decayed(at, cfg.half_life_s)
        m, s = st.log_posterior(cfg.obs_sigma)
        x = math.log(value)
        predictive = math.sqrt(s * s + cfg.obs_sigma**2 + extra_sigma**2)
        w = cfg.obs_sigma**2 / (cfg.obs_sigma**2 + extra_sigma**2)
        outlier = abs(x - m) > cfg.outlier_sigmas * predictive
        if outlier and st.outliers_in_row + 1 < cfg.accept_after:
            self.states[key] = replace(st, outliers_in_row=st.outliers_in_row + 1)
            self._count("outlier")
            return
        self.states[key] = replace(
            st,
            weight=st.weight + w,
            sum_log=st.sum_log + w * x,
            count=st.count + 1,
            last=max(st.last, at),
            outliers_in_row=0,
        )

    def add(self, obs: Observation, kb: KnowledgeBase) -> None:
        profile = kb.profiles.get(obs.profile)
        if profile is None:
            self._count("unknown-profile")
            return
        parts = (
            ("performance", obs.performance, obs.stamp_sigma),
            ("power", obs.power_watts, 0.0),
        )
        for figure, value, extra in parts:
            if value is None:
                continue
            if not (math.isfinite(value) and value > 0):
                self._count("not-positive")
                continue
            st = self._state(profile, obs.workload_type, figure)  # type: ignore[arg-type]
            if st is None:
                self._count("no-spec-figure")
                continue
            key: Key = (profile.name, obs.workload_type, figure)  # type: ignore[assignment]
            self._learn(key, st, value, obs.at, extra)

    def add_all(self, observations: Iterable[Observation], kb: KnowledgeBase) -> None:
        for o in observations:
            self.add(o, kb)

    def learned(self, kb: KnowledgeBase) -> Mapping[tuple[str, WorkloadType], Learned]:
        """Per (profile, workload type) with both spec figures: the learned figures."""
        out: dict[tuple[str, WorkloadType], Learned] = {}
        sigma = self.cfg.obs_sigma
        for p in kb.profiles.values():
            for wt in p.workloads:
                perf = self._state(p, wt, "performance")
                power = self._state(p, wt, "power")
                if perf is None or power is None:
                    continue
                pv, pf = perf.estimate(sigma)
                wv, wf = power.estimate(sigma)
                out[(p.name, wt)] = Learned(
                    pv, pf, wv, wf, perf.count, power.count, max(perf.last, power.last)
                )
        return MappingProxyType(out)
