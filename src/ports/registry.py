"""Fetching images from container registries (the distribution v2 API on a real node).

The registry side resolves one source (a fully qualified reference, as registries.conf chose it in
`domain/image_sources.py`) to one platform's manifest and its config, and streams blobs with their digest
checked; which sources to try is the domain's decision, what to keep and how to unpack it is the image
store's business.
"""

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

from domain.registries_conf import PullSource


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

    def open_blob(self, image: ResolvedImage, blob: Descriptor, auth: RegistryAuth | None) -> Iterator[bytes]:
        """The blob's bytes in chunks; the digest and size are checked as they stream.

        A mismatch raises Internal after the last chunk at the latest, so a consumer must not keep anything
        before the iterator is exhausted without error.
        """
        ...
