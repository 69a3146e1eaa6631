"""containers-policy.json(5): which requirements an image must meet before it is pulled. Pure logic.

A policy is a `default` list of requirements and, per transport, lists of requirements for scopes. pycrio
pulls only through the `docker` transport, so only its scopes decide: the most specific scope that matches
the pulled reference wins (`registry/repo:tag` or `registry/repo@digest`, then the repository, then each
parent namespace, then the registry, then `*.`-wildcard hosts from the most to the least specific), then the
transport's `""` scope, then `default`. Every requirement of the chosen list must pass.

This module parses the policy with the same strictness as containers/image (unknown fields, empty lists
and contradictory key sources are errors), decides which scope applies, and answers whether the identity
inside a signature is acceptable (`signedIdentity`); verifying the cryptography is a port's job.
"""

import base64
import binascii
import json
import re
from dataclasses import dataclass, field
from typing import Any

from domain.errors import InvalidArgument
from domain.image_reference import ImageReference, parse

DOCKER_TRANSPORT = "docker"

# Signature payload types (the `critical.type` of simple signing and of sigstore payloads).
SIMPLE_SIGNING_TYPE = "atomic container signature"
SIGSTORE_PAYLOAD_TYPE = "cosign container image signature"

_LABEL = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"{_LABEL}(?:\.{_LABEL})*(?::[0-9]+)?"
_PATH = r"[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*"
_REMAP_PREFIX_RE = re.compile(rf"^{_DOMAIN}(?:/{_PATH})*$")


class PolicyError(InvalidArgument):
    """The policy file cannot be used; the message names the problem (the caller adds the file)."""


# -- signedIdentity ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SignedIdentity:
    """How the `docker-reference` inside a signature must relate to the pulled reference.

    kind is one of matchExact, matchRepoDigestOrExact, matchRepository, exactReference, exactRepository,
    remapIdentity; `reference` holds exactReference/exactRepository's value, `prefix`/`signed_prefix`
    remapIdentity's.
    """

    kind: str = "matchRepoDigestOrExact"
    reference: str = ""
    prefix: str = ""
    signed_prefix: str = ""

    def accepts(self, intended: ImageReference, signed: str) -> bool:
        """Whether a signature claiming `signed` may vouch for a pull of `intended`."""
        try:
            claimed = parse(signed)
        except InvalidArgument:
            return False
        # A signature must name an exact image, except for the kinds that compare repositories only.
        if not _exact(claimed) and self.kind not in ("matchRepository", "exactRepository"):
            return False
        if self.kind == "matchExact":
            return _exact(intended) and _exact(claimed) and str(claimed) == str(intended)
        if self.kind == "matchRepoDigestOrExact":
            return _repo_digest_or_exact(intended, claimed)
        if self.kind == "matchRepository":
            return claimed.name == intended.name
        if self.kind == "exactReference":
            wanted = parse(self.reference)
            return _exact(wanted) and _exact(claimed) and str(claimed) == str(wanted)
        if self.kind == "exactRepository":
            return claimed.name == parse(self.reference).name
        if self.kind == "remapIdentity":
            return _repo_digest_or_exact(self._remapped(intended), claimed)
        return False

    def _remapped(self, intended: ImageReference) -> ImageReference:
        name = intended.name
        if name != self.prefix and not name.startswith(self.prefix + "/"):
            return intended
        try:
            return parse(self.signed_prefix + str(intended)[len(self.prefix) :])
        except InvalidArgument:
            return intended

    def describe(self) -> str:
        if self.kind in ("exactReference", "exactRepository"):
            return f"{self.kind} {self.reference}"
        if self.kind == "remapIdentity":
            return f"remapIdentity {self.prefix} -> {self.signed_prefix}"
        return self.kind


def _exact(reference: ImageReference) -> bool:
    return bool(reference.tag or reference.digest)


def _repo_digest_or_exact(intended: ImageReference, claimed: ImageReference) -> bool:
    if not _exact(claimed):
        return False
    if intended.tag:
        return str(claimed) == str(intended)
    if intended.digest:
        # The digest itself is compared with the manifest separately; the name is what must match here.
        return claimed.name == intended.name
    return False


# -- requirements --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KeySource:
    """Key material a requirement names: files to read at evaluation time, or inline data."""

    paths: tuple[str, ...] = ()
    data: tuple[bytes, ...] = ()

    def describe(self) -> str:
        return ", ".join(self.paths) if self.paths else "inline keyData"


@dataclass(frozen=True)
class Fulcio:
    """Keyless signatures: certificates from this CA, for this OIDC issuer and e-mail subject."""

    ca: KeySource
    oidc_issuer: str
    subject_email: str


