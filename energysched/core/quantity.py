"""Kubernetes resource quantities, parsed exactly as apimachinery does.

A port of ``k8s.io/apimachinery/pkg/api/resource`` ``ParseQuantity`` and the
conversions the scheduler uses (``MilliValue`` for cpu, ``Value`` for everything
else), with exact rational arithmetic (:class:`fractions.Fraction`) so that sums
of container requests are exact until the single final rounding, as in
kube-scheduler (``PodRequests`` adds quantities, ``Resource.Add`` rounds once).

Grammar (from quantity.go)::

    <quantity>        ::= <signedNumber><suffix>
    <signedNumber>    ::= [+-] <digits> [ . <digits> ]      (either side may be empty)
    <suffix>          ::= <binarySI> | <decimalExponent> | <decimalSI>
    <binarySI>        ::= Ki | Mi | Gi | Ti | Pi | Ei
    <decimalSI>       ::= n | u | m | "" | k | M | G | T | P | E
    <decimalExponent> ::= e <signedNumber> | E <signedNumber>   (integer exponent)

Like upstream: values that are not exact in the fast int64 path are rounded
*up* (away from zero) to a multiple of 1n, and decimal-SI / binary-SI values are
capped at 2^63-1. Conversions round up (``MilliValue``/``Value`` are ceilings)
and saturate at the int64 range.

Deliberate deviation: decimal exponents beyond +-1000 are rejected (upstream
accepts ``1e999999999``; a Python big integer of that size would hang the
scheduler). No real request or allocatable comes anywhere near.
"""

from __future__ import annotations

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
_MAX_EXPONENT: Final = 1000
_NANO: Final = Fraction(1, 10**9)

ALLOWED_QUANTITY: Final = (
    "a Kubernetes quantity is allowed: a decimal number with an optional suffix "
    "n, u, m, k, M, G, T, P, E, Ki, Mi, Gi, Ti, Pi, Ei or an exponent e<int> "
    '(e.g. "500m", "1.5", "2Gi", "1e3")'
)


class QuantityError(ValueError):
    """The text is not a Kubernetes quantity. ``str()`` says why."""

    def __init__(self, text: str, why: str) -> None:
        super().__init__(f'quantity "{text}" is invalid: {why}')
        self.text = text
        self.why = why


def _split(text: str) -> tuple[bool, str, str, str]:
    """``parseQuantityString``: sign, numerator digits, denominator digits, suffix."""
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
            return positive, "0", "", ""
        if text[pos] == "0":
            pos += 1
        else:
            break
    # numerator
    start = pos
    while True:
        if pos >= end:
            return positive, text[start:end] or "0", "", ""
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
                return positive, num, text[start:end], ""
            if text[pos] in _DIGITS:
                pos += 1
            else:
                break
        denom = text[start:pos]
    # suffix: letters, then optionally a signed integer (the exponent)
    suffix_start = pos
    i = pos
    while True:
        if i >= end:
            return positive, num, denom, text[suffix_start:end]
        if text[i] not in _SUFFIX_CHARS:
            pos = i
            break
        i += 1
    if pos < end and text[pos] in "+-":
        pos += 1
    i = pos
    while True:
        if i >= end:
            return positive, num, denom, text[suffix_start:end]
        if text[i] in _DIGITS:
            i += 1
        else:
            break
    raise QuantityError(text, "unexpected characters (format wrong)")


def parse_quantity(text: str) -> Fraction:
    """The exact value of a quantity string. Raises :class:`QuantityError`."""
    if not text:
        raise QuantityError(text, "empty")
    if text == "0":
        return Fraction(0)
    positive, num, denom, suffix = _split(text)

    binary = False
    if suffix in _DECIMAL_SI:
        exponent = _DECIMAL_SI[suffix]
        capped = True
    elif suffix in _BINARY_SI:
        exponent = _BINARY_SI[suffix]
        binary = True
        capped = True
    elif len(suffix) > 1 and suffix[0] in "eE" and _EXPONENT.fullmatch(suffix[1:]):
        exponent = int(suffix[1:])
        if not INT64_MIN <= exponent <= INT64_MAX:
            raise QuantityError(text, f'unknown suffix "{suffix}"')
        if abs(exponent) > _MAX_EXPONENT:
            raise QuantityError(text, f"exponent {exponent} is out of range")
        capped = False  # upstream caps only DecimalSI and BinarySI
    else:
        raise QuantityError(text, f'unknown suffix "{suffix}"')

    digits = int(num + denom)
    if binary:
        magnitude = Fraction(digits << exponent, 10 ** len(denom))
    else:
        scale = exponent - len(denom)
        magnitude = Fraction(digits * 10**scale) if scale >= 0 else Fraction(digits, 10**-scale)

    # Upstream's int64 fast path keeps the exact value and skips rounding and
    # the cap; the inf.Dec slow path rounds up to 1n and caps at 2^63-1.
    if binary:
        precision = 15 - len(num) - int(exponent * 3 / 10) - 1 if not denom else -1
        fast_scale = 0
        mantissa = 1 << exponent
    else:
        precision = 18 - (len(num) + len(denom))
        fast_scale = exponent - len(denom)
        mantissa = 1
    fast = precision >= 0 and fast_scale >= -9 and digits * mantissa <= INT64_MAX
    if not fast:
        if magnitude.denominator != 1:
            nanos = magnitude / _NANO
            magnitude = Fraction(-(-nanos.numerator // nanos.denominator)) * _NANO
        if capped and magnitude > INT64_MAX:
            magnitude = Fraction(INT64_MAX)
    return magnitude if positive else -magnitude


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
