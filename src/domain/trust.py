"""Image trust: decide, before anything of an image is stored, whether the signature policy allows the pull.

At each pull the policy is read again (the pod namespace's `<signature_policy_dir>/<namespace>.json` when it
exists, else the global file); a missing or broken file fails the pull naming the file, never "accept". The
scope that matches the pulled name picks the requirements (domain/trust_policy.py); each must pass:
- insecureAcceptAnything passes, reject fails, signedBaseLayer fails (containers/image never accepts it);
- signedBy needs one simple-signing signature (from the registries.d lookaside) that a policy key made, over
  a payload naming the manifest's digest and an identity `signedIdentity` accepts;
- sigstoreSigned the same with sigstore signatures (registry attachments, or the lookaside).
A failure raises SignatureValidationFailed with the requirement, the scope, the policy file and the reasons.
"""

import base64
import functools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import structlog

from domain.errors import FailedPrecondition, InvalidArgument, SignatureValidationFailed
from domain.image_reference import ImageReference, parse
from domain.registries_d import RegistriesD, parse_registries_d
from domain.trust_policy import (
    SIGSTORE_PAYLOAD_TYPE,
    SIMPLE_SIGNING_TYPE,
    KeySource,
    PayloadError,
    Policy,
    PolicyError,
    Requirement,
    SignedIdentity,
    check_claim,
    parse_policy,
    parse_signed_payload,
)
from ports.registry import Registry, RegistryAuth, ResolvedImage
from ports.signatures import (
    SIGSTORE_PAYLOAD_MEDIA_TYPE,
    InvalidSignature,
    LookasideSignatures,
    SignatureVerifier,
    SigstoreSignature,
    SigstoreTrust,
    TrustFileError,
    TrustFiles,
)

_log = structlog.get_logger("pycrio.trust")

# A Kubernetes namespace is a DNS label; anything else must not become a path.
_NAMESPACE_RE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
# Policies and keys are small; refuse to parse anything huge (a mistaken path to a disk image, ...).
MAX_TRUST_FILE_BYTES = 4 << 20

VERIFIED = "verified"
REJECTED = "rejected"
ACCEPTED_UNSIGNED = "accepted_without_signature"


class TrustObserver(Protocol):
    def image_pull_trust(self, outcome: str) -> None:
        """A pull's trust decision: VERIFIED, REJECTED or ACCEPTED_UNSIGNED. Must not raise."""
        ...


@dataclass(frozen=True)
class TrustSettings:
    signature_policy: str
    # "" disables per-namespace policies.
    signature_policy_dir: str
    registries_d: str


class _Signatures:
    """The image's signatures, fetched once per pull and only when a requirement asks for them."""

    def __init__(
        self, fetch_simple: Callable[[], list[bytes]], fetch_sigstore: Callable[[], list[SigstoreSignature]]
    ):
        self._fetch_simple, self._fetch_sigstore = fetch_simple, fetch_sigstore
        self._lookaside: list[bytes] | None = None
        self._attached: list[SigstoreSignature] | None = None

    def _blobs(self) -> list[bytes]:
        if self._lookaside is None:
            self._lookaside = self._fetch_simple()
        return self._lookaside

    def simple(self) -> list[bytes]:
        return [blob for kind, blob in map(_split_blob, self._blobs()) if kind == "simple-signing"]

    def sigstore(self) -> list[SigstoreSignature]:
        if self._attached is None:
            self._attached = self._fetch_sigstore()
        from_lookaside = [
            _sigstore_from_json(blob)
            for kind, blob in map(_split_blob, self._blobs())
            if kind == "sigstore-json"
        ]
        return [s for s in self._attached + from_lookaside if s.media_type == SIGSTORE_PAYLOAD_MEDIA_TYPE]


