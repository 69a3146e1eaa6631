"""The SignatureVerifier port: simple signing through GnuPG, sigstore through `cryptography`."""

from collections.abc import Sequence

from adapters.trust.gpg import GpgVerifier
from adapters.trust.sigstore import SigstoreVerifier
from ports.signatures import SigstoreSignature, SigstoreTrust


class OfflineSignatureVerifier:
    def __init__(self, gpg: GpgVerifier, sigstore: SigstoreVerifier) -> None:
        self._gpg = gpg
        self._sigstore = sigstore

    def verify_simple_signing(self, public_keys: Sequence[bytes], signature: bytes) -> bytes:
        return self._gpg.verify_simple_signing(public_keys, signature)

    def verify_sigstore(self, trust: SigstoreTrust, signature: SigstoreSignature) -> None:
        self._sigstore.verify_sigstore(trust, signature)
