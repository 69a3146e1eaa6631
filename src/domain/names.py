"""Validation of names: the plain names used as state kinds and ids, and the Kubernetes object names and
uids of the CRI's metadata.

Metadata names travel far: into reserved names joined with '_', conmon's arguments, CNI_ARGS (a
`;`-separated list of `key=value`), log lines and paths. The kubelet only sends what Kubernetes' own
validation accepts (DNS labels and subdomains, UUIDs), so anything else is refused up front, with the length
checked before any pattern runs.
"""

import re

from domain.errors import InvalidArgument

_PLAIN_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,254}")
# Kubernetes names are lowercase DNS subdomains; critest and other CRI clients use capitals too, which are
# harmless. No '_' (the separator of reserved names), no ';', '=', ',', '/', spaces or control characters.
_KUBE_NAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?")
MAX_KUBE_NAME = 253


def check_plain_name(what: str, name: str) -> str:
    """Refuse names that could escape a directory or collide with temporary files."""
    if len(name) > 255 or not _PLAIN_NAME.fullmatch(name):
        raise InvalidArgument(f"{what} {name[:80]!r} is not a plain name")
    return name


def check_kube_name(field: str, value: str, max_length: int = MAX_KUBE_NAME) -> str:
    """A metadata name, namespace or uid as Kubernetes would accept it; InvalidArgument naming the field."""
    if not value:
        raise InvalidArgument(f"{field} is required")
    if len(value) > max_length:
        raise InvalidArgument(f"{field}: {len(value)} characters, at most {max_length} are allowed")
    if not _KUBE_NAME.fullmatch(value):
        raise InvalidArgument(
            f"{field} {value!r} is not a valid name: letters, digits, '-' and '.' only, "
            "starting and ending with a letter or digit"
        )
    return value
