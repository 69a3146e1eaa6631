"""An in-memory LayerStore: layers are dicts of entries, root file systems are merged views in memory.

It reads the tar for real (gzip, zstd or plain), checks the diff id, and refuses the same hostile entries
as the overlay store (absolute paths, `..`, paths through a symlink, hard links to what the layer lacks),
so domain tests see the same errors without root.
"""

import gzip
import hashlib
import io
import tarfile
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import zstandard

from domain.errors import AlreadyExists, InvalidArgument, NotFound
from domain.image_config import chain_ids, digest_hex
from ports.layer_store import FilesystemUsage, Layer, LayerIdmap, Rootfs, StorageUsage

WHITEOUT = "whiteout"


@dataclass
class _Layer:
    chain_id: str
    diff_id: str
    parent: str
    entries: dict[str, tuple[str, bytes]]
    holders: set[str]

    @property
    def size(self) -> int:
        return sum(len(data) for _, data in self.entries.values())

    def public(self) -> Layer:
        return Layer(
            self.chain_id, self.diff_id, self.parent, self.size, len(self.entries), frozenset(self.holders)
        )


class InMemoryLayerStore:
    def __init__(self, root: Path = Path("/fake-storage")) -> None:
        self._root = root
        self._layers: dict[str, _Layer] = {}
        self._rootfs: dict[str, tuple[str, tuple[str, ...], bool]] = {}
        self._lock = threading.Lock()
        self.unpacked: list[str] = []
        self.idmaps: dict[str, LayerIdmap | None] = {}  # what each rootfs was mounted with

    def get(self, chain_id: str) -> Layer | None:
        with self._lock:
            found = self._layers.get(chain_id)
            return found.public() if found else None

    def hold(self, chain_id: str, holder: str) -> bool:
        with self._lock:
            found = self._layers.get(chain_id)
            if found is None:
                return False
            found.holders.add(holder)
            return True

    def release(self, chain_id: str, holder: str) -> None:
        with self._lock:
            found = self._layers.get(chain_id)
            if found is None:
                return
            found.holders.discard(holder)
            if not found.holders:
                del self._layers[chain_id]

    def unpack(self, parent: str, diff_id: str, blob: Iterable[bytes], holder: str) -> Layer:
        digest_hex(diff_id, "layer diff id")
        chain = chain_ids([diff_id])[0] if not parent else _chain(parent, diff_id)
        if self.hold(chain, holder):
            found = self.get(chain)
            assert found is not None
            return found
        raw = b"".join(blob)
        tar = _decompress(raw)
        actual = "sha256:" + hashlib.sha256(tar).hexdigest()
        entries = _read_entries(tar)
        if actual != diff_id:
            raise InvalidArgument(f"layer {diff_id}: its uncompressed content hashes to {actual} instead")
        with self._lock:
            existing = self._layers.get(chain)
            if existing is not None:  # unpacked meanwhile by a concurrent caller
                existing.holders.add(holder)
                return existing.public()
            self._layers[chain] = _Layer(chain, diff_id, parent, entries, {holder})
            self.unpacked.append(chain)
            return self._layers[chain].public()

    def list_layers(self) -> list[Layer]:
        with self._lock:
            return [layer.public() for _, layer in sorted(self._layers.items())]

    def create_rootfs(
        self, container_id: str, layers: list[str], image_id: str, idmap: LayerIdmap | None = None
    ) -> Path:
        with self._lock:
            self.idmaps[container_id] = idmap
            existing = self._rootfs.get(container_id)
            if existing is not None:
                if list(existing[1]) != layers:
                    raise AlreadyExists(f"container {container_id} already has a root file system")
                self._rootfs[container_id] = (image_id, existing[1], True)
                return self._path(container_id)
            missing = [layer for layer in layers if layer not in self._layers]
            if missing:
                raise NotFound(f"layers {', '.join(missing)} are not unpacked")
            for layer in layers:
                self._layers[layer].holders.add(f"container:{container_id}")
            self._rootfs[container_id] = (image_id, tuple(layers), True)
            return self._path(container_id)

    def _path(self, container_id: str) -> Path:
        return self._root / "containers" / container_id / "merged"

    def unmount_rootfs(self, container_id: str) -> None:
        with self._lock:
            if container_id in self._rootfs:
                image_id, layers, _ = self._rootfs[container_id]
                self._rootfs[container_id] = (image_id, layers, False)

    def remove_rootfs(self, container_id: str) -> None:
        with self._lock:
            found = self._rootfs.pop(container_id, None)
        if found is not None:
            for layer in found[1]:
                self.release(layer, f"container:{container_id}")

    def writable_layer(self, container_id: str) -> Path | None:
        with self._lock:
            known = container_id in self._rootfs
        return self._root / "containers" / container_id / "changes" if known else None

    def rootfs(self, container_id: str) -> Rootfs | None:
        with self._lock:
            found = self._rootfs.get(container_id)
        if found is None:
            return None
        return Rootfs(container_id, found[0], found[1], self._path(container_id), found[2])

    def list_rootfs(self) -> list[Rootfs]:
        with self._lock:
            ids = sorted(self._rootfs)
        return [r for r in (self.rootfs(i) for i in ids) if r is not None]

    def usage(self) -> StorageUsage:
        layers = self.list_layers()
        return StorageUsage(
            FilesystemUsage(
                self._root / "layers", sum(x.size for x in layers), sum(x.inodes for x in layers)
            ),
            FilesystemUsage(self._root / "containers", 0, 0),
        )

    def merged_view(self, container_id: str) -> dict[str, tuple[str, bytes]]:
        """What the container sees (for tests): lower layers overlaid, whiteouts applied."""
        found = self._rootfs[container_id]
        view: dict[str, tuple[str, bytes]] = {}
        for chain in found[1]:
            for path, entry in sorted(self._layers[chain].entries.items()):
                if entry[0] == WHITEOUT:
                    view = {p: e for p, e in view.items() if p != path and not p.startswith(path + "/")}
                elif entry[0] == "opaque":
                    view = {p: e for p, e in view.items() if not p.startswith(path + "/")}
                else:
                    view[path] = entry
        return view


