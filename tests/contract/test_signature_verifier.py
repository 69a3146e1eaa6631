"""The SignatureVerifier contract, against the in-memory fake and the real verifier (GnuPG for simple
signing, `cryptography` for sigstore key and keyless signatures), each with signatures made its own way."""

import base64
import dataclasses
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from adapters.trust.gpg import GpgVerifier
from adapters.trust.sigstore import SigstoreVerifier
from adapters.trust.verifier import OfflineSignatureVerifier
from domain.errors import FailedPrecondition
from ports.signatures import (
    SIGSTORE_BUNDLE_ANNOTATION,
    SIGSTORE_SIGNATURE_ANNOTATION,
    InvalidSignature,
    SignatureVerifier,
    SigstoreSignature,
    SigstoreTrust,
)
from tests.fakes.signatures import FakeSignatureVerifier, FakeSigner
from tests.fixtures.signing import EMAIL, ISSUER, FulcioCa, GpgKey, RekorLog, SigstoreKey, keyless_signature

PAYLOAD = b'{"critical":{"type":"atomic container signature"},"optional":{}}'


@dataclasses.dataclass
class Kit:
    verifier: SignatureVerifier
    # () -> (public key, sign(payload) -> signature blob)
    simple_key: Callable[[], tuple[bytes, Callable[[bytes], bytes]]]
    # (kind) -> (public key, sign(payload) -> signature)
    sigstore_key: Callable[[str], tuple[bytes, Callable[[bytes], SigstoreSignature]]]
    # () -> (CA, Rekor key, sign(payload, issuer, email) -> signature)
    keyless: Callable[[], tuple[bytes, bytes, Callable[[bytes, str, str], SigstoreSignature]]]
    tamper: Callable[[bytes], bytes]
    # () -> (public key, Rekor key, sign(payload) -> signature with its Rekor bundle)
    logged_key: Callable[[], tuple[bytes, bytes, Callable[[bytes], SigstoreSignature]]]


def _fake_kit() -> Kit:
    counter = iter(range(1_000_000))

    def simple() -> tuple[bytes, Callable[[bytes], bytes]]:
        key = f"gpg-key-{next(counter)}".encode()
        return key, lambda payload: FakeSigner.simple(key, payload)

    def sigstore(kind: str) -> tuple[bytes, Callable[[bytes], SigstoreSignature]]:
        key = f"{kind}-key-{next(counter)}".encode()
        return key, lambda payload: FakeSigner.sigstore(key, payload)

    def keyless() -> tuple[bytes, bytes, Callable[[bytes, str, str], SigstoreSignature]]:
        ca, rekor = f"ca-{next(counter)}".encode(), f"rekor-{next(counter)}".encode()
        return ca, rekor, lambda payload, issuer, email: FakeSigner.keyless(ca, issuer, email, rekor, payload)

    def logged() -> tuple[bytes, bytes, Callable[[bytes], SigstoreSignature]]:
        key, rekor = f"logged-{next(counter)}".encode(), f"rekor-{next(counter)}".encode()
        return key, rekor, lambda payload: FakeSigner.logged(key, rekor, payload)

    def tamper(blob: bytes) -> bytes:
        return blob[:-1] + bytes([blob[-1] ^ 1])

    return Kit(FakeSignatureVerifier(), simple, sigstore, keyless, tamper, logged)


