"""Kubernetes-style quantities: "500m" CPUs, "512Mi" bytes, as exact decimals.

Quantities are summed and multiplied by replica counts to check quotas, so they are parsed to
``Decimal``, never to floats: a float of 400 digits is infinity, zero replicas times infinity is
NaN, and every comparison with NaN is false, which let a quota be bypassed. The grammar bounds the
digits and the value, so every sum over a tenant stays finite and exact enough to compare.
"""

from __future__ import annotations

import re
from decimal import Decimal

_SUFFIX = {
    "m": Decimal("0.001"), "k": Decimal(10**3), "M": Decimal(10**6), "G": Decimal(10**9),
    "T": Decimal(10**12), "Ki": Decimal(2**10), "Mi": Decimal(2**20), "Gi": Decimal(2**30),
    "Ti": Decimal(2**40),
}  # fmt: skip

MAX_INTEGER_DIGITS = 18
MAX_FRACTION_DIGITS = 9
MAX_QUANTITY = Decimal(10**18)
"""The largest value of any quantity, suffix applied (about 888 PiB of memory)."""

_GRAMMAR = re.compile(
    rf"(\d{{1,{MAX_INTEGER_DIGITS}}}(?:\.\d{{1,{MAX_FRACTION_DIGITS}}})?)(Ki|Mi|Gi|Ti|m|k|M|G|T)?"
)
# What was accepted before the grammar had bounds; only used to read such records back.
_LOOSE = re.compile(r"(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|m|k|M|G|T)?")

HINT = "use e.g. '500m', '2', '512Mi' or '2Gi'"


def quantity_problem(text: str) -> str | None:
    """Why ``text`` is not an acceptable quantity, or None if it is."""
    return _parse(text)[1]


def parse_quantity(text: str) -> Decimal:
    """The exact value of a quantity; ValueError if it does not parse or is too large."""
    value, problem = _parse(text)
    if value is None:
        raise ValueError(problem)
    return value


def _parse(text: str) -> tuple[Decimal | None, str | None]:
    match = _GRAMMAR.fullmatch(text)
    if match is None:
        return None, (
            f"invalid quantity {text[:40]!r}: {HINT}, with at most {MAX_INTEGER_DIGITS} digits "
            f"before the point and {MAX_FRACTION_DIGITS} after"
        )
    value = _value(match)
    if value > MAX_QUANTITY:
        return None, f"quantity {text!r} is larger than the maximum of {MAX_QUANTITY:,}"
    return value, None


def read_quantity(stored: object) -> Decimal:
    """The value of a quantity read back from the store, in ``[0, MAX_QUANTITY]``; never raises.

    None or '' is 0. A value stored before the grammar had bounds, or one that does not parse at
    all, counts as the maximum: as a request it blocks further growth instead of hiding usage,
    and as a limit it allows what the quota check can still count.
    """
    if stored is None or stored == "":
        return Decimal(0)
    if isinstance(stored, int) and not isinstance(stored, bool):
        return min(MAX_QUANTITY, max(Decimal(0), Decimal(stored)))
    match = _LOOSE.fullmatch(stored) if isinstance(stored, str) and len(stored) < 4000 else None
    return MAX_QUANTITY if match is None else min(MAX_QUANTITY, _value(match))


def _value(match: re.Match[str]) -> Decimal:
    number, suffix = match.groups()
    return Decimal(number) * _SUFFIX[suffix] if suffix else Decimal(number)
