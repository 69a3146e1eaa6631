"""ContainerRootfs over in-memory images: each image is a config plus a dict of files."""

from dataclasses import dataclass, field

from domain.container_config import ImageConfig
from domain.errors import Internal, InvalidArgument, NotFound
from ports.container_rootfs import ContainerImage
from ports.layer_store import LayerIdmap


@dataclass
class FakeImage:
    id: str
    names: tuple[str, ...]
    config: ImageConfig = field(default_factory=ImageConfig)
    files: dict[str, str] = field(default_factory=dict)
    symlinks: dict[str, str] = field(default_factory=dict)  # absolute path -> its target


class FakeContainerRootfs:
    def __init__(self, root: str = "/fake-rootfs") -> None:
        self._root = root
        self.images: dict[str, FakeImage] = {}
        self.rootfs: dict[str, str] = {}  # container id -> image id (what is "mounted")
        self.unmounted: set[str] = set()  # container ids whose rootfs is kept but not mounted
        self.fail_create = False
        self.idmaps: dict[str, LayerIdmap | None] = {}  # what each rootfs was asked to be idmapped with

    def add_image(self, image: FakeImage) -> FakeImage:
        self.images[image.id] = image
        return image

    def resolve_image(self, image: str) -> ContainerImage:
        for candidate in self.images.values():
            if image == candidate.id or image in candidate.names:
                name = image if image in candidate.names else candidate.names[0]
                return ContainerImage(candidate.id, f"{name}@sha256:{candidate.id}", name, candidate.config)
        raise NotFound(f"image {image!r} not found")

    def create(self, container_id: str, image_id: str, idmap: LayerIdmap | None = None) -> str:
        self.idmaps[container_id] = idmap
        if self.fail_create:
            raise Internal("overlay mount failed")
        if image_id not in self.images:
            raise NotFound(f"image {image_id} not found")
        self.rootfs[container_id] = image_id
        self.unmounted.discard(container_id)
        return f"{self._root}/{container_id}/merged"

    def read_file(self, container_id: str, path: str) -> str | None:
        image_id = self.rootfs.get(container_id)
        if image_id is None:
            raise NotFound(f"container {container_id} has no rootfs")
        if container_id in self.unmounted:
            return None
        return self.images[image_id].files.get(path)

    def directory(self, container_id: str, path: str) -> str | None:
        image_id = self.rootfs.get(container_id)
        if image_id is None:
            raise NotFound(f"container {container_id} has no rootfs")
        prefix = path.rstrip("/") + "/"
        if not any(name.startswith(prefix) for name in self.images[image_id].files):
            return None
        return f"{self._root}/{container_id}/merged{path.rstrip('/')}"

    def resolve_path(self, container_id: str, path: str) -> str:
        image_id = self.rootfs.get(container_id)
        if image_id is None:
            raise NotFound(f"container {container_id} has no rootfs")
        links = self.images[image_id].symlinks
        pending = [p for p in path.split("/") if p not in ("", ".")]
        inside: list[str] = []
        followed = 0
        while pending:
            part = pending.pop(0)
            if part == "..":
                inside = inside[:-1]
                continue
            target = links.get("/" + "/".join([*inside, part]))
            if target is None:
                inside.append(part)
                continue
            followed += 1
            if followed > 40:
                raise InvalidArgument(f"{path}: too many levels of symbolic links in the image")
            inside = [] if target.startswith("/") else inside
            pending = [p for p in target.split("/") if p not in ("", ".")] + pending
        return "/" + "/".join(inside)

    def writable_layer(self, container_id: str) -> str:
        if container_id not in self.rootfs:
            raise NotFound(f"container {container_id} has no rootfs")
        return f"{self._root}/{container_id}/upper"

    def unmount(self, container_id: str) -> None:
        if container_id in self.rootfs:
            self.unmounted.add(container_id)

    def remove(self, container_id: str) -> None:
        self.rootfs.pop(container_id, None)
        self.unmounted.discard(container_id)
