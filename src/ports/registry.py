"""Fetching images from container registries (the distribution v2 API on a real node).

The registry side resolves one source (a fully qualified reference, as registries.conf chose it in
`domain/image_sources.py`) to one platform's manifest and its config, and streams blobs with their digest
checked; which sources to try is the domain's decision, what to keep and how to unpack it is the image
store's business.
"""

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

from domain.cancellation import Cancellation
from domain.registries_conf import PullSource
from ports.signatures import SigstoreSignature


@dataclass(frozen=True)
class RegistryAuth:
    """Credentials from the CRI AuthConfig; any may be empty."""

    username: str = ""
    password: str = ""
    # base64 of "username:password"
    auth: str = ""
    identity_token: str = ""
    registry_token: str = ""
    server_address: str = ""


@dataclass(frozen=True)
class Platform:
    os: str = "linux"
    architecture: str = "amd64"
    variant: str = ""


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    annotations: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ResolvedImage:
    """One platform's image as a registry serves it.

    `name` is fully qualified without tag or digest (`docker.io/library/busybox`); `tag` is empty when the
    request named a digest. `source` says where blobs come from (a mirror or the origin) and `insecure`
    how to talk to it, for open_blob.
    `manifest_digest` is the digest of `manifest` (this platform's image manifest); when the reference led
    to an index or manifest list, `index_digest` is the index's digest, which is what the name points at.
    """

    name: str
    tag: str
    manifest_digest: str
    manifest_media_type: str
    manifest: bytes
    config_digest: str
    config: bytes
    layers: list[Descriptor]
    source: str
    index_digest: str = ""
    insecure: bool = False

    @property
    def repo_digest(self) -> str:
        """`name@digest` of what the registry serves under the name (the index for multi-platform images)."""
        return f"{self.name}@{self.index_digest or self.manifest_digest}"


class Registry(Protocol):
    def resolve(self, source: PullSource, auth: RegistryAuth | None, platform: Platform) -> ResolvedImage:
        """Resolve exactly this source (no registries.conf here) to one platform's manifest and config,
        named as the source names it.

        Raises NotFound when the source does not have it, InvalidArgument for refused credentials,
        Internal for broken content (digest mismatch, malformed manifest), Unavailable when the source
        could not be reached.
        """
        ...

    def open_blob(
        self,
        image: ResolvedImage,
        blob: Descriptor,
        auth: RegistryAuth | None,
        cancel: Cancellation | None = None,
    ) -> Iterator[bytes]:
        """The blob's bytes in chunks; the digest and size are checked as they stream.

        A mismatch raises Internal after the last chunk at the latest, so a consumer must not keep anything
        before the iterator is exhausted without error. Once `cancel` is cancelled (from any thread) the
        iterator raises its reason at the latest when the read under way returns, and a read blocked on the
        registry is made to return at once: a stuck download never outlives its pull.
        """
        ...

    def extension_signatures(self, image: ResolvedImage, auth: RegistryAuth | None) -> list[bytes] | None:
        """Simple-signing signatures from the registry's own signature API (the `X-Registry-Supports-
        Signatures` extension of OpenShift's registry) for the digest the name points at; None when the
        registry has no such API (then the registries.d lookaside is used). At most MAX_SIGNATURES of
        MAX_SIGNATURE_BYTES each."""
        ...

    def signature_attachments(
        self, image: ResolvedImage, auth: RegistryAuth | None
    ) -> list[SigstoreSignature]:
        """The sigstore attachments of the image the name points at (`sha256-<hex>.sig` tag of the index or
        manifest digest, on the source that resolved it): each layer's media type, content and annotations.

        [] when the tag does not exist. At most MAX_SIGNATURES layers of MAX_SIGNATURE_BYTES each, with their
        digests verified; raises like resolve otherwise.
        """
        ...
