"""Differential test: our quantity parser against apimachinery's real ParseQuantity.

A tiny Go main (lab/energysched_lab/cluster/gomod/cmd/quantity) is built from the
control plane's pinned module (so the apimachinery version is the one the local
cluster runs) with a temporary copy of go.mod/go.sum (``go build -mod=mod``
would otherwise rewrite them, and they key the control plane's cache). The
binary is cached under ~/.cache/energysched/quantity/<hash>/.

Compared: accepted or not (and which of upstream's three errors), the exact
value (held at 10^36 on our side, see energysched.core.quantity), and Value()
/ MilliValue() for non-negative values small enough for upstream not to
overflow.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from energysched.core.quantity import (
    HUGE_NANOS,
    QuantityError,
    milli_value,
    parse_quantity,
    value,
)
from energysched_lab.cluster.build import GOMOD_DIR, cache_root

GO_ERRORS = {
    "unable to parse numeric part of quantity": "numeric",
    "unable to parse quantity's suffix": "suffix",
}


def _build(go: Path) -> Path:
    version = subprocess.run(
        [go, "env", "GOVERSION"], capture_output=True, text=True, check=True
    ).stdout.strip()
    h = hashlib.sha256(version.encode())
    for name in ("go.mod", "go.sum", "cmd/quantity/main.go"):
        h.update((GOMOD_DIR / name).read_bytes())
    target = cache_root() / "quantity" / h.hexdigest()[:16] / "quantity"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("go.mod", "go.sum"):
            shutil.copy(GOMOD_DIR / name, Path(tmp) / name)
        env = {**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "-mod=mod -buildvcs=false"}
        out = Path(tmp) / "quantity"
        proc = subprocess.run(
            [go, "build", "-trimpath", f"-modfile={tmp}/go.mod", "-o", str(out), "./cmd/quantity"],
            cwd=GOMOD_DIR,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        if proc.returncode != 0:
            pytest.fail(f"go build of cmd/quantity failed:\n{proc.stdout}\n{proc.stderr}")
        out.replace(target)
    return target


@pytest.fixture(scope="module")
def upstream(go_toolchain: Path) -> Path:
    """apimachinery's ParseQuantity, built with Go (the ``go`` marker follows from here)."""
    return _build(go_toolchain)


def go_parse(binary: Path, texts: list[str]) -> list[str]:
    stdin = "".join(t.encode().hex() + "\n" for t in texts)
    proc = subprocess.run(
        [str(binary)], input=stdin, capture_output=True, text=True, check=True, timeout=120
    )
    lines = proc.stdout.splitlines()
    assert len(lines) == len(texts)
    return lines


def ours(text: str) -> str:
    """Our result in the Go program's terms (value compared separately)."""
    try:
        parse_quantity(text)
    except QuantityError as e:
        return "numeric" if "numeric" in e.why else ("suffix" if "suffix" in e.why else "format")
    return "ok"


def compare(binary: Path, texts: list[str]) -> None:
    problems = []
    for text, line in zip(texts, go_parse(binary, texts), strict=True):
        kind, _, rest = line.partition(" ")
        if kind == "err":
            want = GO_ERRORS.get(rest, "format")
            got = ours(text)
            if got != want:
                problems.append(f"{text!r}: upstream error {rest!r}, ours {got}")
            continue
        unscaled_s, scale_s, go_value, go_milli = rest.split(" ")
        try:
            q = parse_quantity(text)
        except QuantityError as e:
            problems.append(f"{text!r}: upstream accepts ({rest}), ours rejects: {e.why}")
            continue
        scale = int(scale_s)
        magnitude = unscaled_s.lstrip("-")
        # upstream's exact value in nanos, held at HUGE_NANOS as ours is
        if magnitude == "0":
            want_nanos = 0
        elif len(magnitude) - 1 + 9 - scale >= 45:
            want_nanos = -HUGE_NANOS if unscaled_s.startswith("-") else HUGE_NANOS
        else:
            unscaled = int(unscaled_s)
            exact = Fraction(unscaled) * Fraction(10) ** (9 - scale)
            assert exact.denominator == 1, (text, rest)  # always a multiple of 1n
            want_nanos = max(-HUGE_NANOS, min(HUGE_NANOS, int(exact)))
        if q * 10**9 != want_nanos:
            problems.append(f"{text[:40]!r}: upstream {unscaled_s[:40]}e{-scale}, ours {q}")
            continue
        if (
            go_value != "-"
            and q >= 0
            and (value(q), milli_value(q))
            != (
                int(go_value),
                int(go_milli),
            )
        ):
            problems.append(
                f"{text!r}: Value/MilliValue upstream {go_value}/{go_milli}, "
                f"ours {value(q)}/{milli_value(q)}"
            )
    assert not problems, "\n".join(problems)


