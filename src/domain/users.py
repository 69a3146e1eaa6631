"""Who a container runs as: CRI run_as_* fields and the image USER resolved against the image's own files.

The caller reads /etc/passwd and /etc/group from the container's rootfs (absent files are empty strings);
this module only parses them, so it stays pure and testable. Rules follow containerd and cri-o:
- run_as_user (numeric) wins, then run_as_username, then the image USER ("name", "uid", "name:group", ...);
- run_as_group overrides the primary group and needs run_as_user or run_as_username;
- supplemental groups: the primary gid, then (policy Merge) the image's /etc/group memberships of the user
  name, then the CRI supplemental_groups. Strict skips the /etc/group memberships.
"""

import re
from dataclasses import dataclass

from domain.container_config import SecurityContext, SupplementalGroupsPolicy
from domain.errors import InvalidArgument

_MAX_ID = 2**32 - 1
# Numbers are ASCII digits only: Python's int() also reads "١٢" (Arabic-Indic) and str.isdigit() accepts
# "²", which no libc would take for an id.
_NUMBER = re.compile(r"[0-9]{1,10}")
# What useradd and the shadow tools accept (NAME_REGEX without the trailing '$' of machine accounts).
_USER_NAME = re.compile(r"[A-Za-z0-9_.][A-Za-z0-9_.-]{0,255}")


def _number(text: str) -> int | None:
    """An id written in ASCII digits within the kernel's range, or None."""
    if not _NUMBER.fullmatch(text):
        return None
    value = int(text)
    return value if value < _MAX_ID else None


@dataclass(frozen=True)
class PasswdEntry:
    name: str
    uid: int
    gid: int
    home: str


@dataclass(frozen=True)
class GroupEntry:
    name: str
    gid: int
    members: tuple[str, ...]


@dataclass(frozen=True)
class ResolvedUser:
    uid: int
    gid: int
    additional_gids: tuple[int, ...]
    username: str = ""  # "" when the uid has no passwd entry
    home: str = "/"


def parse_passwd(text: str) -> list[PasswdEntry]:
    """Entries of an /etc/passwd file; malformed lines are skipped as libc does."""
    entries = []
    for line in text.splitlines():
        fields = line.split(":")
        if len(fields) < 7 or line.startswith("#"):
            continue
        uid, gid = _number(fields[2]), _number(fields[3])
        if uid is None or gid is None:
            continue  # an id out of range ("-5", "99999999999") makes the line unusable
        entries.append(PasswdEntry(fields[0], uid, gid, fields[5] or "/"))
    return entries


def parse_group(text: str) -> list[GroupEntry]:
    entries = []
    for line in text.splitlines():
        fields = line.split(":")
        if len(fields) < 4 or line.startswith("#"):
            continue
        gid = _number(fields[2])
        if gid is None:
            continue
        entries.append(GroupEntry(fields[0], gid, tuple(m for m in fields[3].split(",") if m)))
    return entries


def _check_id(field: str, value: int) -> int:
    if not 0 <= value <= _MAX_ID:
        raise InvalidArgument(f"{field}: {value} is not a valid id")
    return value


def _lookup_user(name_or_id: str, passwd: list[PasswdEntry], field: str) -> PasswdEntry:
    """A user by name, or by number (a number without an entry gets gid 0 and no name)."""
    _check_name_or_number(field, name_or_id, "user")
    for entry in passwd:
        if entry.name == name_or_id:
            return entry
    if name_or_id.isascii() and name_or_id.isdigit():
        uid = _check_id(field, int(name_or_id))
        for entry in passwd:
            if entry.uid == uid:
                return entry
        return PasswdEntry("", uid, 0, "/")
    raise InvalidArgument(f"{field}: user {name_or_id!r} not found in the image's /etc/passwd")


def _check_name_or_number(field: str, text: str, what: str) -> None:
    """A plain name or a number of at most 10 ASCII digits (the longest uid), checked before any int()."""
    if text.isascii() and text.isdigit():
        if len(text) > 10:
            raise InvalidArgument(f"{field}: {what} id {text[:20]!r}... is not a valid id")
        return
    if not _USER_NAME.fullmatch(text):
        raise InvalidArgument(f"{field}: {text[:80]!r} is not a {what} name or a number")


def _lookup_group(name_or_id: str, groups: list[GroupEntry], field: str) -> int:
    _check_name_or_number(field, name_or_id, "group")
    for entry in groups:
        if entry.name == name_or_id:
            return entry.gid
    if name_or_id.isascii() and name_or_id.isdigit():
        return _check_id(field, int(name_or_id))
    raise InvalidArgument(f"{field}: group {name_or_id!r} not found in the image's /etc/group")


def resolve_user(
    security: SecurityContext, image_user: str, passwd_text: str, group_text: str
) -> ResolvedUser:
    passwd = parse_passwd(passwd_text)
    groups = parse_group(group_text)
    if security.run_as_user is not None and security.run_as_username:
        raise InvalidArgument("run_as_user and run_as_username: set at most one of them")
    if security.run_as_group is not None and security.run_as_user is None and not security.run_as_username:
        raise InvalidArgument("run_as_group: needs run_as_user or run_as_username")

    group_override: int | None = None
    if security.run_as_user is not None:
        entry = _lookup_user(str(_check_id("run_as_user", security.run_as_user)), passwd, "run_as_user")
    elif security.run_as_username:
        entry = _lookup_user(security.run_as_username, passwd, "run_as_username")
    else:
        user_part, _, group_part = (image_user or "0").partition(":")
        entry = _lookup_user(user_part or "0", passwd, "image USER")
        if group_part:
            group_override = _lookup_group(group_part, groups, "image USER")
    if security.run_as_group is not None:
        group_override = _check_id("run_as_group", security.run_as_group)
    gid = entry.gid if group_override is None else group_override

    additional = [gid]
    if security.supplemental_groups_policy is SupplementalGroupsPolicy.MERGE and entry.name:
        additional += [g.gid for g in groups if entry.name in g.members]
    for extra in security.supplemental_groups:
        additional.append(_check_id("supplemental_groups", extra))
    return ResolvedUser(entry.uid, gid, tuple(dict.fromkeys(additional)), entry.name, entry.home)
