"""containers-registries.conf(5) version 2: which sources to try for an image, in which order.

Given a name, the `[[registry]]` table with the longest matching `prefix` decides: `blocked` refuses the
pull, `location` rewrites the prefix, `insecure` allows plain http or unverified TLS, and its
`[[registry.mirror]]` tables are tried in order before the primary location. Short names resolve
through `[aliases]` first; otherwise they are tried on each `unqualified-search-registries` entry in
order, as `short-name-mode` allows (see `resolve_short_name`). Drop-in files override
`unqualified-search-registries` and `short-name-mode`, replace `[[registry]]` tables with the same prefix
and add or erase aliases. Pure: parsing from TOML text, no files.
"""

import re
import tomllib
from dataclasses import dataclass, field, replace
from typing import Any

from domain.errors import InvalidArgument
from domain.image_reference import (
    DEFAULT_REGISTRY,
    ImageReference,
    is_short_name,
    parse,
    qualify,
    split_repository,
)

_DOMAIN_RE = re.compile(
    r"^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*"
    r"(?::[0-9]+)?$"
)
_PULL_FROM_MIRROR = ("", "all", "digest-only", "tag-only")
# containers-registries.conf(5); unset means permissive (containers/image's default).
_SHORT_NAME_MODES = ("", "enforcing", "permissive", "disabled")


@dataclass(frozen=True)
class Endpoint:
    location: str
    insecure: bool = False
    pull_from_mirror: str = ""


@dataclass(frozen=True)
class RegistryTable:
    prefix: str
    location: str
    insecure: bool = False
    blocked: bool = False
    mirrors: tuple[Endpoint, ...] = ()
    mirror_by_digest_only: bool = False


@dataclass(frozen=True)
class PullSource:
    """One place to try: the rewritten reference and how to talk to its registry."""

    reference: ImageReference
    insecure: bool
    mirror: bool

    @property
    def description(self) -> str:
        return f"{'mirror ' if self.mirror else ''}{self.reference}"


@dataclass(frozen=True)
class Candidate:
    """One fully qualified name a user-written name may mean, with its sources (none when blocked)."""

    reference: ImageReference
    sources: tuple[PullSource, ...]
    blocked: bool


@dataclass(frozen=True)
class RegistriesConf:
    unqualified_search_registries: tuple[str, ...] | None = None
    registries: tuple[RegistryTable, ...] = field(default_factory=tuple)
    # Short name (no tag or digest) -> fully qualified repository; "" (only in drop-ins) erases an alias.
    aliases: dict[str, str] = field(default_factory=dict)
    # "" (unset: permissive), "enforcing", "permissive" or "disabled".
    short_name_mode: str = ""

    def merged_with(self, drop_in: "RegistriesConf") -> "RegistriesConf":
        tables = {table.prefix: table for table in self.registries}
        tables.update({table.prefix: table for table in drop_in.registries})
        search = drop_in.unqualified_search_registries
        aliases = {**self.aliases, **drop_in.aliases}
        return RegistriesConf(
            search if search is not None else self.unqualified_search_registries,
            tuple(tables[prefix] for prefix in sorted(tables)),
            {name: value for name, value in aliases.items() if value},
            drop_in.short_name_mode or self.short_name_mode,
        )

    def search_registries(self) -> tuple[str, ...]:
        """Where short names are looked up; docker.io when the configuration names none (as docker does)."""
        return self.unqualified_search_registries or (DEFAULT_REGISTRY,)

    def find(self, name: str) -> RegistryTable | None:
        """The table whose prefix is the longest match for `name` (a reference string)."""
        best: RegistryTable | None = None
        for table in self.registries:
            if _prefix_match(name, table.prefix) != -1 and (
                best is None or len(table.prefix) > len(best.prefix)
            ):
                best = table
        return best

    def candidates(self, user_name: str) -> list[Candidate]:
        """Every qualified reference `user_name` may mean, in the order to try, with their sources."""
        return [self._candidate(reference) for reference in self.resolve_short_name(user_name)]

    def resolve_short_name(self, user_name: str) -> list[ImageReference]:
        """The references a name may mean, in order (containers/image's short-name resolution).

        A fully qualified name means itself. A short name's alias decides alone. Otherwise each search
        registry is a candidate; with several, "enforcing" would prompt on a TTY, and a daemon has none,
        so an ambiguous short name is an error there (cri-o's message); "permissive" and "disabled" try
        them all in order.
        """
        if not is_short_name(user_name):
            return [parse(user_name).for_pull()]
        repository, suffix = split_repository(user_name)
        alias = self.aliases.get(repository)
        if alias:
            return [parse(alias + suffix).for_pull()]
        references = [qualify(user_name, registry).for_pull() for registry in self.search_registries()]
        if self.short_name_mode == "enforcing" and len(references) > 1:
            raise InvalidArgument(
                f"short name mode is enforcing, but image name {user_name} returns ambiguous list "
                f"({', '.join(map(str, references))}); use a fully qualified name or add an alias to "
                "registries.conf"
            )
        return references

    def _candidate(self, reference: ImageReference) -> Candidate:
        table = self.find(str(reference))
        if table is None:
            return Candidate(reference, (PullSource(reference, False, False),), False)
        if table.blocked:
            return Candidate(reference, (), True)
        digested = bool(reference.digest)
        sources = []
        for mirror in table.mirrors:
            if table.mirror_by_digest_only and not digested:
                continue
            if (mirror.pull_from_mirror == "digest-only" and not digested) or (
                mirror.pull_from_mirror == "tag-only" and digested
            ):
                continue
            sources.append(
                PullSource(_rewrite(reference, table.prefix, mirror.location), mirror.insecure, True)
            )
        sources.append(PullSource(_rewrite(reference, table.prefix, table.location), table.insecure, False))
        return Candidate(reference, tuple(sources), False)


