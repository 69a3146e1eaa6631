"""In-memory trust ports: a SignatureVerifier with its own toy signature format, trust files in a dict,
and a lookaside store in a dict.

The fake verifier is a small real implementation: a "signature" binds a payload to a key by a SHA-256 over
both (no secrecy, none is needed in tests), so a wrong key, a tampered payload or a broken certificate chain
fail the same way they do with GnuPG and cosign. `FakeSigner` makes such signatures.
"""

import base64
import hashlib
import json
from collections.abc import Sequence

from domain.registries_d import signature_url
from domain.trust import ImageTrust, TrustObserver, TrustSettings
from ports.registry import Registry
from ports.signatures import (
    SIGSTORE_BUNDLE_ANNOTATION,
    SIGSTORE_CERTIFICATE_ANNOTATION,
    SIGSTORE_PAYLOAD_MEDIA_TYPE,
    SIGSTORE_SIGNATURE_ANNOTATION,
    InvalidSignature,
    SigstoreSignature,
    SigstoreTrust,
    TrustFileError,
)

_MAGIC = b"FAKE-SIMPLE-SIGNING\n"


def _bind(key: bytes, payload: bytes) -> str:
    return hashlib.sha256(hashlib.sha256(key).digest() + payload).hexdigest()


class FakeSigner:
    """Keys are arbitrary bytes; a public key is the same bytes (it is a fake)."""

    @staticmethod
    def simple(key: bytes, payload: bytes) -> bytes:
        header = json.dumps({"key": hashlib.sha256(key).hexdigest(), "mac": _bind(key, payload)}).encode()
        return _MAGIC + header + b"\n" + payload

    @staticmethod
    def sigstore(key: bytes, payload: bytes) -> SigstoreSignature:
        return SigstoreSignature(
            SIGSTORE_PAYLOAD_MEDIA_TYPE, payload, {SIGSTORE_SIGNATURE_ANNOTATION: _bind(key, payload)}
        )

    @staticmethod
    def logged(key: bytes, rekor: bytes, payload: bytes) -> SigstoreSignature:
        """A key signature with a Rekor bundle."""
        value = _bind(key, payload)
        return SigstoreSignature(
            SIGSTORE_PAYLOAD_MEDIA_TYPE,
            payload,
            {
                SIGSTORE_SIGNATURE_ANNOTATION: value,
                SIGSTORE_BUNDLE_ANNOTATION: _bind(rekor, key + value.encode()),
            },
        )

    @staticmethod
    def keyless(ca: bytes, issuer: str, email: str, rekor: bytes, payload: bytes) -> SigstoreSignature:
        ephemeral = hashlib.sha256(payload + b"ephemeral").digest()
        certificate = json.dumps(
            {"ca": hashlib.sha256(ca).hexdigest(), "issuer": issuer, "email": email, "key": ephemeral.hex()}
        )
        signature = _bind(ephemeral, payload)
        return SigstoreSignature(
            SIGSTORE_PAYLOAD_MEDIA_TYPE,
            payload,
            {
                SIGSTORE_SIGNATURE_ANNOTATION: signature,
                SIGSTORE_CERTIFICATE_ANNOTATION: certificate,
                SIGSTORE_BUNDLE_ANNOTATION: _bind(rekor, (certificate + signature).encode()),
            },
        )


