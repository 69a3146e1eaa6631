"""The bench's images, built locally and deterministically: busybox, a pause image, a big random image.

Nothing is fetched: the busybox and pause images are made from the host's Debian binaries (plus the shared
libraries they link, if any), and the pull image is 8 layers of seeded random bytes, which gzip cannot
shrink, so a pull moves as many bytes as the image claims. Built images are cached by a key of their
inputs, so a second run reuses them; the same inputs give the same digests on any machine.
"""

import gzip
import hashlib
import io
import json
import platform
import random
import shutil
import tarfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from adapters.process.runner import run

# Bump when the layout of generated images changes, so caches built by older code are not reused.
GENERATOR_VERSION = 1

MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"
LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"
MIB = 1024 * 1024


@dataclass(frozen=True)
class TarEntry:
    path: str
    kind: Literal["file", "dir", "symlink"] = "file"
    data: bytes = b""
    mode: int = 0o644
    target: str = ""


@dataclass(frozen=True)
class Blob:
    digest: str
    size: int
    media_type: str
    path: Path


@dataclass(frozen=True)
class ImageArtifact:
    """An image ready to push: its manifest bytes, and the blobs the manifest names."""

    repository: str
    tag: str
    manifest: bytes
    config: Blob
    layers: tuple[Blob, ...]
    uncompressed_bytes: int = 0

    @property
    def manifest_digest(self) -> str:
        return sha256_digest(self.manifest)

    @property
    def compressed_bytes(self) -> int:
        return sum(layer.size for layer in self.layers)

    def blobs(self) -> list[Blob]:
        return [self.config, *self.layers]


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def tar_bytes(entries: Iterable[TarEntry]) -> bytes:
    """A tar archive that depends only on the entries: sorted, mtime 0, owned by root."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for entry in sorted(entries, key=lambda item: item.path):
            info = tarfile.TarInfo(entry.path.lstrip("/"))
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mode = entry.mode
            if entry.kind == "dir":
                info.type = tarfile.DIRTYPE
                archive.addfile(info)
            elif entry.kind == "symlink":
                info.type = tarfile.SYMTYPE
                info.linkname = entry.target
                archive.addfile(info)
            else:
                info.size = len(entry.data)
                archive.addfile(info, io.BytesIO(entry.data))
    return buffer.getvalue()


def gzip_bytes(data: bytes, level: int = 6) -> bytes:
    """gzip with no timestamp or file name in the header, so equal input gives equal output."""
    return gzip.compress(data, compresslevel=level, mtime=0)


def random_bytes(seed: str, size: int) -> bytes:
    return random.Random(seed).randbytes(size)


def oci_arch() -> str:
    machine = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


@dataclass(frozen=True)
class ImageSpec:
    """What to build: layers (each a list of tar entries, made lazily) and the image config's `config`."""

    repository: str
    tag: str
    key_inputs: dict[str, Any]
    layers: Sequence[Callable[[], list[TarEntry]]]
    runtime_config: dict[str, Any] = field(default_factory=dict)
    gzip_level: int = 6

    def cache_key(self) -> str:
        document = {
            "generator": GENERATOR_VERSION,
            "repository": self.repository,
            "tag": self.tag,
            "inputs": self.key_inputs,
            "config": self.runtime_config,
            "gzip": self.gzip_level,
            "arch": oci_arch(),
        }
        return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()[:24]


def build(spec: ImageSpec, cache_dir: Path) -> ImageArtifact:
    """Build the image into `cache_dir/<key>` unless a finished build is already there."""
    target = cache_dir / spec.cache_key()
    if (target / "image.json").exists():
        return _load(target)
    staging = target.with_name(target.name + ".building")
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "blobs").mkdir(parents=True)
    layers: list[Blob] = []
    diff_ids: list[str] = []
    uncompressed = 0
    for make_entries in spec.layers:
        raw = tar_bytes(make_entries())
        uncompressed += len(raw)
        diff_ids.append(sha256_digest(raw))
        layers.append(_store(staging, gzip_bytes(raw, spec.gzip_level), LAYER_TYPE))
        del raw
    config_document = {
        "architecture": oci_arch(),
        "os": "linux",
        "config": spec.runtime_config,
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }
    config = _store(staging, _canonical(config_document), CONFIG_TYPE)
    manifest = _canonical(
        {
            "schemaVersion": 2,
            "mediaType": MANIFEST_TYPE,
            "config": _descriptor(config),
            "layers": [_descriptor(layer) for layer in layers],
        }
    )
    (staging / "manifest.json").write_bytes(manifest)
    index = {
        "repository": spec.repository,
        "tag": spec.tag,
        "uncompressed_bytes": uncompressed,
        "config": _descriptor(config),
        "layers": [_descriptor(layer) for layer in layers],
    }
    (staging / "image.json").write_text(json.dumps(index, indent=1))
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    return _load(target)


def _canonical(document: dict[str, Any]) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def _descriptor(blob: Blob) -> dict[str, Any]:
    return {"mediaType": blob.media_type, "digest": blob.digest, "size": blob.size}