@dataclass(frozen=True)
class Requirement:
    """One policy requirement. `type` is insecureAcceptAnything, reject, signedBy, sigstoreSigned or
    signedBaseLayer; the other fields belong to the signature types."""

    type: str
    keys: KeySource | None = None
    signed_identity: SignedIdentity = field(default_factory=SignedIdentity)
    fulcio: Fulcio | None = None
    rekor_keys: KeySource | None = None

    def describe(self) -> str:
        if self.type == "signedBy":
            return f"signedBy GPGKeys ({self.keys.describe() if self.keys else ''})"
        if self.type == "sigstoreSigned":
            if self.fulcio is not None:
                return (
                    f"sigstoreSigned Fulcio ({self.fulcio.ca.describe()}, issuer {self.fulcio.oidc_issuer}, "
                    f"subject {self.fulcio.subject_email})"
                )
            return f"sigstoreSigned ({self.keys.describe() if self.keys else ''})"
        return self.type


@dataclass(frozen=True)
class Policy:
    default: tuple[Requirement, ...]
    # Scope -> requirements for the docker transport; "" is the transport's own default.
    docker: dict[str, tuple[Requirement, ...]] = field(default_factory=dict)

    def requirements_for(self, reference: ImageReference) -> tuple[str, tuple[Requirement, ...]]:
        """The scope that decides for `reference` (a pulled name with a tag or digest) and its list."""
        for scope in policy_scopes(reference):
            if scope in self.docker:
                return scope, self.docker[scope]
        if "" in self.docker:
            return 'transports.docker[""]', self.docker[""]
        return "default", self.default


def policy_scopes(reference: ImageReference) -> list[str]:
    """The scopes to look up for `reference`, most specific first (containers/image's order)."""
    scopes = [str(reference)]
    name = reference.name
    while True:
        scopes.append(name)
        slash = name.rfind("/")
        if slash == -1:
            break
        name = name[:slash]
    host = name.partition(":")[0]
    while "." in host:
        host = host[host.index(".") + 1 :]
        scopes.append(f"*.{host}")
    return scopes


def parse_policy(text: str | bytes) -> Policy:
    """A policy from its JSON text; PolicyError says what is wrong."""
    try:
        document = json.loads(text, object_pairs_hook=_no_duplicates)
    except (ValueError, UnicodeDecodeError) as err:
        raise PolicyError(f"invalid JSON: {err}") from None
    obj = _object(document, "policy", required={"default"}, optional={"transports"})
    default = _requirements(obj["default"], "default")
    docker: dict[str, tuple[Requirement, ...]] = {}
    transports = obj.get("transports", {})
    if transports is None:
        transports = {}
    if not isinstance(transports, dict):
        raise PolicyError("transports: expected an object")
    for transport, scopes in transports.items():
        if scopes is None:
            continue
        if not isinstance(scopes, dict):
            raise PolicyError(f"transports.{transport}: expected an object of scopes")
        parsed = {
            scope: _requirements(requirements, f"transports.{transport}[{scope!r}]")
            for scope, requirements in scopes.items()
        }
        if transport == DOCKER_TRANSPORT:
            for scope in parsed:
                _check_docker_scope(scope)
            docker = parsed
    return Policy(default, docker)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise PolicyError(f"duplicate key {key!r}")
        result[key] = value
    return result


def _check_docker_scope(scope: str) -> None:
    if scope.startswith("*.") and (any(c in scope for c in "/@:") or len(scope) == 2):
        raise PolicyError(f"transports.docker: invalid wildcard scope {scope!r}; use *.example.com")


def _object(
    value: Any, where: str, required: set[str], optional: frozenset[str] | set[str] = frozenset()
) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise PolicyError(f"{where}: expected an object")
    unknown = set(value) - required - optional
    if unknown:
        raise PolicyError(f"{where}: unknown field {', '.join(sorted(unknown))}")
    missing = required - set(value)
    if missing:
        raise PolicyError(f"{where}: missing field {', '.join(sorted(missing))}")
    return value


def _requirements(value: Any, where: str) -> tuple[Requirement, ...]:
    if not isinstance(value, list):
        raise PolicyError(f"{where}: expected a list of requirements")
    if not value:
        raise PolicyError(f"{where}: the list of requirements must not be empty")
    return tuple(_requirement(raw, f"{where}[{index}]") for index, raw in enumerate(value))


