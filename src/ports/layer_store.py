"""Where image layers are unpacked and how a container's root file system is built from them.

A layer is keyed by its chain id (the OCI image-spec's identity of a layer *and everything below it*), so one
unpacked copy serves every image that shares the same stack. Layers are kept alive by holders: an image holds
each layer of its stack, a container holds the layers of the image it was created from. A layer whose last
holder lets go is deleted. Holders are names (`image:<id>`, `container:<id>`), not counts, so holding twice
or releasing twice is harmless and a retry after a crash cannot skew anything.

Container root file systems: `create_rootfs(container_id, layers, image_id)` makes a writable upper dir for
the container on top of the given layer stack, holds those layers for the container, mounts the overlay and
returns the merged directory to hand to the OCI runtime as `root.path`. It is idempotent: called again for
the same container (a kubelet retry, or after a reboot wiped the mount) it remounts if needed and returns the
same path. `unmount_rootfs` drops the mount but keeps the upper dir (a stopped container keeps its changes);
`remove_rootfs` unmounts, deletes the upper dir and releases the layers. Both are idempotent.

For a pod in a user namespace the layers are mounted idmapped into it (`LayerIdmap`): the files of the
shared, unchanged layers show their image owners inside the namespace, with nothing copied or chowned.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class LayerIdmap:
    """Idmap a rootfs's layers into the user namespace pinned at `userns_path`; its root (host ids
    `root_uid`, `root_gid`) owns the writable layer's top directory."""

    userns_path: str
    root_uid: int
    root_gid: int


@dataclass(frozen=True)
class Layer:
    """One unpacked layer. Digests are `sha256:<hex>`."""

    chain_id: str
    diff_id: str
    # Chain id of the layer below, "" for a base layer.
    parent: str
    # Disk usage of the unpacked layer (like du: allocated blocks, hard links counted once).
    size: int
    inodes: int
    holders: frozenset[str]


@dataclass(frozen=True)
class Rootfs:
    container_id: str
    image_id: str
    # Bottom layer first.
    layers: tuple[str, ...]
    # The merged directory (the container's `/`).
    path: Path
    mounted: bool


@dataclass(frozen=True)
class FilesystemUsage:
    """Disk usage of one part of the store, and the directory it lives in (the CRI's fs_id mountpoint)."""

    mountpoint: Path
    used_bytes: int
    inodes_used: int


@dataclass(frozen=True)
class StorageUsage:
    image_layers: FilesystemUsage
    container_layers: FilesystemUsage


class LayerStore(Protocol):
    def get(self, chain_id: str) -> Layer | None:
        """The layer, or None when it is not (completely) unpacked."""
        ...

    def hold(self, chain_id: str, holder: str) -> bool:
        """Add a holder to an existing layer; False when the layer is absent (unpack it then)."""
        ...

    def release(self, chain_id: str, holder: str) -> None:
        """Remove a holder; the layer is deleted when none is left. Absent layer or holder: no-op."""
        ...

    def unpack(self, parent: str, diff_id: str, blob: Iterable[bytes], holder: str) -> Layer:
        """Unpack a layer blob (tar; gzip or zstd compressed or not) on top of `parent` ("" for none).

        `parent` only names the layer below (it makes the chain id): it need not be unpacked yet, so the
        layers of one image may be unpacked at once and committed in any order.

        The uncompressed stream must hash to `diff_id`. The layer appears atomically: either fully unpacked
        under its chain id, held by `holder`, or not at all. An entry that would land outside the layer
        (absolute path, `..`, a path through a symlink, a hard link to outside) refuses the whole layer
        with InvalidArgument and nothing is written outside the store's temp dir, which is cleaned up. A
        digest mismatch or an unreadable archive is InvalidArgument too; a failing host is Internal.
        If the layer already exists, the blob is not read and `holder` is added.
        """
        ...

    def list_layers(self) -> list[Layer]: ...

    def create_rootfs(
        self, container_id: str, layers: list[str], image_id: str, idmap: LayerIdmap | None = None
    ) -> Path:
        """Make (or re-mount) the container's overlay over `layers` (bottom first); returns its `/`.

        Raises NotFound when one of the layers is absent, AlreadyExists when the container already has a
        root file system over other layers.
        """
        ...

    def unmount_rootfs(self, container_id: str) -> None:
        """Unmount the merged dir, keeping the writable layer. Absent or unmounted: no-op."""
        ...

    def remove_rootfs(self, container_id: str) -> None:
        """Unmount, delete the writable layer and release the container's layers. Absent: no-op."""
        ...

    def rootfs(self, container_id: str) -> Rootfs | None: ...

    def writable_layer(self, container_id: str) -> Path | None:
        """The directory that holds the container's own changes (its writable layer, what its disk usage
        counts); None when the container has no root file system here. Answered from memory: stats call
        it for every container on every stats call."""
        ...

    def list_rootfs(self) -> list[Rootfs]: ...

    def usage(self) -> StorageUsage:
        """Bytes and inodes used by image layers and by containers' writable layers."""
        ...