def parse_registries_conf(text: str, origin: str, drop_in: bool = False) -> RegistriesConf:
    """One registries.conf file. Raises InvalidArgument naming `origin` and the problem."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise InvalidArgument(f"{origin}: {err}") from None
    try:
        return _from_document(document, drop_in)
    except InvalidArgument as err:
        raise InvalidArgument(f"{origin}: {err}") from None


def _from_document(document: dict[str, Any], drop_in: bool) -> RegistriesConf:
    if "registries" in document:
        if drop_in:
            raise InvalidArgument("registry must be in v2 format but is in v1")
        if any(key in document for key in ("registry", "unqualified-search-registries")):
            raise InvalidArgument("mixing sysregistry v1/v2 is not supported")
        return _from_v1(document["registries"])
    search = document.get("unqualified-search-registries")
    if search is not None:
        search = tuple(_search_entry(entry) for entry in _list_of(search, "unqualified-search-registries"))
    mode = document.get("short-name-mode", "")
    if mode not in _SHORT_NAME_MODES:
        raise InvalidArgument(f"invalid short-name mode {mode!r}")
    tables = [_table(raw) for raw in _list_of(document.get("registry", []), "registry")]
    _check_conflicts(tables)
    unique: dict[str, RegistryTable] = {}
    for table in tables:
        unique.setdefault(table.prefix, table)
    aliases = _aliases(document.get("aliases", {}))
    return RegistriesConf(search, tuple(unique[prefix] for prefix in sorted(unique)), aliases, mode)


def _aliases(raw: Any) -> dict[str, str]:
    """`[aliases]`: short name -> repository with its registry, neither with a tag or digest."""
    aliases = {}
    for name, value in _table_of(raw, "aliases").items():
        if not isinstance(value, str):
            raise InvalidArgument(f"alias {name!r}: expected a string")
        if not is_short_name(name) or split_repository(name)[1]:
            raise InvalidArgument(f"invalid short name {name!r}: no registry, tag or digest allowed")
        qualify(name, DEFAULT_REGISTRY)  # the grammar of a repository name
        if not value:
            aliases[name] = ""  # erases the alias an earlier file set
            continue
        if is_short_name(value) or split_repository(value)[1]:
            raise InvalidArgument(
                f"invalid alias {value!r}: must contain registry and repository, no tag or digest"
            )
        aliases[name] = parse(value).name
    return aliases


def _from_v1(raw: Any) -> RegistriesConf:
    """The deprecated `[registries.search|insecure|block]` format, converted as containers/image does."""
    registries = _table_of(raw, "registries")

    def names(kind: str) -> list[str]:
        table = _table_of(registries.get(kind, {}), f"registries.{kind}")
        return [_location(x) for x in _list_of(table.get("registries", []), f"registries.{kind}.registries")]

    tables: dict[str, RegistryTable] = {}
    for location in names("block"):
        tables[location] = replace(tables.get(location, RegistryTable(location, location)), blocked=True)
    for location in names("insecure"):
        tables[location] = replace(tables.get(location, RegistryTable(location, location)), insecure=True)
    search = names("search")
    return RegistriesConf(tuple(search) if search else None, tuple(tables[p] for p in sorted(tables)))


def _list_of(value: Any, key: str) -> list[Any]:
    if not isinstance(value, list):
        raise InvalidArgument(f"{key}: expected an array")
    return value


def _table_of(value: Any, key: str, known: set[str] | None = None) -> dict[str, Any]:
    """`value` as a table; with `known`, one that holds no other keys."""
    if not isinstance(value, dict):
        raise InvalidArgument(f"{key}: expected a table")
    unknown = set(value) - known if known is not None else set()
    if unknown:
        raise InvalidArgument(f"{key}: unknown keys {', '.join(sorted(unknown))}")
    return value


def _location(value: Any) -> str:
    if not isinstance(value, str):
        raise InvalidArgument(f"location {value!r} is not a string")
    trimmed = value.rstrip("/")
    if trimmed.startswith(("http://", "https://")):
        raise InvalidArgument(f"invalid location {value!r}: URI schemes are not supported")
    return trimmed


def _search_entry(value: Any) -> str:
    location = _location(value)
    if not _DOMAIN_RE.match(location):
        raise InvalidArgument(f"invalid unqualified-search-registries entry {location!r}")
    return location


def _flag(raw: dict[str, Any], key: str) -> bool:
    value = raw.get(key, False)
    if not isinstance(value, bool):
        raise InvalidArgument(f"{key}: expected true or false, got {value!r}")
    return value


_TABLE_KEYS = {
    "prefix",
    "location",
    "insecure",
    "blocked",
    "mirror",
    "mirror-by-digest-only",
    "pull-from-mirror",
}
_MIRROR_KEYS = {"location", "insecure", "pull-from-mirror"}


def _table(entry: Any) -> RegistryTable:
    raw = _table_of(entry, "[[registry]]", _TABLE_KEYS)
    location = _location(raw.get("location", ""))
    prefix = _location(raw.get("prefix", "")) or location
    if not prefix:
        raise InvalidArgument("invalid condition: both location and prefix are unset")
    if prefix.startswith("*."):
        if any(c in prefix for c in "/@:"):
            raise InvalidArgument(
                f"wildcarded prefix should be in the format *.example.com; {prefix!r} is not"
            )
    elif not location:
        raise InvalidArgument(
            f"prefix {prefix!r}: location is unset and prefix is not in the format *.example.com"
        )
    if raw.get("pull-from-mirror"):
        raise InvalidArgument(f"pull-from-mirror must not be set for a non-mirror registry {prefix!r}")
    by_digest = _flag(raw, "mirror-by-digest-only")
    mirrors = []
    for entry in _list_of(raw.get("mirror", []), "mirror"):
        mirror = _table_of(entry, "[[registry.mirror]]", _MIRROR_KEYS)
        mirror_location = _location(mirror.get("location", ""))
        if not mirror_location:
            raise InvalidArgument("invalid condition: mirror location is unset")
        pull_from = mirror.get("pull-from-mirror", "")
        if pull_from not in _PULL_FROM_MIRROR:
            raise InvalidArgument(
                f"unsupported pull-from-mirror value {pull_from!r} for mirror {mirror_location!r}"
            )
        if by_digest and pull_from:
            raise InvalidArgument(
                f"cannot set mirror-by-digest-only for {prefix!r} "
                f"and pull-from-mirror for {mirror_location!r}"
            )
        mirrors.append(Endpoint(mirror_location, _flag(mirror, "insecure"), pull_from))
    return RegistryTable(
        prefix, location, _flag(raw, "insecure"), _flag(raw, "blocked"), tuple(mirrors), by_digest
    )


def _check_conflicts(tables: list[RegistryTable]) -> None:
    seen: dict[str, RegistryTable] = {}
    for table in tables:
        key = table.location or table.prefix
        other = seen.setdefault(key, table)
        if other.insecure != table.insecure:
            raise InvalidArgument(
                f"registry {key!r} is defined multiple times with conflicting 'insecure' setting"
            )
        if other.blocked != table.blocked:
            raise InvalidArgument(
                f"registry {key!r} is defined multiple times with conflicting 'blocked' setting"
            )


def _prefix_match(name: str, prefix: str) -> int:
    """Length of `name` matched by `prefix`, or -1: the prefix must end at a `/`, `:` or `@` boundary."""
    if prefix.startswith("*."):
        index = name.find(prefix[1:])
        if index == -1 or "/" in name[:index]:
            return -1
        end = index + len(prefix) - 1
        return end if end == len(name) or name[end] in ":/@" else -1
    if name == prefix:
        return len(prefix)
    if name.startswith(prefix) and name[len(prefix)] in ":/@":
        return len(prefix)
    return -1


def _rewrite(reference: ImageReference, prefix: str, location: str) -> ImageReference:
    """`reference` with `prefix` replaced by `location` (a wildcard prefix with no location keeps it)."""
    text = str(reference)
    if not location:
        return reference
    matched = _prefix_match(text, prefix)
    if matched == -1:
        raise InvalidArgument(f"invalid prefix {prefix!r} for reference {text!r}")
    try:
        return parse(location + text[matched:])
    except InvalidArgument as err:
        raise InvalidArgument(f"rewriting {text} to {location}: {err}") from None