_REQUIREMENT_FIELDS: dict[str, set[str]] = {
    "insecureAcceptAnything": set(),
    "reject": set(),
    "signedBaseLayer": {"baseLayerIdentity"},
    "signedBy": {"keyType", "keyPath", "keyPaths", "keyData", "signedIdentity"},
    "sigstoreSigned": {
        "keyPath",
        "keyPaths",
        "keyData",
        "keyDatas",
        "fulcio",
        "pki",
        "rekorPublicKeyPath",
        "rekorPublicKeyPaths",
        "rekorPublicKeyData",
        "rekorPublicKeyDatas",
        "signedIdentity",
    },
}


def _requirement(raw: Any, where: str) -> Requirement:
    if not isinstance(raw, dict) or not isinstance(raw.get("type"), str):
        raise PolicyError(f"{where}: expected an object with a string field type")
    kind = raw["type"]
    if kind not in _REQUIREMENT_FIELDS:
        raise PolicyError(f"{where}: unknown requirement type {kind!r}")
    _object(raw, where, required={"type"}, optional=_REQUIREMENT_FIELDS[kind])
    if kind == "signedBy":
        if raw.get("keyType") != "GPGKeys":
            raise PolicyError(
                f'{where}: keyType {raw.get("keyType")!r} is not supported (only "GPGKeys" is implemented, '
                "as in containers/image)"
            )
        keys = _key_source(raw, where, "keyPath", "keyPaths", "keyData", None)
        if keys is None:
            raise PolicyError(f"{where}: exactly one of keyPath, keyPaths and keyData must be set")
        return Requirement(
            kind, keys=keys, signed_identity=_signed_identity(raw.get("signedIdentity"), where)
        )
    if kind == "sigstoreSigned":
        return _sigstore(raw, where)
    if kind == "signedBaseLayer":
        # Parsed so that the policy loads as in containers/image, which never accepts it either.
        _signed_identity(raw.get("baseLayerIdentity"), where)
    return Requirement(kind)


def _sigstore(raw: dict[str, Any], where: str) -> Requirement:
    keys = _key_source(raw, where, "keyPath", "keyPaths", "keyData", "keyDatas")
    rekor = _key_source(
        raw, where, "rekorPublicKeyPath", "rekorPublicKeyPaths", "rekorPublicKeyData", "rekorPublicKeyDatas"
    )
    fulcio = None
    if "fulcio" in raw:
        spec = _object(
            raw["fulcio"],
            f"{where}.fulcio",
            required={"oidcIssuer", "subjectEmail"},
            optional={"caPath", "caData"},
        )
        ca = _key_source(spec, f"{where}.fulcio", "caPath", None, "caData", None)
        if ca is None:
            raise PolicyError(f"{where}.fulcio: exactly one of caPath and caData must be set")
        issuer, email = spec["oidcIssuer"], spec["subjectEmail"]
        if not (isinstance(issuer, str) and issuer and isinstance(email, str) and email):
            raise PolicyError(f"{where}.fulcio: oidcIssuer and subjectEmail must be non-empty strings")
        fulcio = Fulcio(ca, issuer, email)
    if "pki" in raw:
        raise PolicyError(f"{where}: pki (X.509 certificate trust) is not supported by pycrio")
    if (keys is None) == (fulcio is None):
        raise PolicyError(
            f"{where}: exactly one of a public key (keyPath/keyPaths/keyData/keyDatas) and fulcio must be set"
        )
    if fulcio is not None and rekor is None:
        raise PolicyError(
            f"{where}: fulcio requires a Rekor public key (rekorPublicKeyPath or rekorPublicKeyData)"
        )
    return Requirement(
        "sigstoreSigned",
        keys=keys,
        fulcio=fulcio,
        rekor_keys=rekor,
        signed_identity=_signed_identity(raw.get("signedIdentity"), where),
    )


def _key_source(
    raw: dict[str, Any], where: str, path: str, paths: str | None, data: str, datas: str | None
) -> KeySource | None:
    present = [key for key in (path, paths, data, datas) if key is not None and key in raw]
    if not present:
        return None
    if len(present) > 1:
        raise PolicyError(f"{where}: only one of {', '.join(present)} may be set")
    key = present[0]
    value = raw[key]
    if key == path:
        if not isinstance(value, str) or not value:
            raise PolicyError(f"{where}.{key}: expected a path")
        return KeySource(paths=(value,))
    if key == paths:
        if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
            raise PolicyError(f"{where}.{key}: expected a non-empty list of paths")
        return KeySource(paths=tuple(value))
    if key == data:
        return KeySource(data=(_base64(value, f"{where}.{key}"),))
    if not isinstance(value, list) or not value:
        raise PolicyError(f"{where}.{key}: expected a non-empty list of base64 strings")
    return KeySource(data=tuple(_base64(v, f"{where}.{key}[{i}]") for i, v in enumerate(value)))


