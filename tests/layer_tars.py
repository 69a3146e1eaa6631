"""Build layer tar streams and small images in tests, hostile ones included."""

import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass, field

import zstandard

from ports.registry import Descriptor

OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"


@dataclass
class Entry:
    name: str
    type: bytes = tarfile.REGTYPE
    data: bytes = b""
    mode: int = 0o644
    uid: int = 0
    gid: int = 0
    mtime: int = 1_600_000_000
    linkname: str = ""
    devmajor: int = 0
    devminor: int = 0
    xattrs: dict[str, str] = field(default_factory=dict)


def file(name: str, data: bytes = b"", mode: int = 0o644, **kw: object) -> Entry:
    return Entry(name, tarfile.REGTYPE, data, mode, **kw)  # type: ignore[arg-type]


def directory(name: str, mode: int = 0o755, **kw: object) -> Entry:
    return Entry(name, tarfile.DIRTYPE, b"", mode, **kw)  # type: ignore[arg-type]


def symlink(name: str, target: str) -> Entry:
    return Entry(name, tarfile.SYMTYPE, linkname=target, mode=0o777)


def hardlink(name: str, target: str) -> Entry:
    return Entry(name, tarfile.LNKTYPE, linkname=target)


def chardev(name: str, major: int, minor: int) -> Entry:
    return Entry(name, tarfile.CHRTYPE, mode=0o666, devmajor=major, devminor=minor)


def fifo(name: str) -> Entry:
    return Entry(name, tarfile.FIFOTYPE, mode=0o600)


def tar_bytes(entries: Iterable[Entry]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for entry in entries:
            info = tarfile.TarInfo(entry.name)
            info.type = entry.type
            info.mode = entry.mode
            info.uid, info.gid = entry.uid, entry.gid
            info.mtime = entry.mtime
            info.linkname = entry.linkname
            info.devmajor, info.devminor = entry.devmajor, entry.devminor
            info.size = len(entry.data) if entry.type == tarfile.REGTYPE else 0
            if entry.xattrs:
                info.pax_headers = {f"SCHILY.xattr.{k}": v for k, v in entry.xattrs.items()}
            archive.addfile(info, io.BytesIO(entry.data) if info.size else None)
    return out.getvalue()


def compress(tar: bytes, how: str) -> bytes:
    if how == "gzip":
        return gzip.compress(tar)
    if how == "zstd":
        return zstandard.ZstdCompressor().compress(tar)
    return tar


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class Layer:
    """A layer as a registry serves it: the blob, its descriptor, and the diff id the config names."""

    blob: bytes
    diff_id: str
    media_type: str

    @property
    def descriptor(self) -> Descriptor:
        return Descriptor(self.media_type, digest(self.blob), len(self.blob))


def layer(entries: Iterable[Entry], how: str = "gzip") -> Layer:
    tar = tar_bytes(entries)
    media = {"gzip": OCI_LAYER_GZIP, "zstd": OCI_LAYER_ZSTD}.get(how, OCI_LAYER)
    return Layer(compress(tar, how), digest(tar), media)


def image_config(layers: list[Layer], config: dict[str, object] | None = None, salt: str = "") -> bytes:
    document = {
        "architecture": "amd64",
        "os": "linux",
        "config": config or {},
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]},
        "history": [{"created_by": salt}] if salt else [],
    }
    return json.dumps(document, sort_keys=True).encode()
