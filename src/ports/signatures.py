"""Image trust: reading the trust configuration, fetching signatures, and verifying their cryptography.

The policy decisions (which requirement applies, whether a signed claim names the right digest and identity)
are the domain's (domain/trust_policy.py, domain/trust.py); these ports do the I/O and the cryptography.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

# A lookaside server or attachment list may be broken or hostile: containers/image's limits.
MAX_SIGNATURES = 128
MAX_SIGNATURE_BYTES = 4 << 20

SIGSTORE_PAYLOAD_MEDIA_TYPE = "application/vnd.dev.cosign.simplesigning.v1+json"
SIGSTORE_SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
SIGSTORE_CERTIFICATE_ANNOTATION = "dev.sigstore.cosign/certificate"
SIGSTORE_CHAIN_ANNOTATION = "dev.sigstore.cosign/chain"
SIGSTORE_BUNDLE_ANNOTATION = "dev.sigstore.cosign/bundle"


class InvalidSignature(Exception):
    """A signature whose cryptography does not verify with the trusted keys; the message says why."""


@dataclass(frozen=True)
class SigstoreSignature:
    """One sigstore signature: the signed payload and the annotations that carry the signature itself
    (base64), and for keyless signatures the certificate, its chain and the Rekor bundle."""

    media_type: str
    payload: bytes
    annotations: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SigstoreTrust:
    """What a sigstoreSigned requirement trusts: public keys (PEM), or a Fulcio CA (PEM) with the OIDC
    issuer and e-mail the certificate must carry; Rekor public keys (PEM) when a log entry is required."""

    public_keys: tuple[bytes, ...] = ()
    fulcio_ca: bytes = b""
    oidc_issuer: str = ""
    subject_email: str = ""
    rekor_keys: tuple[bytes, ...] = ()


class SignatureVerifier(Protocol):
    def verify_simple_signing(self, public_keys: Sequence[bytes], signature: bytes) -> bytes:
        """The payload of an OpenPGP-signed simple-signing blob, if a key of `public_keys` (each an armored
        or binary OpenPGP key or keyring) made a good signature over it. Raises InvalidSignature otherwise,
        and for an unusable key set."""
        ...

    def verify_sigstore(self, trust: SigstoreTrust, signature: SigstoreSignature) -> None:
        """Returns if `signature.payload` is signed as `trust` requires (a trusted key; or a certificate
        from the Fulcio CA for the issuer and subject, logged in Rekor); raises InvalidSignature otherwise."""
        ...


class TrustFiles(Protocol):
    def read(self, path: str) -> bytes | None:
        """A configuration or key file's bytes; None when it does not exist. Raises TrustFileError when it
        exists but cannot be read (or is larger than a configuration file can be)."""
        ...

    def yaml_files(self, directory: str) -> list[tuple[str, str]]:
        """(path, text) of each `*.yaml` file of a directory, in lexical order; [] when it is absent."""
        ...


class TrustFileError(Exception):
    """A file of the trust configuration exists but cannot be read; the message names it."""


class LookasideSignatures(Protocol):
    def fetch(self, base_url: str, manifest_digest: str) -> list[bytes]:
        """The signature blobs stored at `<base_url>@<algo>=<hex>/signature-<n>` (file://, http://,
        https://) for n = 1, 2, ... until one is missing; at most MAX_SIGNATURES of MAX_SIGNATURE_BYTES.
        Raises Unavailable when the server cannot be read, InvalidArgument for an unsupported URL."""
        ...
