"""The SignatureVerifier port: simple signing through GnuPG, sigstore through `cryptography`.

The sigstore verifier comes from a factory called at the first sigstore signature: `cryptography` costs the
idle daemon about 10 MiB, and most nodes never see such a signature."""

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from adapters.trust.gpg import GpgVerifier
from ports.signatures import SigstoreSignature, SigstoreTrust

if TYPE_CHECKING:
    from adapters.trust.sigstore import SigstoreVerifier


class OfflineSignatureVerifier:
    def __init__(self, gpg: GpgVerifier, sigstore: "Callable[[], SigstoreVerifier]") -> None:
        self._gpg = gpg
        self._sigstore = sigstore

    def verify_simple_signing(self, public_keys: Sequence[bytes], signature: bytes) -> bytes:
        return self._gpg.verify_simple_signing(public_keys, signature)

    def verify_sigstore(self, trust: SigstoreTrust, signature: SigstoreSignature) -> None:
        self._sigstore().verify_sigstore(trust, signature)
