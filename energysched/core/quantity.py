"""Kubernetes resource quantities, parsed exactly as apimachinery does.

A port of ``k8s.io/apimachinery/pkg/api/resource`` ``ParseQuantity`` (v0.35) and
the conversions the scheduler uses (``MilliValue`` for cpu, ``Value`` for
everything else), with exact rational arithmetic (:class:`fractions.Fraction`)
so that sums of container requests are exact until the single final rounding,
as in kube-scheduler (``PodRequests`` adds quantities, ``Resource.Add`` rounds
once). ``tests/unit/core/test_core_quantity_go.py`` compares it with the real Go
function over a corpus of tricky inputs and generated ones.

Grammar (from quantity.go)::

    <quantity>        ::= <signedNumber><suffix>
    <signedNumber>    ::= [+-] <digits> [ . <digits> ]      (either side may be empty)
    <suffix>          ::= <binarySI> | <decimalExponent> | <decimalSI>
    <binarySI>        ::= Ki | Mi | Gi | Ti | Pi | Ei
    <decimalSI>       ::= n | u | m | "" | k | M | G | T | P | E
    <decimalExponent> ::= e <signedNumber> | E <signedNumber>   (integer exponent)

Upstream's two paths, reproduced with their quirks:

- The int64 fast path (at most 18 digits, scale >= -9, the value times the
  binary multiplier fits int64) keeps the value exactly. An empty number reads
  as 0 here, so ``Ki``, ``k`` or ``.`` are 0.
- Otherwise the inf.Dec slow path: the number part must hold a digit (``Pi``,
  ``e-10``, ``-Ei`` are rejected), the magnitude is rounded *up* to a multiple
  of 1n, and binary-SI values (only those) are capped at 2^63-1.
- The exponent is parsed as int64 and then truncated to int32, and scale
  arithmetic wraps in int32 (``1e4294967296`` is 1).

Two deliberate differences, neither reachable with a value the scheduler can
use: magnitudes above 10^36 are held as 10^36 (every conversion saturates long
before; this keeps ``1e999999999`` from building a billion-digit integer, which
is also where upstream itself stops returning for some inputs, e.g.
``1e-2147483648``); and conversions of *negative* quantities round toward +inf
(upstream's depend on the internal path; requests and allocatable are never
negative, the parser rejects them). Conversions round up and saturate at the
int64 range (upstream wraps).
"""

from __future__ import annotations

import decimal
import re
from fractions import Fraction
from typing import Final

INT64_MAX: Final = 2**63 - 1
INT64_MIN: Final = -(2**63)

_SUFFIX_CHARS: Final = frozenset("eEinumkKMGTP")
_DIGITS: Final = frozenset("0123456789")
_DECIMAL_SI: Final[dict[str, int]] = {
    "n": -9,
    "u": -6,
    "m": -3,
    "": 0,
    "k": 3,
    "M": 6,
    "G": 9,
    "T": 12,
    "P": 15,
    "E": 18,
}
_BINARY_SI: Final[dict[str, int]] = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_EXPONENT: Final = re.compile(r"[+-]?[0-9]+")
_NANO: Final = 10**9
#: Magnitudes are held exactly up to 10^36 units (in nanos: 10^45); beyond, as 10^36.
_HUGE_DIGITS: Final = 45
HUGE_NANOS: Final = 10**_HUGE_DIGITS
#: The binary-SI cap, 2^63-1 units, in nanos.
_BINARY_CAP_NANOS: Final = INT64_MAX * _NANO

ALLOWED_QUANTITY: Final = (
    "a Kubernetes quantity is allowed: a decimal number with an optional suffix "
    "n, u, m, k, M, G, T, P, E, Ki, Mi, Gi, Ti, Pi, Ei or an exponent e<int> "
    '(e.g. "500m", "1.5", "2Gi", "1e3")'
)


class QuantityError(ValueError):
    """The text is not a Kubernetes quantity. ``str()`` says why."""

    def __init__(self, text: str, why: str) -> None:
        shown = text if len(text) <= 80 else f"{text[:60]}...({len(text)} characters)"
        super().__init__(f'quantity "{shown}" is invalid: {why}')
        self.text = text
        self.why = why


def _wrap32(v: int) -> int:
    """Go's int32 conversion and int32 arithmetic (two's complement wrap)."""
    return ((v + 2**31) % 2**32) - 2**31


def _split(text: str) -> tuple[bool, str, str, str, str]:
    """``parseQuantityString``: sign, the number part as written, numerator
    digits (leading zeros stripped), denominator digits, suffix."""
    positive = True
    pos = 0
    end = len(text)
    if pos < end:
        if text[0] == "-":
            positive = False
            pos += 1
        elif text[0] == "+":
            pos += 1
    # strip leading zeros
    while True:
        if pos >= end:
            return positive, "0", "0", "", ""
        if text[pos] == "0":
            pos += 1
        else:
            break
    # numerator
    start = pos
    while True:
        if pos >= end:
            return positive, text, text[start:end], "", ""
        if text[pos] in _DIGITS:
            pos += 1
        else:
            break
    num = text[start:pos] or "0"
    denom = ""
    if pos < end and text[pos] == ".":
        pos += 1
        start = pos
        while True:
            if pos >= end:
                return positive, text, num, text[start:end], ""
            if text[pos] in _DIGITS:
                pos += 1
            else:
                break
        denom = text[start:pos]
    number = text[:pos]
    # suffix: letters, then optionally a signed integer (the exponent)
    suffix_start = pos
    i = pos
    while True:
        if i >= end:
            return positive, number, num, denom, text[suffix_start:end]
        if text[i] not in _SUFFIX_CHARS:
            pos = i
            break
        i += 1
    if pos < end and text[pos] in "+-":
        pos += 1
    i = pos
    while True:
        if i >= end:
            return positive, number, num, denom, text[suffix_start:end]
        if text[i] in _DIGITS:
            i += 1
        else:
            break
    raise QuantityError(text, "unexpected characters (format wrong)")


