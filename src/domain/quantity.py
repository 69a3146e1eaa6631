"""Kubernetes resource quantities ("10M", "1Gi", "500k") as integers, for the bandwidth annotations."""

import re
from decimal import Decimal, InvalidOperation

# k, M, G, T, P, E step by 1000; Ki, Mi, Gi, Ti, Pi, Ei by 1024.
_SUFFIXES = {
    "": Decimal(1),
    "m": Decimal("0.001"),
    **{prefix: Decimal(1000) ** power for power, prefix in enumerate("kMGTPE", start=1)},
    **{f"{prefix}i": Decimal(1024) ** power for power, prefix in enumerate("KMGTPE", start=1)},
}
_QUANTITY = re.compile(r"([0-9]+(?:\.[0-9]+)?)([a-zA-Z]*)")


def parse_quantity(text: str) -> int:
    """The value rounded up to a whole number; ValueError when it is not a quantity."""
    match = _QUANTITY.fullmatch(text.strip())
    if not match or match.group(2) not in _SUFFIXES:
        raise ValueError(f"{text!r} is not a quantity")
    try:
        value = Decimal(match.group(1)) * _SUFFIXES[match.group(2)]
    except InvalidOperation:
        raise ValueError(f"{text!r} is not a quantity") from None
    return int(value.to_integral_value(rounding="ROUND_CEILING"))
