"""ContainerRootfs over the images area's ImageService: image look-up and overlay root file systems.

Files are read from the rootfs the way the container will see them: symlinks inside the image are resolved
against the rootfs, never against the host (an image's /etc/passwd may be a link like `/etc/passwd ->
/usr/share/base/passwd`).
"""

import os
from pathlib import Path

from adapters.host.regular_files import read_regular_file
from domain.errors import InvalidArgument, NotFound
from domain.images import ImageService
from ports.container_rootfs import ContainerImage
from ports.layer_store import LayerIdmap

_MAX_LINKS = 40
_MAX_FILE = 4 * 1024 * 1024


class ImageServiceRootfs:
    def __init__(self, images: ImageService) -> None:
        self._images = images
        self._paths: dict[str, Path] = {}

    def resolve_image(self, image: str) -> ContainerImage:
        record = self._images.status(image)
        if record is None:
            raise NotFound(f"image {image!r} not found")
        name = image if image in record.repo_tags else (record.repo_tags[0] if record.repo_tags else image)
        ref = record.repo_digests[0] if record.repo_digests else f"sha256:{record.id}"
        return ContainerImage(id=record.id, ref=ref, name=name, config=record.config)

    def create(self, container_id: str, image_id: str, idmap: LayerIdmap | None = None) -> str:
        rootfs = self._images.create_rootfs(container_id, image_id, idmap)
        self._paths[container_id] = rootfs.path
        return str(rootfs.path)

    def read_file(self, container_id: str, path: str) -> str | None:
        root = self._paths.get(container_id)
        if root is None:
            raise NotFound(f"container {container_id} has no root file system")
        resolved = _resolve_in_root(root, path)
        if resolved is None or not resolved.is_file():
            return None
        # The image chose what is there: checked again on the open descriptor, never followed, capped.
        data = read_regular_file(str(resolved), _MAX_FILE, follow_symlinks=False)
        return None if data is None else data.decode(errors="replace")

    def directory(self, container_id: str, path: str) -> str | None:
        root = self._paths.get(container_id)
        if root is None:
            raise NotFound(f"container {container_id} has no root file system")
        resolved = _resolve_in_root(root, path)
        if resolved is None or resolved.is_symlink() or not resolved.is_dir():
            return None
        return str(resolved)

    def resolve_path(self, container_id: str, path: str) -> str:
        root = self._paths.get(container_id)
        if root is None:
            raise NotFound(f"container {container_id} has no root file system")
        found, missing = _walk_in_root(root, path)
        inside = [] if found == root else list(found.relative_to(root).parts)
        for part in missing:
            if part == "..":
                inside = inside[:-1]
            else:
                inside.append(part)
        return "/" + "/".join(inside)

    def writable_layer(self, container_id: str) -> str:
        layer = self._images.writable_layer(container_id)
        if layer is None:
            raise NotFound(f"container {container_id} has no root file system")
        return str(layer)

    def unmount(self, container_id: str) -> None:
        self._images.unmount_rootfs(container_id)

    def remove(self, container_id: str) -> None:
        self._images.remove_rootfs(container_id)
        self._paths.pop(container_id, None)


def _resolve_in_root(root: Path, path: str) -> Path | None:
    """`path` inside `root`, following symlinks as if `root` were `/`; None when a component is missing."""
    found, missing = _walk_in_root(root, path)
    return None if missing else found


def _walk_in_root(root: Path, path: str) -> tuple[Path, list[str]]:
    """How far `path` resolves inside `root` (symlinks followed as if `root` were `/`), and the components
    left after the first one that does not exist."""
    pending = [p for p in path.split("/") if p not in ("", ".")]
    current = root
    links = 0
    while pending:
        part = pending.pop(0)
        if part == "..":
            current = current.parent if current != root else root
            continue
        candidate = current / part
        if candidate.is_symlink():
            links += 1
            if links > _MAX_LINKS:
                raise InvalidArgument(f"{path}: too many levels of symbolic links in the image")
            target = os.readlink(candidate)
            if target.startswith("/"):
                current = root
            pending = [p for p in target.split("/") if p not in ("", ".")] + pending
            continue
        if not os.path.lexists(candidate):
            return current, [part, *pending]
        current = candidate
    return current, []