CORPUS = [
    # digit-free forms: some are 0 in upstream's fast path, others errors
    *("Pi", "Ei", "-Ei", "+Ei", "Ki", "Mi", "Gi", "Ti", "k", "M", "E", "m", "n", "u"),
    *("e-10", "e-9", "e-5", "e5", "e18", "e19", "E3", ".", "+", "-", "+.", "-.", ".e3"),
    *(".Ki", ".Pi", "0Pi", "00Ei", "+0", "-0", "0.0", "00", "0e0", "0e-1000"),
    # zero or no digit with a huge exponent (the value is 0; once a billion-digit product)
    *("0e999999999", ".e9999999", "-0e999999999", "0.0e999999999", "000e99999999"),
    # ordinary values and their suffixes
    *("1", "1.5", ".5", "1.", "100m", "250m", "1Ki", "1.5Ki", "0.5Gi", "2Gi", "1e3", "1E3"),
    *("1e+3", "1e-3", "1.5e2", "12e0", "1n", "1u", "1k", "1M", "1G", "1T", "1P", "1E"),
    # rounding to 1n and the caps (binary only)
    *("0.0000000001", "-0.0000000001", "1.0000000001", "0.5n", "1.5n", "0.1m", "1e-10"),
    *("9223372036854775807", "9223372036854775808", "92233720368547758070", "10E", "9Ei"),
    *("8Ei", "7.9999Ei", "10Ei", "9223372036854775807Ki", "9223372036854775808Ki", "5E", "8E"),
    *("999999999999999999", "1000000000000000000", "123456789012345678.9", "1.5Ei"),
    # exponents: int64 parse, int32 truncation, wrap-around in scale arithmetic
    *("1e4294967296", "1e4294967297", "1e2147483647"),
    *("1e9223372036854775807", "1e9223372036854775808", "1e-9223372036854775808"),
    *("1e000000000000000000000000003", "1e1001", "1e-1001", "1e99999", "1e999999999"),
    *("1e+0", "1e-0", "1e--1", "1e+-1", "1ee3", "1e3e3", "1e3.5"),
    # format and suffix errors
    *("", "abc", "1x", "1Kib", "1i", "1 ", " 1", "1e", "1.5.5", "--1", ".5i", "-3.01e-"),
    *("0.1mi", "1+1.0M", "1KiB", "1ki", "1MM", "1mm", "1Kie3", "1e3Ki", "1\n", "\u0661", "1é"),
    # long digit strings (upstream has no length limit)
    "1" * 5000,
    "0." + "0" * 5000 + "1",
    "1." + "0" * 5000 + "1Ki",
    "0" * 5000 + "1",
    "1" + "0" * 30 + "e-30",
    "1" * 4400 + "e-4390",
    "12345678901234567890e-10",
    "123456789012345678901234567890n",
]


def test_corpus_matches_apimachinery(upstream: Path) -> None:
    compare(upstream, CORPUS)


@pytest.mark.parametrize(
    ("text", "nanos"),
    [
        ("1e2147483648", HUGE_NANOS),  # exponent -2^31: its negation wraps
        ("1e-2147483648", HUGE_NANOS),
        ("1.5e-2147483647", HUGE_NANOS),  # 1 + 2147483647 wraps to -2^31
        ("1e-2147483647", 1),  # upstream divides by 10^2147483638; the value is 1n
    ],
)
def test_where_upstream_never_returns_we_return_at_once(text: str, nanos: int) -> None:
    """Upstream builds a number of about 2^31 digits here and does not return
    within minutes; we return the value (held at 10^36) at once."""
    assert parse_quantity(text) == Fraction(nanos, 10**9)


_CHARS = st.sampled_from(list("0123456789.+-eEinumkKMGTP"))
_NUMBERS = st.builds(
    lambda sign, a, dot, b: sign + a + dot + b,
    st.sampled_from(["", "", "+", "-"]),
    st.text(alphabet="0123456789", max_size=24),
    st.sampled_from(["", "", "."]),
    st.text(alphabet="0123456789", max_size=24),
)
_SUFFIXES = st.one_of(
    st.sampled_from(["", "n", "u", "m", "k", "M", "G", "T", "P", "E"]),
    st.sampled_from(["Ki", "Mi", "Gi", "Ti", "Pi", "Ei"]),
    st.builds(
        lambda e, sign, n: e + sign + str(n),
        st.sampled_from(["e", "E"]),
        st.sampled_from(["", "+", "-"]),
        # upstream does not return for exponents that push the scale near 2^31
        st.integers(min_value=0, max_value=5000),
    ),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.one_of(
            st.builds(lambda n, s: n + s, _NUMBERS, _SUFFIXES),
            # short: upstream takes minutes on 1e-999999999 (it builds 10^999999999)
            st.text(alphabet=_CHARS, max_size=9),
        ),
        min_size=1,
        max_size=200,
    )
)
def test_generated_match_apimachinery(upstream: Path, texts: list[str]) -> None:
    compare(upstream, texts)