class FakeSignatureVerifier:
    def verify_simple_signing(self, public_keys: Sequence[bytes], signature: bytes) -> bytes:
        if not public_keys:
            raise InvalidSignature("no public keys imported")
        if not signature.startswith(_MAGIC):
            raise InvalidSignature("not a signature")
        header, _, payload = signature[len(_MAGIC) :].partition(b"\n")
        try:
            fields = json.loads(header)
        except ValueError:
            raise InvalidSignature("malformed signature") from None
        key = next((k for k in public_keys if hashlib.sha256(k).hexdigest() == fields.get("key")), None)
        if key is None:
            raise InvalidSignature(f"signature by key {fields.get('key')} is not accepted")
        if _bind(key, payload) != fields.get("mac"):
            raise InvalidSignature("signature does not match the payload")
        return payload

    def verify_sigstore(self, trust: SigstoreTrust, signature: SigstoreSignature) -> None:
        annotations = signature.annotations
        value = annotations.get(SIGSTORE_SIGNATURE_ANNOTATION)
        if value is None:
            raise InvalidSignature(f"missing {SIGSTORE_SIGNATURE_ANNOTATION} annotation")
        if trust.fulcio_ca:
            certificate = annotations.get(SIGSTORE_CERTIFICATE_ANNOTATION, "")
            bundle = annotations.get(SIGSTORE_BUNDLE_ANNOTATION, "")
            if not any(_bind(rekor, (certificate + value).encode()) == bundle for rekor in trust.rekor_keys):
                raise InvalidSignature("cryptographic signature verification of the Rekor SET failed")
            try:
                fields = json.loads(certificate)
            except ValueError:
                raise InvalidSignature("malformed certificate") from None
            if fields.get("ca") != hashlib.sha256(trust.fulcio_ca).hexdigest():
                raise InvalidSignature("verifying the certificate failed: unknown issuer")
            if fields.get("issuer") != trust.oidc_issuer:
                raise InvalidSignature(f"unexpected Fulcio OIDC issuer {fields.get('issuer')!r}")
            if fields.get("email") != trust.subject_email:
                raise InvalidSignature(f"required email {trust.subject_email!r} not found")
            keys: Sequence[bytes] = [bytes.fromhex(fields["key"])]
        else:
            keys = trust.public_keys
            if trust.rekor_keys:
                bundle = annotations.get(SIGSTORE_BUNDLE_ANNOTATION, "")
                logged = [
                    key
                    for key in keys
                    for rekor in trust.rekor_keys
                    if _bind(rekor, key + value.encode()).encode() == bundle.encode()
                ]
                if not logged:
                    raise InvalidSignature("no public key verified against the Rekor SET")
                keys = logged[:1]
        if not any(_bind(key, signature.payload) == value for key in keys):
            raise InvalidSignature("cryptographic signature verification failed")


class InMemoryTrustFiles:
    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.unreadable: set[str] = set()

    def read(self, path: str) -> bytes | None:
        if path in self.unreadable:
            raise TrustFileError(f"{path}: Permission denied")
        return self.files.get(path)

    def yaml_files(self, directory: str) -> list[tuple[str, str]]:
        prefix = directory.rstrip("/") + "/"
        return [
            (path, self.files[path].decode())
            for path in sorted(self.files)
            if path.startswith(prefix) and path.endswith(".yaml") and "/" not in path[len(prefix) :]
        ]


class InMemoryLookaside:
    """Signatures by URL (`<base>@sha256=<hex>/signature-<n>`), as a lookaside server would serve them."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}

    def add(self, base_url: str, manifest_digest: str, signature: bytes) -> None:
        index = 1
        while signature_url(base_url, manifest_digest, index) in self.blobs:
            index += 1
        self.blobs[signature_url(base_url, manifest_digest, index)] = signature

    def fetch(self, base_url: str, manifest_digest: str) -> list[bytes]:
        found = []
        index = 1
        while (blob := self.blobs.get(signature_url(base_url, manifest_digest, index))) is not None:
            found.append(blob)
            index += 1
        return found


def encode_key(key: bytes) -> str:
    return base64.b64encode(key).decode()


POLICY_PATH = "/etc/containers/policy.json"
ACCEPT_ANYTHING = b'{"default": [{"type": "insecureAcceptAnything"}]}'


def trust_with(
    registry: Registry,
    policy: bytes = ACCEPT_ANYTHING,
    files: InMemoryTrustFiles | None = None,
    lookaside: InMemoryLookaside | None = None,
    observer: TrustObserver | None = None,
) -> ImageTrust:
    """An ImageTrust over in-memory files (the policy at POLICY_PATH) and the fake verifier."""
    files = files or InMemoryTrustFiles()
    files.files.setdefault(POLICY_PATH, policy)
    return ImageTrust(
        TrustSettings(POLICY_PATH, "/etc/pycrio/policies", "/etc/containers/registries.d"),
        files,
        lookaside or InMemoryLookaside(),
        registry,
        FakeSignatureVerifier(),
        observer or _Ignored(),
    )


class _Ignored:
    def image_pull_trust(self, outcome: str) -> None:
        pass