def _base64(value: Any, where: str) -> bytes:
    if not isinstance(value, str):
        raise PolicyError(f"{where}: expected a base64 string")
    try:
        decoded = base64.b64decode(value, validate=True)
    except binascii.Error as err:
        raise PolicyError(f"{where}: invalid base64: {err}") from None
    if not decoded:
        raise PolicyError(f"{where}: empty")
    return decoded


_IDENTITY_FIELDS = {
    "matchExact": set(),
    "matchRepoDigestOrExact": set(),
    "matchRepository": set(),
    "exactReference": {"dockerReference"},
    "exactRepository": {"dockerRepository"},
    "remapIdentity": {"prefix", "signedPrefix"},
}


def _signed_identity(raw: Any, where: str) -> SignedIdentity:
    if raw is None:
        return SignedIdentity()
    where = f"{where}.signedIdentity"
    if not isinstance(raw, dict) or raw.get("type") not in _IDENTITY_FIELDS:
        raise PolicyError(f"{where}: unknown type {raw.get('type') if isinstance(raw, dict) else raw!r}")
    kind = raw["type"]
    _object(raw, where, required={"type"} | _IDENTITY_FIELDS[kind])
    if kind == "exactReference":
        reference = _reference(raw["dockerReference"], f"{where}.dockerReference")
        if not _exact(reference):
            raise PolicyError(
                f"{where}.dockerReference {raw['dockerReference']!r} has neither a tag nor a digest"
            )
        return SignedIdentity(kind, reference=raw["dockerReference"])
    if kind == "exactRepository":
        _reference(raw["dockerRepository"], f"{where}.dockerRepository")
        return SignedIdentity(kind, reference=raw["dockerRepository"])
    if kind == "remapIdentity":
        for key in ("prefix", "signedPrefix"):
            value = raw[key]
            if not isinstance(value, str) or not _REMAP_PREFIX_RE.match(value):
                raise PolicyError(f"{where}.{key}: {value!r} is not a valid prefix (host[:port][/path])")
        return SignedIdentity(kind, prefix=raw["prefix"], signed_prefix=raw["signedPrefix"])
    return SignedIdentity(kind)


def _reference(value: Any, where: str) -> ImageReference:
    if not isinstance(value, str):
        raise PolicyError(f"{where}: expected a string")
    try:
        return parse(value)
    except InvalidArgument as err:
        raise PolicyError(f"{where}: {err}") from None


# -- signature payloads --------------------------------------------------------------------------------------


class PayloadError(Exception):
    """A signed payload that is not a valid container signature (or not of the expected kind)."""


@dataclass(frozen=True)
class SignedClaim:
    """What a verified signature says: the manifest digest and the docker reference it vouches for."""

    manifest_digest: str
    docker_reference: str


def parse_signed_payload(payload: bytes, expected_type: str) -> SignedClaim:
    """The claim of a simple-signing or sigstore payload, parsed as strictly as containers/image does."""
    try:
        document = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as err:
        raise PayloadError(f"payload is not JSON: {err}") from None

    def exact(value: Any, keys: set[str], what: str) -> dict[str, Any]:
        if not isinstance(value, dict) or set(value) != keys:
            raise PayloadError(f"{what}: expected exactly the fields {', '.join(sorted(keys))}")
        return value

    top = exact(document, {"critical", "optional"}, "payload")
    critical = exact(top["critical"], {"type", "image", "identity"}, "critical")
    if critical["type"] != expected_type:
        raise PayloadError(f"unrecognized signature type {critical['type']!r}")
    image = exact(critical["image"], {"docker-manifest-digest"}, "critical.image")
    identity = exact(critical["identity"], {"docker-reference"}, "critical.identity")
    digest, reference = image["docker-manifest-digest"], identity["docker-reference"]
    if not isinstance(digest, str) or not re.fullmatch(
        r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+", digest
    ):
        raise PayloadError(f"invalid docker-manifest-digest {digest!r}")
    if not isinstance(reference, str):
        raise PayloadError("docker-reference is not a string")
    optional = top["optional"]
    if optional is not None and not isinstance(optional, dict):
        raise PayloadError("optional: expected an object")
    return SignedClaim(digest, reference)


def check_claim(
    claim: SignedClaim,
    manifest_digest: str,
    intended: ImageReference,
    identity: SignedIdentity,
) -> str:
    """Why the claim does not vouch for this pull, or "" when it does."""
    if claim.manifest_digest != manifest_digest:
        return f"signature for digest {claim.manifest_digest} does not match the manifest {manifest_digest}"
    if not identity.accepts(intended, claim.docker_reference):
        return (
            f"signature for identity {claim.docker_reference!r} is not accepted for {intended} "
            f"(signedIdentity {identity.describe()})"
        )
    return ""