def _real_kit(tmp: Path, keys: list[GpgKey]) -> Kit:
    def simple() -> tuple[bytes, Callable[[bytes], bytes]]:
        key = GpgKey(tmp / f"gnupg-{len(keys)}", f"signer {len(keys)}")
        keys.append(key)
        return key.public, key.sign_payload

    def sigstore(kind: str) -> tuple[bytes, Callable[[bytes], SigstoreSignature]]:
        key = SigstoreKey(kind)
        return key.public_pem, key.sign

    def keyless() -> tuple[bytes, bytes, Callable[[bytes, str, str], SigstoreSignature]]:
        ca, rekor = FulcioCa.create(), RekorLog()
        return (
            ca.pem,
            rekor.public_pem,
            lambda payload, issuer, email: keyless_signature(ca, rekor, payload, email=email, issuer=issuer),
        )

    def tamper(blob: bytes) -> bytes:
        middle = len(blob) // 2
        return blob[:middle] + bytes([blob[middle] ^ 0x20]) + blob[middle + 1 :]

    def logged() -> tuple[bytes, bytes, Callable[[bytes], SigstoreSignature]]:
        key, rekor = SigstoreKey(), RekorLog()

        def sign(payload: bytes) -> SigstoreSignature:
            signature = key.sign(payload)
            raw = base64.b64decode(signature.annotations[SIGSTORE_SIGNATURE_ANNOTATION])
            bundle = rekor.bundle(raw, key.public_pem, payload, int(time.time()))
            return dataclasses.replace(
                signature, annotations={**signature.annotations, SIGSTORE_BUNDLE_ANNOTATION: bundle}
            )

        return key.public_pem, rekor.public_pem, sign

    verifier = OfflineSignatureVerifier(GpgVerifier(timeout=60), SigstoreVerifier)
    return Kit(verifier, simple, sigstore, keyless, tamper, logged)


@pytest.fixture(params=["fake", "real"])
def kit(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Kit]:
    if request.param == "fake":
        yield _fake_kit()
        return
    keys: list[GpgKey] = []
    try:
        yield _real_kit(tmp_path, keys)
    finally:
        for key in keys:
            key.close()


# -- simple signing ----------------------------------------------------------------------------------------


def test_a_good_simple_signature_yields_its_payload(kit: Kit) -> None:
    public, sign = kit.simple_key()
    assert kit.verifier.verify_simple_signing([public], sign(PAYLOAD)) == PAYLOAD


def test_one_trusted_key_among_several_is_enough(kit: Kit) -> None:
    other, _ = kit.simple_key()
    public, sign = kit.simple_key()
    assert kit.verifier.verify_simple_signing([other, public], sign(PAYLOAD)) == PAYLOAD


def test_a_signature_by_an_untrusted_key_is_refused(kit: Kit) -> None:
    _, sign = kit.simple_key()
    other, _ = kit.simple_key()
    with pytest.raises(InvalidSignature):
        kit.verifier.verify_simple_signing([other], sign(PAYLOAD))


def test_a_tampered_simple_signature_is_refused(kit: Kit) -> None:
    public, sign = kit.simple_key()
    with pytest.raises(InvalidSignature):
        kit.verifier.verify_simple_signing([public], kit.tamper(sign(PAYLOAD)))


def test_garbage_and_no_keys_are_refused(kit: Kit) -> None:
    public, sign = kit.simple_key()
    with pytest.raises(InvalidSignature):
        kit.verifier.verify_simple_signing([public], b"not a signature at all")
    with pytest.raises(InvalidSignature):
        kit.verifier.verify_simple_signing([], sign(PAYLOAD))
    with pytest.raises(InvalidSignature):
        kit.verifier.verify_simple_signing([b"not a key"], sign(PAYLOAD))


# -- sigstore with keys ------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["ecdsa", "rsa", "ed25519"])
def test_a_good_sigstore_key_signature_verifies(kit: Kit, kind: str) -> None:
    public, sign = kit.sigstore_key(kind)
    kit.verifier.verify_sigstore(SigstoreTrust(public_keys=(public,)), sign(PAYLOAD))


def test_a_sigstore_signature_by_another_key_is_refused(kit: Kit) -> None:
    _, sign = kit.sigstore_key("ecdsa")
    other, _ = kit.sigstore_key("ecdsa")
    with pytest.raises(InvalidSignature):
        kit.verifier.verify_sigstore(SigstoreTrust(public_keys=(other,)), sign(PAYLOAD))