def _parse_int64(digits: str) -> int | None:
    """``strconv.ParseInt(digits, 10, 64)`` on ``[+-]?[0-9]+`` (any length)."""
    sign = -1 if digits[0] == "-" else 1
    body = digits.lstrip("+-").lstrip("0") or "0"
    if len(body) > 19:
        return None
    v = sign * int(body)
    return v if INT64_MIN <= v <= INT64_MAX else None


def _ceil_nanos(digits: str, pow10: int, pow2: int) -> int:
    """``ceil(int(digits) * 2^pow2 * 10^pow10)`` for a digit string of any length,
    held at :data:`HUGE_NANOS`; ``digits`` has no leading zeros."""
    if not digits:
        return 0
    if len(digits) - 1 + pow10 >= _HUGE_DIGITS:
        return HUGE_NANOS
    if pow10 >= 0:
        exact: int = int(digits) * 10**pow10 << pow2
        return min(exact, HUGE_NANOS)
    # A long fraction (pow10 < 0): int() refuses over 4,300 digits, the decimal
    # module does not, and it is exact with enough precision.
    ctx = decimal.Context(
        prec=len(digits) + 40, Emax=decimal.MAX_EMAX, Emin=decimal.MIN_EMIN, traps=[]
    )
    x = ctx.scaleb(ctx.multiply(decimal.Decimal(digits), 1 << pow2), pow10)
    return min(int(x.to_integral_value(rounding=decimal.ROUND_CEILING, context=ctx)), HUGE_NANOS)


def parse_quantity(text: str) -> Fraction:
    """The exact value of a quantity string. Raises :class:`QuantityError`."""
    if not text:
        raise QuantityError(text, "empty")
    if text == "0":
        return Fraction(0)
    positive, number, num, denom, suffix = _split(text)

    if suffix in _DECIMAL_SI:
        binary, exponent = False, _DECIMAL_SI[suffix]
    elif suffix in _BINARY_SI:
        binary, exponent = True, _BINARY_SI[suffix]
    elif len(suffix) > 1 and suffix[0] in "eE" and _EXPONENT.fullmatch(suffix[1:]):
        parsed = _parse_int64(suffix[1:])
        if parsed is None:
            raise QuantityError(text, f'unknown suffix "{suffix}"')
        binary, exponent = False, _wrap32(parsed)
    else:
        raise QuantityError(text, f'unknown suffix "{suffix}"')

    # The int64 fast path: the value exactly, no rounding, no cap.
    mantissa = 1
    if binary:
        scale = 0
        if not denom:
            mantissa = 1 << exponent
            precision = 15 - len(num) - int(exponent * 3 / 10) - 1
        else:
            precision = -1
    else:
        scale = exponent
        precision = 18 - (len(num) + len(denom))
    if precision >= 0:
        scale = _wrap32(scale - len(denom))
        if scale >= -9:
            v = int(num + denom) * mantissa
            if v <= INT64_MAX:
                if v == 0:  # not 0 * 10^(scale+9): "0e999999999" would build 10^(10^9)
                    nanos = 0
                elif len(str(v)) - 1 + scale + 9 >= _HUGE_DIGITS:
                    nanos = HUGE_NANOS
                else:
                    nanos = v * 10 ** (scale + 9)
                return Fraction(nanos if positive else -nanos, _NANO)

    # The inf.Dec slow path: needs a digit, rounds the magnitude up to 1n.
    if not any(c in _DIGITS for c in number):
        raise QuantityError(text, "unable to parse numeric part of quantity")
    digits = (num + denom).lstrip("0")
    if binary:
        nanos = min(_ceil_nanos(digits, 9 - len(denom), exponent), _BINARY_CAP_NANOS)
    else:
        inf_scale = _wrap32(len(denom) + _wrap32(-exponent))
        nanos = _ceil_nanos(digits, 9 - inf_scale, 0)
    return Fraction(nanos if positive else -nanos, _NANO)


def _ceil(value: Fraction) -> int:
    return -(-value.numerator // value.denominator)


def _saturate(value: int) -> int:
    return max(INT64_MIN, min(INT64_MAX, value))


def milli_value(quantity: Fraction) -> int:
    """``Quantity.MilliValue()``: thousandths, rounded up, int64-saturated (cpu)."""
    return _saturate(_ceil(quantity * 1000))


def value(quantity: Fraction) -> int:
    """``Quantity.Value()``: whole units, rounded up, int64-saturated."""
    return _saturate(_ceil(quantity))


def canonical(resource: str, quantity: Fraction) -> int:
    """The integer the scheduler compares: millicores for cpu, units otherwise."""
    return milli_value(quantity) if resource == "cpu" else value(quantity)
