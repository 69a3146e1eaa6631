"""containers-registries.d(5): where an image's signatures are found. Pure: parsing from YAML text.

Every `*.yaml` file of the directory may hold `default-docker` and `docker.<scope>` entries; a scope may be
defined once across all files. For a pulled image the most specific scope (the same lookup as the policy's
scopes) that sets `lookaside` (or its old name `sigstore`) gives the base URL of simple-signing signatures,
`default-docker` the fallback, and `file:///var/lib/containers/sigstore` the built-in default. Signatures
live at `<base>/<repository path>@sha256=<hex>/signature-<n>`, n counting from 1 until one is missing.
`use-sigstore-attachments` is looked up the same way (default false): when true, sigstore signatures are
read from the registry's `sha256-<hex>.sig` tag.
"""

import re
from dataclasses import dataclass, field
from typing import Any

from domain.errors import InvalidArgument
from domain.image_reference import ImageReference
from domain.trust_policy import policy_scopes

BUILTIN_LOOKASIDE = "file:///var/lib/containers/sigstore"
_NAMESPACE_KEYS = {
    "lookaside",
    "lookaside-staging",
    "sigstore",
    "sigstore-staging",
    "use-sigstore-attachments",
}
_DIGEST_RE = re.compile(r"^(sha256|sha512):([0-9a-f]+)$")


@dataclass(frozen=True)
class SignatureStorage:
    """One `docker` namespace (or `default-docker`) entry; staging URLs are for writers, not read here."""

    lookaside: str = ""
    use_sigstore_attachments: bool | None = None


@dataclass(frozen=True)
class RegistriesD:
    default_docker: SignatureStorage | None = None
    docker: dict[str, SignatureStorage] = field(default_factory=dict)

    def merged_with(self, other: "RegistriesD", origin: str, sources: dict[str, str]) -> "RegistriesD":
        """Add one file's entries; a scope (or default-docker) defined twice is an error naming both files."""
        default = self.default_docker
        if other.default_docker is not None:
            if default is not None:
                raise InvalidArgument(
                    f'"default-docker" defined both in {sources["default-docker"]} and {origin}'
                )
            default = other.default_docker
            sources["default-docker"] = origin
        docker = dict(self.docker)
        for scope, storage in other.docker.items():
            if scope in docker:
                raise InvalidArgument(
                    f'"docker" namespace {scope!r} defined both in {sources[scope]} and {origin}'
                )
            docker[scope] = storage
            sources[scope] = origin
        return RegistriesD(default, docker)

    def _entries(self, reference: ImageReference) -> list[SignatureStorage]:
        found = [self.docker[scope] for scope in policy_scopes(reference) if scope in self.docker]
        if self.default_docker is not None:
            found.append(self.default_docker)
        return found

    def lookaside_base(self, reference: ImageReference) -> str:
        """The lookaside URL of `reference`'s repository (without the digest part)."""
        base = next(
            (entry.lookaside for entry in self._entries(reference) if entry.lookaside), BUILTIN_LOOKASIDE
        )
        return base.rstrip("/") + "/" + reference.path

    def uses_sigstore_attachments(self, reference: ImageReference) -> bool:
        for entry in self._entries(reference):
            if entry.use_sigstore_attachments is not None:
                return entry.use_sigstore_attachments
        return False


def signature_url(base: str, manifest_digest: str, index: int) -> str:
    """The URL of the `index`-th (from 1) lookaside signature of a manifest."""
    match = _DIGEST_RE.match(manifest_digest)
    if match is None:
        raise InvalidArgument(f"invalid manifest digest {manifest_digest!r}")
    return f"{base}@{match.group(1)}={match.group(2)}/signature-{index}"


def parse_registries_d(text: str, origin: str) -> RegistriesD:
    """One registries.d YAML file; InvalidArgument names `origin` and the problem."""
    import yaml  # at the first registries.d file read, not at start-up

    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise InvalidArgument(f"{origin}: {err}") from None
    if document is None:
        return RegistriesD()
    if not isinstance(document, dict):
        raise InvalidArgument(f"{origin}: expected a mapping")
    unknown = set(document) - {"default-docker", "docker"}
    if unknown:
        raise InvalidArgument(f"{origin}: unknown keys {', '.join(sorted(map(str, unknown)))}")
    default = None
    if document.get("default-docker") is not None:
        default = _storage(document["default-docker"], f"{origin}: default-docker")
    docker = {}
    namespaces = document.get("docker") or {}
    if not isinstance(namespaces, dict):
        raise InvalidArgument(f"{origin}: docker: expected a mapping of scopes")
    for scope, raw in namespaces.items():
        docker[str(scope)] = _storage(raw or {}, f"{origin}: docker.{scope}")
    return RegistriesD(default, docker)


def _storage(raw: Any, where: str) -> SignatureStorage:
    if not isinstance(raw, dict):
        raise InvalidArgument(f"{where}: expected a mapping")
    unknown = set(raw) - _NAMESPACE_KEYS
    if unknown:
        raise InvalidArgument(f"{where}: unknown keys {', '.join(sorted(map(str, unknown)))}")
    lookaside = raw.get("lookaside") or raw.get("sigstore") or ""
    if not isinstance(lookaside, str):
        raise InvalidArgument(f"{where}: lookaside: expected a URL")
    if lookaside and not lookaside.startswith(("file://", "http://", "https://")):
        raise InvalidArgument(
            f"{where}: lookaside {lookaside!r}: only file://, http:// and https:// are supported"
        )
    attachments = raw.get("use-sigstore-attachments")
    if attachments is not None and not isinstance(attachments, bool):
        raise InvalidArgument(f"{where}: use-sigstore-attachments: expected true or false")
    return SignatureStorage(lookaside, attachments)
