"""Sigstore (cosign) signatures verified offline with `cryptography`, as containers/image does.

Key signatures: the base64 signature annotation over the payload, with one of the policy's public keys
(ECDSA with SHA-256, RSA PKCS#1 v1.5 with SHA-256, or Ed25519). With Rekor keys, the signature's Rekor
bundle (a SET) must also be signed by a Rekor key and record this signature, key and payload hash.
Keyless (Fulcio) signatures: the bundle is checked the same way against the certificate; the certificate
must chain to the policy's Fulcio CA at the time Rekor logged it, be for code signing, name the policy's
OIDC issuer and carry its e-mail subject; its key then verifies the signature. Nothing is fetched online.
"""

import base64
import binascii
import datetime
import hashlib
import json
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature as CryptoInvalidSignature
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.x509 import verification
from cryptography.x509.oid import ExtendedKeyUsageOID, ObjectIdentifier

from ports.signatures import (
    SIGSTORE_BUNDLE_ANNOTATION,
    SIGSTORE_CERTIFICATE_ANNOTATION,
    SIGSTORE_CHAIN_ANNOTATION,
    SIGSTORE_SIGNATURE_ANNOTATION,
    InvalidSignature,
    SigstoreSignature,
    SigstoreTrust,
)

# Fulcio's OIDC issuer extensions: v1 holds the raw string, v2 a DER UTF8String.
_OID_ISSUER_V1 = ObjectIdentifier("1.3.6.1.4.1.57264.1.1")
_OID_ISSUER_V2 = ObjectIdentifier("1.3.6.1.4.1.57264.1.8")

PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey


class SigstoreVerifier:
    def verify_sigstore(self, trust: SigstoreTrust, signature: SigstoreSignature) -> None:
        annotations = signature.annotations
        encoded = annotations.get(SIGSTORE_SIGNATURE_ANNOTATION)
        if encoded is None:
            raise InvalidSignature(f"missing {SIGSTORE_SIGNATURE_ANNOTATION} annotation")
        raw_signature = _b64(encoded, "signature")
        if trust.fulcio_ca:
            certificate_pem = annotations.get(SIGSTORE_CERTIFICATE_ANNOTATION, "").encode()
            if not certificate_pem:
                raise InvalidSignature(f"missing {SIGSTORE_CERTIFICATE_ANNOTATION} annotation")
            logged_at = _verify_rekor_set(
                trust.rekor_keys, annotations, certificate_pem, raw_signature, signature.payload
            )
            key = _verify_fulcio_certificate(
                trust, certificate_pem, annotations.get(SIGSTORE_CHAIN_ANNOTATION, "").encode(), logged_at
            )
            _verify_with(key, raw_signature, signature.payload)
            return
        keys = [_public_key(pem, f"public key {number}") for number, pem in enumerate(trust.public_keys, 1)]
        if not keys:
            raise InvalidSignature("no public key to verify with")
        if trust.rekor_keys:
            failures = []
            for key in keys:
                pem = key.public_bytes(
                    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
                )
                try:
                    _verify_rekor_set(trust.rekor_keys, annotations, pem, raw_signature, signature.payload)
                except InvalidSignature as err:
                    failures.append(str(err))
                    continue
                keys = [key]
                break
            else:
                raise InvalidSignature(f"no public key verified against the Rekor SET: {'; '.join(failures)}")
        failures = []
        for key in keys:
            try:
                _verify_with(key, raw_signature, signature.payload)
                return
            except InvalidSignature as err:
                failures.append(str(err))
        raise InvalidSignature(f"cryptographic signature verification failed: {'; '.join(failures)}")


def _b64(value: str, what: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as err:
        raise InvalidSignature(f"{what}: invalid base64: {err}") from None


def _public_key(pem: bytes, what: str) -> PublicKey:
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, UnsupportedAlgorithm) as err:
        raise InvalidSignature(f"{what}: not a PEM public key: {err}") from None
    if not isinstance(key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey):
        raise InvalidSignature(f"{what}: unsupported key type {type(key).__name__}")
    return key