@dataclass(frozen=True)
class ImageTrust:
    settings: TrustSettings
    files: TrustFiles
    lookaside: LookasideSignatures
    registry: Registry
    verifier: SignatureVerifier
    observer: TrustObserver

    def check(self, image: ResolvedImage, auth: RegistryAuth | None, namespace: str = "") -> None:
        """Return when the policy allows `image`; raise SignatureValidationFailed (or FailedPrecondition for
        an unusable policy or key file) otherwise. Nothing is stored by this check."""
        try:
            self._check(image, auth, namespace)
        except FailedPrecondition:  # SignatureValidationFailed included: the node refused the image
            self.observer.image_pull_trust(REJECTED)
            raise

    def _check(self, image: ResolvedImage, auth: RegistryAuth | None, namespace: str) -> None:
        path, policy = self._policy(namespace)
        intended = intended_reference(image)
        digest = image.index_digest or image.manifest_digest
        scope, requirements = policy.requirements_for(intended)
        signatures = _Signatures(
            lambda: self._simple_signatures(image, auth, intended, digest),
            lambda: self._attachments(image, auth, intended),
        )
        signed = False
        for requirement in requirements:
            reason = self._evaluate(requirement, signatures, intended, digest)
            if reason:
                _log.warning(
                    "pull rejected by signature policy",
                    image=str(intended),
                    policy=path,
                    scope=scope,
                    requirement=requirement.describe(),
                    reason=reason,
                )
                raise SignatureValidationFailed(
                    f"SignatureValidationFailed: {intended}: requirement {requirement.describe()} of scope "
                    f"{scope} in {path}: {reason}"
                )
            signed = signed or requirement.type in ("signedBy", "sigstoreSigned")
        self.observer.image_pull_trust(VERIFIED if signed else ACCEPTED_UNSIGNED)

    # -- the policy ------------------------------------------------------------------------------------------

    def policy_path(self, namespace: str) -> str:
        """The policy file that decides for a pod namespace (the global one when the namespace has none)."""
        directory = self.settings.signature_policy_dir
        if namespace and directory:
            if not _NAMESPACE_RE.match(namespace):
                raise InvalidArgument(
                    f"sandbox_config.metadata.namespace {namespace!r} is not a valid namespace name"
                )
            candidate = f"{directory.rstrip('/')}/{namespace}.json"
            if self._read(candidate, "signature policy") is not None:
                return candidate
        return self.settings.signature_policy

    def _policy(self, namespace: str) -> tuple[str, Policy]:
        path = self.policy_path(namespace)
        text = self._read(path, "signature policy")
        if text is None:
            raise FailedPrecondition(
                f"signature policy {path}: no such file (a missing policy accepts nothing)"
            )
        try:
            return path, parse_policy(text)
        except PolicyError as err:
            raise FailedPrecondition(f"signature policy {path}: {err}") from None

    def _read(self, path: str, what: str) -> bytes | None:
        try:
            data = self.files.read(path)
        except TrustFileError as err:
            raise FailedPrecondition(f"{what} {err}") from None
        if data is not None and len(data) > MAX_TRUST_FILE_BYTES:
            raise FailedPrecondition(f"{what} {path}: larger than {MAX_TRUST_FILE_BYTES} bytes")
        return data

    def _key_material(self, keys: KeySource) -> list[bytes]:
        if keys.data:
            return list(keys.data)
        material = []
        for path in keys.paths:
            data = self._read(path, "key file")
            if data is None:
                raise FailedPrecondition(f"key file {path}: no such file")
            material.append(data)
        return material

    def _registries_d(self) -> RegistriesD:
        merged = RegistriesD()
        sources: dict[str, str] = {}
        try:
            for path, text in self.files.yaml_files(self.settings.registries_d):
                merged = merged.merged_with(parse_registries_d(text, path), path, sources)
        except TrustFileError as err:
            raise FailedPrecondition(f"registries.d {err}") from None
        except InvalidArgument as err:
            raise FailedPrecondition(f"registries.d: {err}") from None
        return merged

    def _simple_signatures(
        self, image: ResolvedImage, auth: RegistryAuth | None, intended: ImageReference, digest: str
    ) -> list[bytes]:
        """The registry's signature API when it has one (as containers/image), else the lookaside."""
        from_registry = self.registry.extension_signatures(image, auth)
        if from_registry is not None:
            return from_registry
        base = self._registries_d().lookaside_base(intended)
        return self.lookaside.fetch(base, digest)

    def _attachments(
        self, image: ResolvedImage, auth: RegistryAuth | None, intended: ImageReference
    ) -> list[SigstoreSignature]:
        if not self._registries_d().uses_sigstore_attachments(intended):
            return []
        return self.registry.signature_attachments(image, auth)

    # -- requirements ----------------------------------------------------------------------------------------

    def _evaluate(
        self, requirement: Requirement, signatures: _Signatures, intended: ImageReference, digest: str
    ) -> str:
        """Why the requirement fails, or "" when it passes."""
        kind = requirement.type
        if kind == "insecureAcceptAnything":
            return ""
        if kind == "reject":
            return "the policy rejects this image"
        if kind == "signedBaseLayer":
            return "signedBaseLayer is not implemented (containers/image never accepts it either)"
        assert requirement.keys is not None or requirement.fulcio is not None
        if kind == "signedBy":
            assert requirement.keys is not None
            keys = self._key_material(requirement.keys)
            blobs = signatures.simple()
            return _first_accepted(
                [functools.partial(self.verifier.verify_simple_signing, keys, blob) for blob in blobs],
                SIMPLE_SIGNING_TYPE,
                digest,
                intended,
                requirement.signed_identity,
            )
        trust = self._sigstore_trust(requirement)
        return _first_accepted(
            [
                functools.partial(_verified_sigstore, self.verifier, trust, sig)
                for sig in signatures.sigstore()
            ],
            SIGSTORE_PAYLOAD_TYPE,
            digest,
            intended,
            requirement.signed_identity,
        )

    def _sigstore_trust(self, requirement: Requirement) -> SigstoreTrust:
        rekor = tuple(self._key_material(requirement.rekor_keys)) if requirement.rekor_keys else ()
        if requirement.fulcio is not None:
            (ca,) = self._key_material(requirement.fulcio.ca)[:1]
            return SigstoreTrust(
                fulcio_ca=ca,
                oidc_issuer=requirement.fulcio.oidc_issuer,
                subject_email=requirement.fulcio.subject_email,
                rekor_keys=rekor,
            )
        assert requirement.keys is not None
        return SigstoreTrust(public_keys=tuple(self._key_material(requirement.keys)), rekor_keys=rekor)


