"""Kubernetes resource quantities ("10M", "1Gi", "500k") as integers, for the bandwidth annotations."""

import functools
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from decimal import Decimal

# k, M, G, T, P, E step by 1000; Ki, Mi, Gi, Ti, Pi, Ei by 1024.
_DECIMAL_PREFIXES = "kMGTPE"
_BINARY_PREFIXES = "KMGTPE"
_SUFFIXES = frozenset(["", "m", *_DECIMAL_PREFIXES, *(f"{prefix}i" for prefix in _BINARY_PREFIXES)])
_QUANTITY = re.compile(r"([0-9]+(?:\.[0-9]+)?)([a-zA-Z]*)")


@functools.cache
def _multipliers() -> "dict[str, Decimal]":
    # `decimal` is imported at the first pod with a bandwidth annotation, not at start-up (docs/bench.md,
    # "Idle cost").
    from decimal import Decimal

    return {
        "": Decimal(1),
        "m": Decimal("0.001"),
        **{prefix: Decimal(1000) ** power for power, prefix in enumerate(_DECIMAL_PREFIXES, start=1)},
        **{f"{prefix}i": Decimal(1024) ** power for power, prefix in enumerate(_BINARY_PREFIXES, start=1)},
    }


def parse_quantity(text: str) -> int:
    """The value rounded up to a whole number; ValueError when it is not a quantity."""
    from decimal import Decimal, InvalidOperation

    match = _QUANTITY.fullmatch(text.strip())
    if not match or match.group(2) not in _SUFFIXES:
        raise ValueError(f"{text!r} is not a quantity")
    try:
        value = Decimal(match.group(1)) * _multipliers()[match.group(2)]
    except InvalidOperation:
        raise ValueError(f"{text!r} is not a quantity") from None
    return int(value.to_integral_value(rounding="ROUND_CEILING"))
