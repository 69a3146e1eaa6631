"""CheckpointArchives as plain tar files, with one work directory per container under `root`.

The writable layer's changes are read from the overlay upper directory: overlayfs marks a deleted file with
a 0/0 character device (listed in deleted.files) and a directory whose lower contents were removed with the
`trusted.overlay.opaque` attribute (listed too, so a restore empties it before the files come back).
Archives come from requests: every member is checked before it is written, nothing is written through a
symlink (a rootfs's absolute links would resolve on the host), and sizes and counts are capped.
"""

import io
import json
import os
import shutil
import stat
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, BinaryIO

from domain.errors import InvalidArgument
from ports.checkpoints import (
    CONFIG_DUMP,
    CRIU_IMAGES,
    DELETED_FILES,
    LOG_FILE,
    ROOTFS_DIFF,
    SPEC_DUMP,
    CheckpointDumps,
)

if TYPE_CHECKING:
    import tarfile

MAX_DUMP_BYTES = 16 * 1024 * 1024  # config.dump, spec.dump, deleted.files
MAX_MEMBERS = 1_000_000  # entries of an archive, and of its rootfs diff
_CRIU_FILES = ("dump.log", "stats-dump")
_OPAQUE = "trusted.overlay.opaque"


@dataclass(frozen=True)
class TarCheckpointArchives:
    root: Path

    def _work(self, container_id: str) -> Path:
        if not container_id or "/" in container_id or container_id in (".", ".."):
            raise InvalidArgument(f"container id {container_id!r} cannot name a checkpoint directory")
        return self.root / container_id

    def prepare(self, container_id: str) -> Path:
        work = self._work(container_id)
        shutil.rmtree(work, ignore_errors=True)
        (work / CRIU_IMAGES).mkdir(parents=True, mode=0o700)
        return work

    def remove(self, container_id: str) -> None:
        shutil.rmtree(self._work(container_id), ignore_errors=True)

    # --- export -----------------------------------------------------------------------------------------

    def export(
        self,
        container_id: str,
        location: str,
        dumps: CheckpointDumps,
        writable_layer: str,
        skip: Collection[str],
        log_path: str,
    ) -> None:
        work = self._work(container_id)
        deleted = _diff_tar(Path(writable_layer), set(skip), work / ROOTFS_DIFF)
        try:
            fd = os.open(
                location, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600
            )
        except OSError as err:
            raise InvalidArgument(f"location: {location!r} cannot be written: {err.strerror}") from None
        with (
            os.fdopen(fd, "wb") as raw,
            _tar().open(fileobj=raw, mode="w", format=_tar().PAX_FORMAT) as out,
        ):
            _add_bytes(out, CONFIG_DUMP, _json(dumps.config))
            _add_bytes(out, SPEC_DUMP, _json(dumps.spec))
            _add_bytes(out, DELETED_FILES, _json(deleted))
            out.add(work / CRIU_IMAGES, arcname=CRIU_IMAGES)
            out.add(work / ROOTFS_DIFF, arcname=ROOTFS_DIFF)
            for name in _CRIU_FILES:
                if (work / name).is_file():
                    out.add(work / name, arcname=name)
            log = _open_regular(log_path) if log_path else None
            if log is not None:
                with log:
                    info = _tar().TarInfo(LOG_FILE)
                    info.size = os.fstat(log.fileno()).st_size
                    info.mode = 0o600
                    out.addfile(info, log)

    # --- restore ----------------------------------------------------------------------------------------

    def read_dumps(self, location: str) -> CheckpointDumps:
        found: dict[str, Any] = {}
        with _open_archive(location) as archive:
            for member in _members(archive, location):
                name = _normal(member.name, location)
                if name in (CONFIG_DUMP, SPEC_DUMP):
                    found[name] = _read_json(archive, member, location)
                    if len(found) == 2:
                        break
        for name in (CONFIG_DUMP, SPEC_DUMP):
            if not isinstance(found.get(name), dict):
                raise InvalidArgument(f"image.image: {location!r} is not a checkpoint archive (no {name})")
        return CheckpointDumps(config=found[CONFIG_DUMP], spec=found[SPEC_DUMP])

    def unpack(self, container_id: str, location: str, rootfs: str) -> Path:
        work = self.prepare(container_id)
        deleted: list[str] = []
        with _open_archive(location) as archive:
            for member in _members(archive, location):
                name = _normal(member.name, location)
                if name == DELETED_FILES:
                    listed = _read_json(archive, member, location)
                    if not isinstance(listed, list) or not all(isinstance(p, str) for p in listed):
                        raise InvalidArgument(f"image.image: {DELETED_FILES} of {location!r} is not a list")
                    deleted = listed
                elif name.split("/", 1)[0] in (CRIU_IMAGES, ROOTFS_DIFF):
                    _extract(archive, member, name, work, location)
        root = Path(rootfs)
        for path in deleted:  # before the diff: an opaque directory is emptied, then filled again
            _delete_in(root, _normal(path, f"{location} {DELETED_FILES}"), location)
        if (work / ROOTFS_DIFF).is_file():
            with _open_archive(str(work / ROOTFS_DIFF)) as diff:
                for member in _members(diff, location):
                    _extract(diff, member, _normal(member.name, location), root, location)
            (work / ROOTFS_DIFF).unlink()
        images = work / CRIU_IMAGES
        if not (images / "inventory.img").is_file():
            raise InvalidArgument(
                f"image.image: {location!r} holds no CRIU images ({CRIU_IMAGES}/inventory.img)"
            )
        return images