def intended_reference(image: ResolvedImage) -> ImageReference:
    """The name the pull asked for, as the policy sees it: `name:tag`, or `name@digest` for a digest pull."""
    name = parse(image.name)
    if image.tag:
        return ImageReference(name.registry, name.path, image.tag, "")
    return ImageReference(name.registry, name.path, "", image.index_digest or image.manifest_digest)


def _verified_sigstore(
    verifier: SignatureVerifier, trust: SigstoreTrust, signature: SigstoreSignature
) -> bytes:
    verifier.verify_sigstore(trust, signature)
    return signature.payload


def _first_accepted(
    verifications: list[Callable[[], bytes]],
    payload_type: str,
    digest: str,
    intended: ImageReference,
    identity: SignedIdentity,
) -> str:
    """ "" when one signature verifies and vouches for the pull, else every signature's reason."""
    if not verifications:
        return "a signature was required, but no signature exists"
    reasons = []
    for number, verify in enumerate(verifications, 1):
        try:
            claim = parse_signed_payload(verify(), payload_type)
        except (InvalidSignature, PayloadError) as err:
            reasons.append(f"signature {number}: {err}")
            continue
        reason = check_claim(claim, digest, intended, identity)
        if not reason:
            return ""
        reasons.append(f"signature {number}: {reason}")
    return "; ".join(reasons)


def _split_blob(blob: bytes) -> tuple[str, bytes]:
    """A lookaside blob's format and content: raw OpenPGP is simple signing; others start `\\0<format>\\n`."""
    if blob[:1] != b"\0":
        return "simple-signing", blob
    head, newline, rest = blob[1:].partition(b"\n")
    if not newline:
        return "invalid", blob
    return head.decode("ascii", errors="replace"), rest


def _sigstore_from_json(blob: bytes) -> SigstoreSignature:
    """The `sigstore-json` lookaside format: {"mimeType", "payload" (base64), "annotations"}."""
    try:
        document = json.loads(blob)
        return SigstoreSignature(
            str(document["mimeType"]),
            base64.b64decode(document["payload"]),
            {str(k): str(v) for k, v in (document.get("annotations") or {}).items()},
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        return SigstoreSignature("invalid", b"")
