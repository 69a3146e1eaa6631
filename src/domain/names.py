"""Validation of the plain names used as state kinds and ids."""

import re

from domain.errors import InvalidArgument

_PLAIN_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,254}")


def check_plain_name(what: str, name: str) -> str:
    """Refuse names that could escape a directory or collide with temporary files."""
    if not _PLAIN_NAME.fullmatch(name):
        raise InvalidArgument(f"{what} {name!r} is not a plain name")
    return name