def _verify_with(key: Any, raw_signature: bytes, payload: bytes) -> None:
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(raw_signature, payload, ec.ECDSA(hashes.SHA256()))
        elif isinstance(key, rsa.RSAPublicKey):
            key.verify(raw_signature, payload, padding.PKCS1v15(), hashes.SHA256())
        elif isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(raw_signature, payload)
        else:
            raise InvalidSignature(f"unsupported key type {type(key).__name__}")
    except CryptoInvalidSignature:
        raise InvalidSignature("signature does not match the payload and key") from None


def _verify_rekor_set(
    rekor_keys: tuple[bytes, ...],
    annotations: Any,
    key_or_certificate_pem: bytes,
    raw_signature: bytes,
    payload: bytes,
) -> datetime.datetime:
    """Check the Rekor bundle annotation; returns the time Rekor logged the entry."""
    if not rekor_keys:
        raise InvalidSignature("a Rekor public key is required to verify this signature")
    bundle_text = annotations.get(SIGSTORE_BUNDLE_ANNOTATION)
    if bundle_text is None:
        raise InvalidSignature(f"missing {SIGSTORE_BUNDLE_ANNOTATION} annotation")
    try:
        bundle = json.loads(bundle_text)
        if set(bundle) != {"SignedEntryTimestamp", "Payload"}:
            raise ValueError("expected exactly SignedEntryTimestamp and Payload")
        set_signature = _b64(bundle["SignedEntryTimestamp"], "SignedEntryTimestamp")
        set_payload = bundle["Payload"]
        if not isinstance(set_payload, dict) or set(set_payload) != {
            "body",
            "integratedTime",
            "logIndex",
            "logID",
        }:
            raise ValueError("Payload: expected exactly body, integratedTime, logIndex and logID")
        # RFC 8785 canonical form; for these strings and integers, sorted keys without spaces.
        canonical = json.dumps(
            set_payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode()
    except (ValueError, TypeError, AttributeError) as err:
        raise InvalidSignature(f"invalid Rekor bundle: {err}") from None
    keys = []
    for number, pem in enumerate(rekor_keys, 1):
        key = _public_key(pem, f"Rekor public key {number}")
        if not isinstance(key, ec.EllipticCurvePublicKey):
            raise InvalidSignature(f"Rekor public key {number} is not an ECDSA key")
        keys.append(key)
    if not any(_verifies(key, set_signature, canonical) for key in keys):
        raise InvalidSignature("cryptographic signature verification of the Rekor SET failed")
    try:
        body = json.loads(_b64(set_payload["body"], "Rekor body"))
        if body.get("apiVersion") != "0.0.1" or body.get("kind") != "hashedrekord":
            raise ValueError(f"unsupported entry {body.get('kind')!r} version {body.get('apiVersion')!r}")
        spec = body["spec"]
        logged_key = _b64(spec["signature"]["publicKey"]["content"], "Rekor publicKey")
        logged_signature = _b64(spec["signature"]["content"], "Rekor signature")
        algorithm, value = spec["data"]["hash"]["algorithm"], spec["data"]["hash"]["value"]
        integrated = int(set_payload["integratedTime"])
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise InvalidSignature(f"invalid Rekor entry: {err}") from None
    if _pem_der(logged_key) != _pem_der(key_or_certificate_pem):
        raise InvalidSignature("publicKey in Rekor SET does not match")
    if logged_signature != raw_signature:
        raise InvalidSignature("signature in Rekor SET does not match")
    if algorithm != "sha256" or value != hashlib.sha256(payload).hexdigest():
        raise InvalidSignature("payload in Rekor SET does not match")
    return datetime.datetime.fromtimestamp(integrated, datetime.UTC)


def _pem_der(pem: bytes) -> bytes:
    lines = pem.strip().splitlines()
    if len(lines) < 3 or not lines[0].startswith(b"-----BEGIN ") or not lines[-1].startswith(b"-----END "):
        raise InvalidSignature("expected exactly one PEM block")
    if any(line.startswith(b"-----") for line in lines[1:-1]):
        raise InvalidSignature("expected exactly one PEM block")
    return _b64(b"".join(lines[1:-1]).decode(), "PEM")


def _verifies(key: ec.EllipticCurvePublicKey, signature: bytes, data: bytes) -> bool:
    try:
        key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
        return True
    except CryptoInvalidSignature:
        return False


def _verify_fulcio_certificate(
    trust: SigstoreTrust, certificate_pem: bytes, chain_pem: bytes, at: datetime.datetime
) -> Any:
    try:
        leaves = x509.load_pem_x509_certificates(certificate_pem)
        roots = x509.load_pem_x509_certificates(trust.fulcio_ca)
        chain = x509.load_pem_x509_certificates(chain_pem) if chain_pem else []
    except ValueError as err:
        raise InvalidSignature(f"loading certificates: {err}") from None
    if len(leaves) != 1:
        raise InvalidSignature("expected exactly one certificate in the signature")
    leaf = leaves[0]
    # As containers/image: the chain's last certificate is its root, which must come from the policy.
    intermediates = chain[:-1]
    ee_policy = verification.ExtensionPolicy.permit_all().require_present(
        x509.ExtendedKeyUsage, verification.Criticality.AGNOSTIC, _code_signing
    )
    verifier = (
        verification.PolicyBuilder()
        .store(verification.Store(roots))
        .time(at)
        .extension_policies(ca_policy=verification.ExtensionPolicy.webpki_defaults_ca(), ee_policy=ee_policy)
        .build_client_verifier()
    )
    try:
        verifier.verify(leaf, intermediates)
    except verification.VerificationError as err:
        raise InvalidSignature(f"verifying the certificate failed: {err}") from None
    issuer = _oidc_issuer(leaf)
    if issuer != trust.oidc_issuer:
        raise InvalidSignature(f"unexpected Fulcio OIDC issuer {issuer!r}")
    try:
        emails = leaf.extensions.get_extension_for_class(
            x509.SubjectAlternativeName
        ).value.get_values_for_type(x509.RFC822Name)
    except x509.ExtensionNotFound:
        emails = []
    if trust.subject_email not in emails:
        raise InvalidSignature(f"required email {trust.subject_email!r} not found (got {emails})")
    return leaf.public_key()


def _code_signing(policy: Any, certificate: Any, extension: Any) -> None:
    if ExtendedKeyUsageOID.CODE_SIGNING not in list(extension):
        raise ValueError("the certificate is not for code signing")


def _oidc_issuer(certificate: x509.Certificate) -> str:
    found: dict[ObjectIdentifier, str] = {}
    for extension in certificate.extensions:
        if extension.oid not in (_OID_ISSUER_V1, _OID_ISSUER_V2):
            continue
        raw = extension.value.value if isinstance(extension.value, x509.UnrecognizedExtension) else b""
        if extension.oid == _OID_ISSUER_V1:
            found[extension.oid] = raw.decode(errors="replace")
        else:
            # DER UTF8String: tag 0x0c, then a short or long length.
            if len(raw) < 2 or raw[0] != 0x0C:
                raise InvalidSignature("invalid OIDC issuer v2 extension")
            length, offset = raw[1], 2
            if length & 0x80:
                count = length & 0x7F
                length, offset = int.from_bytes(raw[2 : 2 + count]), 2 + count
            if offset + length != len(raw):
                raise InvalidSignature("invalid OIDC issuer v2 extension")
            found[extension.oid] = raw[offset:].decode(errors="replace")
    values = set(found.values())
    if not values:
        raise InvalidSignature("the Fulcio certificate has no OIDC issuer extension")
    if len(values) > 1:
        raise InvalidSignature(f"inconsistent OIDC issuer extensions: {sorted(values)}")
    return values.pop()
