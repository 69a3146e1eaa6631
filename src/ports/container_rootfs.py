"""What the containers service asks of the images area: an image's config and a container's root filesystem.

The image store answers `resolve_image`; the layer store makes the rootfs (overlay of the image's layers
plus a writable upper dir) and reads files from it (the image's /etc/passwd and /etc/group).
"""

from dataclasses import dataclass
from typing import Protocol

from domain.container_config import ImageConfig
from ports.layer_store import LayerIdmap


@dataclass(frozen=True)
class ContainerImage:
    id: str  # the image id (config digest)
    ref: str  # the name or digest reference reported back to the kubelet (image_ref)
    name: str  # the name the kubelet asked for, or the image's first tag
    config: ImageConfig


class ContainerRootfs(Protocol):
    def resolve_image(self, image: str) -> ContainerImage:
        """The image a CRI ImageSpec.image names (name, id or digest); NotFound when it is not pulled."""
        ...

    def create(self, container_id: str, image_id: str, idmap: LayerIdmap | None = None) -> str:
        """Make and mount the container's rootfs; returns its host path (the same path when called again).
        With `idmap`, its layers are idmapped into the pod's user namespace."""
        ...

    def read_file(self, container_id: str, path: str) -> str | None:
        """A text file inside the container's rootfs (absolute container path), None when it is absent."""
        ...

    def directory(self, container_id: str, path: str) -> str | None:
        """The host path of a directory inside the rootfs (symlinks followed within the rootfs, never out
        of it); None when it is absent or not a directory."""
        ...

    def resolve_path(self, container_id: str, path: str) -> str:
        """The absolute path that `path` names inside the rootfs once the image's symlinks are followed, as
        the container would see it (`..` never above `/`); components that do not exist are kept as
        written. InvalidArgument for a symlink loop."""
        ...

    def writable_layer(self, container_id: str) -> str:
        """The host directory of the rootfs's writable layer (what the container changed: a checkpoint's
        rootfs diff); NotFound when the container has no rootfs."""
        ...

    def unmount(self, container_id: str) -> None:
        """Unmount the rootfs of a container whose processes have ended, keeping its writable layer (and the
        layers held) until `remove`; its files are no longer read through it. Idempotent; unknown: no-op."""
        ...

    def remove(self, container_id: str) -> None:
        """Unmount and delete the rootfs; idempotent."""
        ...