def _store(root: Path, data: bytes, media_type: str) -> Blob:
    digest = sha256_digest(data)
    path = root / "blobs" / digest.removeprefix("sha256:")
    path.write_bytes(data)
    return Blob(digest, len(data), media_type, path)


def _load(root: Path) -> ImageArtifact:
    index = json.loads((root / "image.json").read_text())

    def blob(descriptor: dict[str, Any]) -> Blob:
        path = root / "blobs" / descriptor["digest"].removeprefix("sha256:")
        return Blob(descriptor["digest"], descriptor["size"], descriptor["mediaType"], path)

    return ImageArtifact(
        repository=index["repository"],
        tag=index["tag"],
        manifest=(root / "manifest.json").read_bytes(),
        config=blob(index["config"]),
        layers=tuple(blob(layer) for layer in index["layers"]),
        uncompressed_bytes=index["uncompressed_bytes"],
    )


# --- the three images ---------------------------------------------------------------------------------

BUSYBOX_APPLETS = ("sh", "sleep", "echo", "cat", "true", "ls", "ps")


def shared_libraries(binary: Path) -> list[Path]:
    """The libraries `binary` links (with the dynamic loader), or none for a static binary."""
    result = run(["ldd", str(binary)], timeout=30, check=False)
    found = []
    for line in result.stdout.decode(errors="replace").splitlines():
        parts = line.split()
        candidates = [part for part in parts if part.startswith("/")]
        if candidates:
            found.append(Path(candidates[0]))
    return found


def _binary_with_libraries(binary: Path, image_path: str) -> list[TarEntry]:
    entries = [TarEntry(image_path, data=binary.read_bytes(), mode=0o755)]
    for library in shared_libraries(binary):
        entries.append(TarEntry(str(library), data=library.resolve().read_bytes(), mode=0o755))
    return entries


def _directories(paths: Iterable[str]) -> list[TarEntry]:
    """Every parent directory of `paths`, so extraction never invents directories with odd modes."""
    dirs: set[str] = set()
    for path in paths:
        parent = Path(path.lstrip("/")).parent
        while str(parent) not in (".", ""):
            dirs.add(str(parent))
            parent = parent.parent
    return [TarEntry(path, kind="dir", mode=0o755) for path in sorted(dirs)]


def _file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def busybox_spec(
    busybox: Path = Path("/bin/busybox"),
    repository: str = "pcbench/busybox",
    tag: str = "1",
    applets: Sequence[str] = BUSYBOX_APPLETS,
) -> ImageSpec:
    """busybox as /bin/busybox with applet links; `sleep` and `echo` are what the bench runs (the README's
    quickstart image adds `httpd` and `hostname`)."""

    def entries() -> list[TarEntry]:
        files = _binary_with_libraries(busybox, "/bin/busybox")
        files += [TarEntry(f"/bin/{applet}", kind="symlink", target="busybox") for applet in applets]
        files.append(TarEntry("/etc/passwd", data=b"root:x:0:0:root:/root:/bin/sh\n"))
        files.append(TarEntry("/etc/group", data=b"root:x:0:\n"))
        for directory in ("/tmp", "/proc", "/sys", "/dev", "/root"):
            files.append(TarEntry(directory, kind="dir", mode=0o1777 if directory == "/tmp" else 0o755))
        return _directories(entry.path for entry in files) + files

    return ImageSpec(
        repository=repository,
        tag=tag,
        key_inputs={"busybox": _file_digest(busybox), "applets": list(applets)},
        layers=[entries],
        runtime_config={"Env": ["PATH=/bin"], "Cmd": ["sleep", "3600"]},
    )


def pause_spec(catatonit: Path = Path("/usr/bin/catatonit")) -> ImageSpec:
    """A pod's infra image: catatonit in pause mode (-P) sleeps until signalled and reaps children."""

    def entries() -> list[TarEntry]:
        files = _binary_with_libraries(catatonit, "/catatonit")
        return _directories(entry.path for entry in files) + files

    return ImageSpec(
        repository="pcbench/pause",
        tag="1",
        key_inputs={"catatonit": _file_digest(catatonit)},
        layers=[entries],
        runtime_config={"Entrypoint": ["/catatonit", "-P"]},
    )


def random_spec(seed: str, layers: int = 8, layer_bytes: int = 25 * MIB) -> ImageSpec:
    """`layers` layers of `layer_bytes` seeded random bytes each (8 x 25 MiB = the ~200 MB pull image)."""

    def layer(index: int) -> Callable[[], list[TarEntry]]:
        def entries() -> list[TarEntry]:
            data = random_bytes(f"pcbench:{seed}:{index}", layer_bytes)
            return [
                TarEntry("data", kind="dir", mode=0o755),
                TarEntry(f"data/layer-{index}.bin", data=data),
            ]

        return entries

    return ImageSpec(
        repository="pcbench/random",
        tag=seed,
        key_inputs={"seed": seed, "layers": layers, "layer_bytes": layer_bytes},
        layers=[layer(index) for index in range(layers)],
        runtime_config={"Cmd": ["/data"]},
        # Random bytes do not compress; level 1 spends the least time finding that out.
        gzip_level=1,
    )
