"""Image layers unpacked once per chain id and shared, and container root file systems on overlayfs.

Layout under the store root (`<runtime.root>/storage`):
    layers/<chain hex>/       one layer's files, OCI whiteouts already converted to overlay ones
    l/<link>                  short symlink to ../layers/<chain hex> (keeps mount options under a page)
    containers/<id>/upper     a container's writable layer; work/ is overlayfs' scratch dir
    containers/<id>/merged    where the container's overlay is mounted (its `/`)
    tmp/                      layers being unpacked; renamed into layers/ when complete
    empty/                    the lower dir of an image without layers
Metadata (chain id, diff id, parent, size, holders; each container's layers) goes through the StateStore
(kinds `layers` and `rootfs`) and is kept in memory. A layer directory appears by rename only after it was
unpacked, checked against its diff id and synced, and its metadata is written right after: start-up removes
whatever a crash left between the two.

Locking: one short lock over the in-memory metadata (never held across unpacking or a mount), one lock per
chain id while it is unpacked (two images sharing a base layer unpack it once), one per container.
"""

import contextlib
import ctypes
import ctypes.util
import hashlib
import os
import secrets
import tempfile
import threading
import typing
from collections.abc import Iterable
from pathlib import Path
from typing import IO

import structlog

from adapters.host.no_space import no_space_left
from adapters.host.trees import remove_tree
from adapters.namespaces import linux
from adapters.storage import mounts
from adapters.storage.disk_usage import disk_usage
from adapters.storage.limits import UnpackLimits
from adapters.tracing.spans import span
from domain.errors import AlreadyExists, Internal, InvalidArgument, NotFound, ResourceExhausted
from domain.image_config import digest_hex
from domain.keyed_locks import KeyedLocks
from domain.names import check_plain_name
from ports.layer_store import FilesystemUsage, Layer, LayerIdmap, Rootfs, StorageUsage
from ports.state_store import StateStore

_log = structlog.get_logger("pycrio.storage")

LAYER_KIND = "layers"
ROOTFS_KIND = "rootfs"


def chain_id(parent: str, diff_id: str) -> str:
    """The OCI image-spec ChainID of `diff_id` on top of the chain `parent` ("" for a base layer)."""
    if not parent:
        return diff_id
    return "sha256:" + hashlib.sha256(f"{parent} {diff_id}".encode()).hexdigest()


def container_holder(container_id: str) -> str:
    return f"container:{container_id}"


def _hex(digest: str) -> str:
    return digest_hex(digest, "layer digest")


