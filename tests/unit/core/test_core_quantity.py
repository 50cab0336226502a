"""Quantity parsing exactly as apimachinery's ParseQuantity, and the scheduler's rounding."""

from __future__ import annotations

import subprocess
import sys
from fractions import Fraction

import pytest

from energysched.core.quantity import (
    INT64_MAX,
    QuantityError,
    canonical,
    milli_value,
    parse_quantity,
    value,
)

F = Fraction


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", F(0)),
        ("000", F(0)),
        ("1", F(1)),
        ("0001", F(1)),
        ("+1", F(1)),
        ("-1", F(-1)),
        ("100m", F(1, 10)),
        ("1.5", F(3, 2)),
        (".5", F(1, 2)),
        ("1.", F(1)),
        ("1n", F(1, 10**9)),
        ("1u", F(1, 10**6)),
        ("1k", F(1000)),
        ("1M", F(10**6)),
        ("1G", F(10**9)),
        ("1T", F(10**12)),
        ("1P", F(10**15)),
        ("1E", F(10**18)),  # exa, not an exponent
        ("1Ki", F(1024)),
        ("1Mi", F(2**20)),
        ("2Gi", F(2 * 2**30)),
        ("1Ti", F(2**40)),
        ("1.5Ki", F(1536)),
        ("0.5Gi", F(2**29)),
        ("1e3", F(1000)),
        ("1E3", F(1000)),
        ("1e+3", F(1000)),
        ("1e-3", F(1, 1000)),
        ("1.5e2", F(150)),
        ("12e0", F(12)),
        ("Mi", F(0)),  # upstream quirk: a bare suffix reads as zero
        # the slow path rounds up (away from zero) to 1n
        ("1.0000000001", F(1_000_000_001, 10**9)),
        ("0.0000000001", F(1, 10**9)),
        ("-0.0000000001", F(-1, 10**9)),
        # and caps binary-SI (only) at 2^63-1
        ("9223372036854775808", F(INT64_MAX + 1)),
        ("10Ei", F(INT64_MAX)),
        # the exponent is truncated to int32 (upstream: int32(ParseInt(...)))
        ("1e4294967296", F(1)),
        # digits beyond int()'s 4,300-digit limit: exact, or held at 10^36
        ("0." + "0" * 5000 + "1", F(1, 10**9)),
        ("1" * 5000, F(10**36)),
    ],
)
def test_parse(text: str, expected: Fraction) -> None:
    assert parse_quantity(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "abc",
        "1x",
        "1Kib",
        "1i",
        "1 ",
        " 1",
        "1e",
        "1ee3",
        "1.5.5",
        "--1",
        "1e3.5",
        ".5i",
        "-3.01e-",
        "0.1mi",
        "1+1.0M",
        # no digit at all: upstream's slow path rejects these (its fast path reads "Ki" as 0)
        "Pi",
        "e-10",
        "-Ei",
        "1e9223372036854775808",  # the exponent must fit int64
    ],
)
def test_parse_rejects(text: str) -> None:
    with pytest.raises(QuantityError) as info:
        parse_quantity(text)
    assert f'"{text}"' in str(info.value)


@pytest.mark.parametrize(
    ("text", "milli", "units"),
    [
        ("1", 1000, 1),
        ("100m", 100, 1),  # Value() rounds up
        ("0.0001", 1, 1),  # MilliValue() rounds up: kube requests 1m
        ("1.0001", 1001, 2),
        ("1.5", 1500, 2),
        ("1Ki", 1024000, 1024),
        ("1n", 1, 1),
        ("-1.5", -1500, -1),  # ceiling toward +inf, as upstream
    ],
)
def test_rounding(text: str, milli: int, units: int) -> None:
    q = parse_quantity(text)
    assert milli_value(q) == milli
    assert value(q) == units


def test_canonical_saturates_and_picks_unit() -> None:
    assert canonical("cpu", parse_quantity("250m")) == 250
    assert canonical("memory", parse_quantity("1Gi")) == 2**30
    assert canonical("cpu", parse_quantity("1e30")) == INT64_MAX


#: Zero, or no digit at all, with an exponent far beyond any magnitude: the value is 0.
ZERO_WITH_HUGE_EXPONENT = (
    "0e999999999",
    ".e9999999",
    "-0e999999999",
    "0.0e999999999",
    "+.e2147483647",
    "000e999999999",
    "0.000e999999",
)


def test_zero_with_a_huge_exponent_returns_zero_at_once() -> None:
    """``0e999999999`` once built 10^(10^9) before multiplying by 0 (minutes of CPU).

    Run in a child process that is killed at the timeout: a regression fails the
    test instead of hanging the suite."""
    code = (
        "import sys\n"
        "from energysched.core.quantity import parse_quantity\n"
        "for text in sys.argv[1:]:\n"
        "    print(text, parse_quantity(text))\n"
    )
    try:
        done = subprocess.run(
            [sys.executable, "-c", code, *ZERO_WITH_HUGE_EXPONENT],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"parse_quantity did not return within {exc.timeout}s: {exc.stdout!r}")
    assert done.stdout.split("\n")[:-1] == [f"{t} 0" for t in ZERO_WITH_HUGE_EXPONENT]