def _chain(parent: str, diff_id: str) -> str:
    return "sha256:" + hashlib.sha256(f"{parent} {diff_id}".encode()).hexdigest()


def _decompress(raw: bytes) -> bytes:
    try:
        if raw.startswith(b"\x1f\x8b"):
            return gzip.decompress(raw)
        if raw.startswith(b"\x28\xb5\x2f\xfd"):
            return zstandard.ZstdDecompressor().decompressobj().decompress(raw)
    except (OSError, EOFError, zstandard.ZstdError) as err:
        raise InvalidArgument(f"layer is not a valid (compressed) tar archive: {err}") from err
    return raw


def _read_entries(tar: bytes) -> dict[str, tuple[str, bytes]]:
    entries: dict[str, tuple[str, bytes]] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(tar), mode="r|") as archive:
            for member in archive:
                path = _checked(member.name, "entry")
                parents = [str(p) for p in PurePosixPath(path).parents if str(p) != "."]
                for parent in parents:
                    if entries.get(parent, ("dir",))[0] == "symlink":
                        raise InvalidArgument(f"layer entry {member.name!r}: path goes through the symlink")
                name = PurePosixPath(path).name
                directory = str(PurePosixPath(path).parent)
                if name == ".wh..wh..opq":
                    entries[directory] = ("opaque", b"")
                elif name.startswith(".wh..wh."):
                    continue
                elif name.startswith(".wh."):
                    hidden = name[4:] if directory == "." else f"{directory}/{name[4:]}"
                    entries[hidden] = (WHITEOUT, b"")
                elif member.islnk():
                    target = _checked(member.linkname, "hard link target")
                    if target not in entries or entries[target][0] == "dir":
                        raise InvalidArgument(
                            f"layer entry {member.name!r}: hard link target is not in the layer"
                        )
                    entries[path] = entries[target]
                elif member.issym():
                    entries[path] = ("symlink", member.linkname.encode())
                elif member.isdir():
                    entries[path] = ("dir", b"")
                elif member.isreg():
                    source = archive.extractfile(member)
                    entries[path] = ("file", source.read() if source else b"")
                else:
                    entries[path] = ("special", b"")
    except tarfile.TarError as err:
        raise InvalidArgument(f"layer is not a valid tar archive: {err}") from err
    return entries


def _checked(name: str, what: str) -> str:
    if name.startswith("/"):
        raise InvalidArgument(f"layer {what} {name!r}: absolute path")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise InvalidArgument(f"layer {what} {name!r}: '..' in path")
    return "/".join(parts)
