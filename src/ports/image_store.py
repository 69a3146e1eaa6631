"""The records of pulled images: names, digests, layers and the config a container is created from.

An image's id is the hex of its config digest (`sha256:<id>`), as cri-o reports it: the same image pulled
from two registries or under two tags is one record with several names. Repo tags are fully qualified
(`docker.io/library/busybox:latest`), repo digests are `name@sha256:<manifest digest>`. A tag names at
most one image; the domain moves it when a newer image takes it.

The store answers from memory (ListImages and ImageStatus are hot paths) and persists every change.
"""

from dataclasses import dataclass, field
from typing import Any, Protocol

from domain.image_config import ImageConfig

__all__ = ["ImageConfig", "ImageRecord", "ImageStore"]


@dataclass(frozen=True)
class ImageRecord:
    id: str
    repo_tags: tuple[str, ...]
    repo_digests: tuple[str, ...]
    # Chain ids, bottom layer first.
    layers: tuple[str, ...]
    # Bytes the unpacked layers use.
    size: int
    config: ImageConfig
    # The whole image config document as pulled (for verbose ImageStatus).
    oci_config: dict[str, Any] = field(default_factory=dict)
    # Unix nanoseconds of the pull that created the record.
    pulled_at: int = 0


class ImageStore(Protocol):
    def put(self, image: ImageRecord) -> None:
        """Create or replace the record with this id."""
        ...

    def delete(self, image_id: str) -> None:
        """Remove the record; absent is not an error."""
        ...

    def get(self, image_id: str) -> ImageRecord | None: ...

    def by_id_prefix(self, prefix: str) -> list[ImageRecord]:
        """Every record whose id starts with `prefix` (the caller decides what ambiguity means)."""
        ...

    def by_tag(self, repo_tag: str) -> ImageRecord | None:
        """The record carrying this fully qualified `name:tag`."""
        ...

    def by_digest(self, repo_digest: str) -> ImageRecord | None:
        """The record carrying this `name@digest`."""
        ...

    def list_images(self) -> list[ImageRecord]: ...