class OverlayLayerStore:
    def __init__(
        self,
        root: Path,
        state: StateStore,
        command_timeout: float = 120.0,
        limits: UnpackLimits | None = None,
    ) -> None:
        self._limits = limits or UnpackLimits()
        self._root = root
        self._state = state
        self._timeout = command_timeout
        self._lock = threading.Lock()
        self._chain_locks = KeyedLocks()
        self._container_locks = KeyedLocks()
        self._layers: dict[str, dict[str, object]] = {}
        self._rootfs: dict[str, dict[str, object]] = {}
        for sub in ("layers", "l", "containers", "tmp", "empty"):
            (root / sub).mkdir(parents=True, exist_ok=True, mode=0o700)
        # Searchable, not readable, by others, from the daemon's root (`runtime.root`, this store's parent)
        # down: the OCI runtime opens a user-namespaced container's rootfs from inside the namespace, as the
        # pod's root (an unprivileged host uid). containerd makes its root 0711 for the same reason.
        for searchable in (root.parent, root, root / "containers"):
            searchable.chmod(searchable.stat().st_mode & 0o7777 | 0o711)
        self._recover()

    # -- layers ---------------------------------------------------------------------------------------

    def get(self, chain_id: str) -> Layer | None:
        with self._lock:
            doc = self._layers.get(_hex(chain_id))
            return None if doc is None else _layer(doc)

    def list_layers(self) -> list[Layer]:
        with self._lock:
            return [_layer(doc) for _, doc in sorted(self._layers.items())]

    def hold(self, chain_id: str, holder: str) -> bool:
        with self._lock:
            return self._hold_locked(_hex(chain_id), holder)

    def _hold_locked(self, key: str, holder: str) -> bool:
        doc = self._layers.get(key)
        if doc is None:
            return False
        holders = set(_strings(doc["holders"]))
        if holder not in holders:
            updated = {**doc, "holders": sorted(holders | {holder})}
            self._state.put(LAYER_KIND, key, updated)
            self._layers[key] = updated
        return True

    def release(self, chain_id: str, holder: str) -> None:
        key = _hex(chain_id)
        with self._lock:
            doc = self._layers.get(key)
            if doc is None:
                return
            holders = set(_strings(doc["holders"])) - {holder}
            if holders:
                updated = {**doc, "holders": sorted(holders)}
                self._state.put(LAYER_KIND, key, updated)
                self._layers[key] = updated
                return
            # Last holder gone: forget it, then move the files aside so a new unpack may start at once.
            self._state.delete(LAYER_KIND, key)
            del self._layers[key]
            doomed = Path(tempfile.mkdtemp(dir=self._root / "tmp", prefix="removed-"))
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._root / "l" / str(doc["link"]))
            with contextlib.suppress(FileNotFoundError):
                os.rename(self._root / "layers" / key, doomed / "diff")
        _log.info("removed layer", chain_id=chain_id)
        remove_tree(doomed)

    def unpack(self, parent: str, diff_id: str, blob: Iterable[bytes], holder: str) -> Layer:
        with span("storage.unpack", diff_id=diff_id):
            return self._unpack(parent, diff_id, blob, holder)

    def _unpack(self, parent: str, diff_id: str, blob: Iterable[bytes], holder: str) -> Layer:
        # tarfile and the decompressors (about 1.5 MiB of the daemon's memory) load at the first unpack.
        from adapters.storage.streams import ChunkReader, TarStream, check_free_space, decompressed
        from adapters.storage.unpack import CORRUPT_STREAM_ERRORS, unpack_tar

        _hex(diff_id)
        chain = chain_id(parent, diff_id)
        key = _hex(chain)
        with self._chain_locks.hold(key):
            if self.hold(chain, holder):
                found = self.get(chain)
                if found is not None:
                    return found
            check_free_space(self._root, self._limits)
            work = Path(tempfile.mkdtemp(dir=self._root / "tmp", prefix="unpack-"))
            try:
                diff = work / "diff"
                diff.mkdir(mode=0o755)
                raw = ChunkReader(blob)
                tar = TarStream(decompressed(raw), raw, self._limits, self._root)
                try:
                    unpack_tar(typing.cast(IO[bytes], tar), diff, self._limits.max_entries, tar.charge)
                    tar.drain()  # tar padding after the end-of-archive blocks counts towards the diff id
                except (InvalidArgument, ResourceExhausted) as err:
                    raise type(err)(f"refusing layer {diff_id}: {err}") from err
                except CORRUPT_STREAM_ERRORS as err:
                    raise InvalidArgument(
                        f"refusing layer {diff_id}: corrupt compressed stream: {err}"
                    ) from err
                raw.drain()
                if tar.digest != diff_id:
                    raise InvalidArgument(
                        f"layer {diff_id}: its uncompressed content hashes to {tar.digest} instead"
                    )
                size, inodes = disk_usage(diff)
                _syncfs(diff)
                doc: dict[str, object] = {
                    "chain_id": chain,
                    "diff_id": diff_id,
                    "parent": parent,
                    "size": size,
                    "inodes": inodes,
                    "holders": [holder],
                    "link": secrets.token_hex(10),
                }
                with self._lock:
                    final, link = self._root / "layers" / key, self._root / "l" / str(doc["link"])
                    os.rename(diff, final)
                    try:
                        os.symlink(f"../layers/{key}", link)
                        self._state.put(LAYER_KIND, key, doc)
                    except BaseException:
                        # Put everything back where the finally clause removes it: no half-recorded layer.
                        with contextlib.suppress(FileNotFoundError):
                            link.unlink()
                        os.rename(final, diff)
                        raise
                    self._layers[key] = doc
            finally:
                remove_tree(work)
        _log.info("unpacked layer", chain_id=chain, diff_id=diff_id, size=size)
        return _layer(doc)

    # -- container root file systems -------------------------------------------------------------------

    def create_rootfs(
        self, container_id: str, layers: list[str], image_id: str, idmap: LayerIdmap | None = None
    ) -> Path:
        check_plain_name("container id", container_id)
        keys = [_hex(layer) for layer in layers]
        full = no_space_left(f"for the writable layer of container {container_id} in {self._root}")
        with self._container_locks.hold(container_id), full:
            created = self._record_rootfs(container_id, layers, image_id)
            try:
                # A new record was never mounted (the record comes first): no need to look.
                return self._mount(container_id, keys, idmap, maybe_mounted=not created)
            except BaseException:
                if created:
                    self._forget_rootfs(container_id)
                raise

    def _record_rootfs(self, container_id: str, layers: list[str], image_id: str) -> bool:
        """Persist the container's layers and hold them; False when it was already recorded."""
        with self._lock:
            existing = self._rootfs.get(container_id)
            if existing is not None:
                if list(_strings(existing["layers"])) != layers:
                    raise AlreadyExists(f"container {container_id} already has a root file system")
                return False
            missing = [layer for layer in layers if _hex(layer) not in self._layers]
            if missing:
                raise NotFound(f"layers {', '.join(missing)} are not unpacked")
            # Intent first: a crash after this leaves a record that remove_rootfs can undo.
            doc: dict[str, object] = {"container_id": container_id, "image_id": image_id, "layers": layers}
            self._state.put(ROOTFS_KIND, container_id, doc)
            self._rootfs[container_id] = doc
            for layer in layers:
                self._hold_locked(_hex(layer), container_holder(container_id))
        return True

    def _mount(
        self, container_id: str, keys: list[str], idmap: LayerIdmap | None, maybe_mounted: bool = True
    ) -> Path:
        base = self._root / "containers" / container_id
        for sub in ("upper", "work", "merged"):
            (base / sub).mkdir(parents=True, exist_ok=True, mode=0o755 if sub != "work" else 0o700)
        merged = base / "merged"
        if maybe_mounted and mounts.is_mounted(merged):
            return merged
        with self._lock:
            lower = [f"l/{self._layers[key]['link']}" for key in reversed(keys)] or ["empty"]
        relative = f"containers/{container_id}"
        if idmap is None:
            mounts.mount_overlay(
                self._root, lower, f"{relative}/upper", f"{relative}/work", merged, self._timeout
            )
            return merged
        # The merged root takes the upper dir's owner: the pod's root, as `/` is root's in the image.
        os.chown(base / "upper", idmap.root_uid, idmap.root_gid)
        idmapped = base / "lower"
        _clear_idmapped_binds(idmapped)  # left by an attempt cut short
        idmapped.mkdir(mode=0o700)
        try:
            for index, layer in enumerate(lower):
                (idmapped / str(index)).mkdir()
                linux.idmapped_bind(str(self._root / layer), str(idmapped / str(index)), idmap.userns_path)
            mounts.mount_overlay(
                self._root,
                [f"{relative}/lower/{index}" for index in range(len(lower))],
                f"{relative}/upper",
                f"{relative}/work",
                merged,
                self._timeout,
            )
        except OSError as err:
            raise Internal(f"idmapping the layers of {container_id}: {err}") from None
        finally:
            # overlayfs holds private clones of its layers: the idmapped binds are not needed once it is up.
            _clear_idmapped_binds(idmapped)
        return merged

    def unmount_rootfs(self, container_id: str) -> None:
        check_plain_name("container id", container_id)
        with self._container_locks.hold(container_id):
            mounts.unmount(self._root / "containers" / container_id / "merged", self._timeout)

    def remove_rootfs(self, container_id: str) -> None:
        check_plain_name("container id", container_id)
        with self._container_locks.hold(container_id):
            self._forget_rootfs(container_id)  # unmounts first

    def _forget_rootfs(self, container_id: str) -> None:
        base = self._root / "containers" / container_id
        mounts.unmount(base / "merged", self._timeout)
        _clear_idmapped_binds(base / "lower")
        remove_tree(base)
        with self._lock:
            doc = self._rootfs.pop(container_id, None)
            self._state.delete(ROOTFS_KIND, container_id)
        if doc is not None:
            for layer in _strings(doc["layers"]):
                self.release(layer, container_holder(container_id))

    def rootfs(self, container_id: str) -> Rootfs | None:
        with self._lock:
            doc = self._rootfs.get(container_id)
        return None if doc is None else self._rootfs_of(doc)

    def writable_layer(self, container_id: str) -> Path | None:
        with self._lock:
            known = container_id in self._rootfs
        return self._root / "containers" / container_id / "upper" if known else None

    def list_rootfs(self) -> list[Rootfs]:
        with self._lock:
            docs = [doc for _, doc in sorted(self._rootfs.items())]
        return [self._rootfs_of(doc) for doc in docs]

    def _rootfs_of(self, doc: dict[str, object]) -> Rootfs:
        merged = self._root / "containers" / str(doc["container_id"]) / "merged"
        return Rootfs(
            container_id=str(doc["container_id"]),
            image_id=str(doc["image_id"]),
            layers=tuple(_strings(doc["layers"])),
            path=merged,
            mounted=mounts.is_mounted(merged),
        )

    def usage(self) -> StorageUsage:
        with self._lock:
            layer_bytes = sum(int(str(doc["size"])) for doc in self._layers.values())
            layer_inodes = sum(int(str(doc["inodes"])) for doc in self._layers.values())
            containers = list(self._rootfs)
        container_bytes = container_inodes = 0
        for container_id in containers:
            # Only the writable layer: the merged dir would count the image layers again.
            used, inodes = disk_usage(self._root / "containers" / container_id / "upper")
            container_bytes += used
            container_inodes += inodes
        return StorageUsage(
            image_layers=FilesystemUsage(self._root / "layers", layer_bytes, layer_inodes),
            container_layers=FilesystemUsage(self._root / "containers", container_bytes, container_inodes),
        )

    # -- start-up ---------------------------------------------------------------------------------------

    def _recover(self) -> None:
        """Drop what a crash left half done: temp dirs, layer dirs without metadata and the reverse."""
        for leftover in (self._root / "tmp").iterdir():
            remove_tree(leftover)
        self._layers = dict(self._state.list(LAYER_KIND))
        for key in list(self._layers):
            if not (self._root / "layers" / key).is_dir():
                _log.warning("layer metadata without files, forgetting it", layer=key)
                self._state.delete(LAYER_KIND, key)
                del self._layers[key]
        for entry in (self._root / "layers").iterdir():
            if entry.name not in self._layers:
                _log.warning("layer files without metadata, removing them", layer=entry.name)
                remove_tree(entry)
        links = {str(doc["link"]) for doc in self._layers.values()}
        for link in (self._root / "l").iterdir():
            if link.name not in links:
                link.unlink()
        for key, doc in self._layers.items():
            link_path = self._root / "l" / str(doc["link"])
            if not link_path.is_symlink():
                link_path.symlink_to(f"../layers/{key}")
        self._rootfs = dict(self._state.list(ROOTFS_KIND))


def _strings(value: object) -> list[str]:
    if not isinstance(value, list):
        return []
    return [str(item) for item in value]


def _layer(doc: dict[str, object]) -> Layer:
    return Layer(
        chain_id=str(doc["chain_id"]),
        diff_id=str(doc["diff_id"]),
        parent=str(doc["parent"]),
        size=int(str(doc["size"])),
        inodes=int(str(doc["inodes"])),
        holders=frozenset(_strings(doc["holders"])),
    )


_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)


def _syncfs(path: Path) -> None:
    """Flush the file system holding `path`, so a layer is on disk before it is renamed into place."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        if _libc.syncfs(fd) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err), str(path))
    finally:
        os.close(fd)


def _clear_idmapped_binds(directory: Path) -> None:
    """Detach the idmapped layer binds under `directory` and remove their mount points. Never a recursive
    delete: a bind still there would lead it into a shared layer."""
    if not directory.is_dir():
        return
    for point in directory.iterdir():
        with contextlib.suppress(OSError):
            linux.umount2(str(point), linux.MNT_DETACH)
        with contextlib.suppress(OSError):
            point.rmdir()
    with contextlib.suppress(OSError):
        directory.rmdir()