def _json(value: Any) -> bytes:
    return json.dumps(value, indent=2).encode()


def _add_bytes(out: "tarfile.TarFile", name: str, data: bytes) -> None:
    info = _tar().TarInfo(name)
    info.size = len(data)
    info.mode = 0o600
    out.addfile(info, io.BytesIO(data))


def _open_regular(path: str) -> BinaryIO | None:
    """The log file, when it is a regular file reached as named (the kubelet's directory is not ours)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:
        return None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        return None
    return os.fdopen(fd, "rb")


def _diff_tar(upper: Path, skip: set[str], target: Path) -> list[str]:
    """Write the upper directory's files to `target`; returns the deleted paths (absolute container paths)."""
    deleted: list[str] = []
    with _tar().open(target, "w", format=_tar().PAX_FORMAT) as out:
        for path in _walk(upper):
            relative = path.relative_to(upper).as_posix()
            inside = "/" + relative
            info = path.lstat()
            if stat.S_ISCHR(info.st_mode) and info.st_rdev == 0:
                deleted.append(inside)
                continue
            if stat.S_ISDIR(info.st_mode) and _is_opaque(path):
                deleted.append(inside)
            if inside in skip:
                continue
            out.add(path, arcname=relative, recursive=False)
    return deleted


def _walk(top: Path) -> Iterator[Path]:
    for directory, dirs, files in os.walk(top):
        dirs.sort()
        for name in sorted(dirs) + sorted(files):
            yield Path(directory) / name


def _is_opaque(path: Path) -> bool:
    try:
        return os.getxattr(path, _OPAQUE, follow_symlinks=False) == b"y"
    except OSError:
        return False


def _open_archive(location: str) -> "tarfile.TarFile":
    try:
        opened: tarfile.TarFile = _tar().open(location, "r:")
        return opened
    except FileNotFoundError:
        raise InvalidArgument(f"image.image: checkpoint archive {location!r} not found") from None
    except (_tar().TarError, OSError) as err:
        raise InvalidArgument(f"image.image: {location!r} is not a readable tar archive: {err}") from None


def _members(archive: "tarfile.TarFile", location: str) -> Iterator["tarfile.TarInfo"]:
    for count, member in enumerate(archive, start=1):
        if count > MAX_MEMBERS:
            raise InvalidArgument(f"image.image: {location!r} has more than {MAX_MEMBERS} entries")
        yield member


def _read_json(archive: "tarfile.TarFile", member: "tarfile.TarInfo", location: str) -> Any:
    if not member.isfile() or member.size > MAX_DUMP_BYTES:
        raise InvalidArgument(f"image.image: {member.name} of {location!r} is not a file of at most 16 MiB")
    handle = archive.extractfile(member)
    assert handle is not None
    try:
        return json.loads(handle.read())
    except ValueError:
        raise InvalidArgument(f"image.image: {member.name} of {location!r} is not JSON") from None


def _normal(name: str, location: str) -> str:
    """A member name as a relative path with no '.', '..' or empty parts."""
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts or "\0" in name:
        raise InvalidArgument(f"image.image: {location!r} names a path outside its root: {name[:200]!r}")
    return "/".join(parts)


def _parent_inside(root: Path, name: str, location: str) -> Path:
    """The parent directory of `name` under `root`, every component a real directory (no symlinks)."""
    current = root
    for part in name.split("/")[:-1]:
        current = current / part
        try:
            info = current.lstat()
        except FileNotFoundError:
            current.mkdir(mode=0o755)
            continue
        if not stat.S_ISDIR(info.st_mode):
            raise InvalidArgument(f"image.image: {location!r}: {name[:200]!r} passes through a non-directory")
    return current


def _clear(target: Path, keep_directory: bool) -> None:
    """Make way for a new entry: an existing link or file is removed, never written through."""
    try:
        info = target.lstat()
    except FileNotFoundError:
        return
    if stat.S_ISDIR(info.st_mode):
        if not keep_directory:
            shutil.rmtree(target)
        return
    target.unlink()


def _delete_in(root: Path, name: str, location: str) -> None:
    if not name:
        return
    parent = _parent_inside(root, name, location)
    _clear(parent / name.rsplit("/", 1)[-1], keep_directory=False)


def _extract(
    archive: "tarfile.TarFile", member: "tarfile.TarInfo", name: str, root: Path, location: str
) -> None:
    if not name or not (member.isfile() or member.isdir() or member.issym() or member.islnk()):
        return  # device nodes and fifos are not restored
    if member.islnk():
        link = _normal(member.linkname, location)
        if not link:
            raise InvalidArgument(f"image.image: {location!r}: hard link {name[:200]!r} has no target")
        _parent_inside(root, link, location)
        member.linkname = link
    parent = _parent_inside(root, name, location)
    _clear(parent / name.rsplit("/", 1)[-1], keep_directory=member.isdir())
    member.name = name
    archive.extract(member, root, set_attrs=True, numeric_owner=True, **_no_filter())


def _tar() -> ModuleType:
    """tarfile, imported at the first checkpoint or restore: an idle daemon does not load it."""
    import tarfile

    return tarfile


def _no_filter() -> dict[str, Any]:
    """Members are checked here before extraction; tarfile's own filters (3.11.4 on; Debian 12 has
    3.11.2) would refuse a rootfs's absolute symlinks and change its modes: off where they exist."""
    return {"filter": "fully_trusted"} if hasattr(_tar(), "fully_trusted_filter") else {}
