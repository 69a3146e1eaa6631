"""Kubernetes resource quantities ("10M", "1Gi", "500k") as integers, for the bandwidth annotations."""

import re
from decimal import Decimal, InvalidOperation

_SUFFIXES = {
    "": Decimal(1),
    "m": Decimal("0.001"),
    "k": Decimal(10) ** 3,
    "M": Decimal(10) ** 6,
    "G": Decimal(10) ** 9,
    "T": Decimal(10) ** 12,
    "P": Decimal(10) ** 15,
    "E": Decimal(10) ** 18,
    "Ki": Decimal(2) ** 10,
    "Mi": Decimal(2) ** 20,
    "Gi": Decimal(2) ** 30,
    "Ti": Decimal(2) ** 40,
    "Pi": Decimal(2) ** 50,
    "Ei": Decimal(2) ** 60,
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