def test_a_tampered_sigstore_payload_is_refused(kit: Kit) -> None:
    public, sign = kit.sigstore_key("ecdsa")
    signature = sign(PAYLOAD)
    tampered = dataclasses.replace(signature, payload=PAYLOAD.replace(b"atomic", b"atomiC"))
    with pytest.raises(InvalidSignature):
        kit.verifier.verify_sigstore(SigstoreTrust(public_keys=(public,)), tampered)


def test_a_sigstore_signature_without_its_annotation_is_refused(kit: Kit) -> None:
    public, sign = kit.sigstore_key("ecdsa")
    signature = sign(PAYLOAD)
    bare = dataclasses.replace(
        signature,
        annotations={k: v for k, v in signature.annotations.items() if k != SIGSTORE_SIGNATURE_ANNOTATION},
    )
    with pytest.raises(InvalidSignature):
        kit.verifier.verify_sigstore(SigstoreTrust(public_keys=(public,)), bare)


def test_a_key_signature_logged_in_rekor_verifies_and_needs_its_bundle(kit: Kit) -> None:
    public, rekor, sign = kit.logged_key()
    _, other_rekor, _ = kit.logged_key()
    signature = sign(PAYLOAD)
    kit.verifier.verify_sigstore(SigstoreTrust(public_keys=(public,), rekor_keys=(rekor,)), signature)
    with pytest.raises(InvalidSignature):
        kit.verifier.verify_sigstore(
            SigstoreTrust(public_keys=(public,), rekor_keys=(other_rekor,)), signature
        )
    bare = dataclasses.replace(
        signature,
        annotations={k: v for k, v in signature.annotations.items() if k != SIGSTORE_BUNDLE_ANNOTATION},
    )
    with pytest.raises(InvalidSignature):
        kit.verifier.verify_sigstore(SigstoreTrust(public_keys=(public,), rekor_keys=(rekor,)), bare)


# -- keyless (Fulcio + Rekor), offline ----------------------------------------------------------------------


def test_a_keyless_signature_from_the_policy_ca_verifies(kit: Kit) -> None:
    ca, rekor, sign = kit.keyless()
    trust = SigstoreTrust(fulcio_ca=ca, oidc_issuer=ISSUER, subject_email=EMAIL, rekor_keys=(rekor,))
    kit.verifier.verify_sigstore(trust, sign(PAYLOAD, ISSUER, EMAIL))


@pytest.mark.parametrize(
    "change",
    ["another CA", "another Rekor", "another issuer", "another subject", "tampered payload"],
)
def test_a_keyless_signature_that_does_not_fit_the_policy_is_refused(kit: Kit, change: str) -> None:
    ca, rekor, sign = kit.keyless()
    other_ca, other_rekor, _ = kit.keyless()
    trust = SigstoreTrust(fulcio_ca=ca, oidc_issuer=ISSUER, subject_email=EMAIL, rekor_keys=(rekor,))
    signature = sign(PAYLOAD, ISSUER, EMAIL)
    if change == "another CA":
        trust = dataclasses.replace(trust, fulcio_ca=other_ca)
    elif change == "another Rekor":
        trust = dataclasses.replace(trust, rekor_keys=(other_rekor,))
    elif change == "another issuer":
        signature = sign(PAYLOAD, "https://elsewhere.test", EMAIL)
    elif change == "another subject":
        signature = sign(PAYLOAD, ISSUER, "intruder@example.test")
    else:
        signature = dataclasses.replace(signature, payload=PAYLOAD + b" ")
    with pytest.raises(InvalidSignature):
        kit.verifier.verify_sigstore(trust, signature)


def test_a_node_without_gpg_fails_clearly(tmp_path: Path) -> None:
    verifier = GpgVerifier(gpg=str(tmp_path / "no-gpg"))
    with pytest.raises(FailedPrecondition, match=r"cannot run .*no-gpg"):
        verifier.verify_simple_signing([b"key"], b"signature")
