"""Unpack one layer's tar stream into a directory without letting any entry land outside it.

A layer comes from a registry, so every entry is hostile until checked. The rules, checked by this module
itself rather than trusted to tarfile's extraction filters:
- names are relative and hold no `..` (an absolute name or a `..` component refuses the layer);
- every directory on the way to an entry is opened without following symlinks (one openat2 with
  RESOLVE_NO_SYMLINKS | RESOLVE_BENEATH, else O_NOFOLLOW relative to the directory before it), so a
  symlink in the path refuses the layer instead of being followed (image builders never emit entries
  below a symlink: tar records canonical paths), and all creation is relative to an open directory fd;
- a hard link's target is resolved the same way and must already exist in this layer;
- symlinks themselves may point anywhere: they are only ever resolved inside the container;
- a name is at most PATH_MAX (4096 bytes, NUL included) and each component at most NAME_MAX (255 bytes),
  as containers/storage gets from the kernel for its path-based calls: this also bounds how deep a layer
  nests directories (at most 2048);
- the headers tarfile reads into memory are bounded: a PAX or GNU long-name header at most 1 MiB (Go's
  archive/tar limit), a sparse file's map at most 65536 extents; and a sparse file's holes count towards
  the layer's size limits, because they are written out.
OCI whiteouts become overlayfs ones: `.wh.<name>` a 0:0 character device, `.wh..wh..opq` the
`trusted.overlay.opaque=y` xattr on the directory. Ownership, modes (setuid too), mtimes, xattrs and device
nodes are applied as root. `trusted.overlay.*` xattrs from the archive are dropped: only the store may
speak to overlayfs.
"""

import errno
import gzip
import os
import stat
import tarfile
import typing
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import structlog
import zstandard
from isal import isal_zlib

from adapters.host.beneath import open_beneath
from adapters.host.no_space import is_no_space
from adapters.host.trees import remove_tree_at, walk_tree
from domain.errors import Internal, InvalidArgument, ResourceExhausted

_log = structlog.get_logger("pycrio.storage")

WHITEOUT_PREFIX = ".wh."
# `.wh..wh.` names are aufs bookkeeping (hard link dirs), never files of the image.
WHITEOUT_META_PREFIX = ".wh..wh."
OPAQUE_MARKER = ".wh..wh..opq"
OVERLAY_OPAQUE_XATTR = "trusted.overlay.opaque"

_XATTR_PAX_PREFIX = "SCHILY.xattr."
_ALLOWED_XATTR_PREFIXES = ("user.", "security.", "trusted.", "system.posix_acl_")
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_COPY_CHUNK = 1 << 20
PATH_MAX = 4096
NAME_MAX = 255
# What tarfile may read into memory for one entry's special headers (Go's archive/tar maxSpecialFileSize).
MAX_SPECIAL_HEADER = 1 << 20
MAX_SPARSE_EXTENTS = 1 << 16
_NO_ID = (1 << 32) - 1
# tarfile's stream mode reads its source this much at a time and copies what is left of it on every
# read: large enough that a big file takes few reads, small enough that a header read copies little.
_TAR_BUFSIZE = 128 << 10


# What a truncated or corrupt compressed stream raises while it is read.
CORRUPT_STREAM_ERRORS = (
    tarfile.TarError,
    EOFError,
    gzip.BadGzipFile,
    zlib.error,
    # The stubs declare it an instance; it is igzip_lib.IsalError, the class.
    typing.cast(type[Exception], isal_zlib.error),
    zstandard.ZstdError,
)


class HostileEntry(InvalidArgument):
    """An entry that would escape the layer or that no valid layer holds."""


def unpack_tar(
    stream: IO[bytes],
    root: Path,
    max_entries: int = 1_000_000,
    charge: Callable[[int], None] | None = None,
) -> None:
    """Unpack the tar `stream` into the existing empty directory `root`.

    Raises HostileEntry (an InvalidArgument) for an entry that breaks the rules above, InvalidArgument
    for a stream that is not a readable tar, ResourceExhausted past `max_entries` entries, Internal when
    the host fails a write. `charge` is told the bytes written beyond what the stream carries (sparse
    holes), so the caller's size limits see them. On error `root` may hold a partial tree: the caller
    unpacks into a temporary directory and deletes it.
    """
    unpacker = _Unpacker(os.open(root, _DIR_FLAGS), charge)
    try:
        try:
            with tarfile.open(
                fileobj=stream, mode="r|", errorlevel=2, bufsize=_TAR_BUFSIZE, tarinfo=_BoundedTarInfo
            ) as archive:
                for count, member in enumerate(_members(archive), 1):
                    if count > max_entries:
                        raise ResourceExhausted(
                            f"layer holds more than {max_entries} entries "
                            "(config key image.max_layer_entries)"
                        )
                    unpacker.apply(archive, member)
        except CORRUPT_STREAM_ERRORS as err:
            raise InvalidArgument(f"layer is not a valid (compressed) tar archive: {err}") from err
        unpacker.finish()
    finally:
        unpacker.close()


def _members(archive: tarfile.TarFile) -> Iterator[tarfile.TarInfo]:
    """The archive's entries, each forgotten by tarfile once read; a header tarfile cannot parse (it raises
    ValueError on some, such as a malformed sparse map) is a corrupt layer, not an internal error.

    tarfile keeps every member it has read, even in stream mode: a million entries with 4 KiB names held
    about 8 GiB. Only the entry being unpacked is needed (hard links are resolved on disk, not by tarfile).
    """
    while True:
        try:
            member = archive.next()
        except ValueError as err:
            raise InvalidArgument(f"layer is not a valid tar archive: {err}") from err
        archive.members.clear()  # type: ignore[attr-defined]
        if member is None:
            return
        yield member


class _BoundedTarInfo(tarfile.TarInfo):
    """tarfile's header parsing, with a bound on what it reads into memory for one entry, and strict about
    where the archive ends: tarfile takes a header cut short or a corrupt one (after the first) for the end
    of the archive and drops the rest silently, where Go's archive/tar (containers/storage) refuses it."""

    @classmethod
    def frombuf(cls, buf: bytes | bytearray, encoding: str, errors: str) -> "_BoundedTarInfo":
        try:
            return super().frombuf(buf, encoding, errors)
        except tarfile.TruncatedHeaderError:  # type: ignore[attr-defined]
            raise InvalidArgument("layer ends inside a tar header (the archive is cut short)") from None
        except tarfile.InvalidHeaderError as err:  # type: ignore[attr-defined]
            raise InvalidArgument(f"layer holds a corrupt tar header ({err})") from None

    def _proc_member(self, tarfile_: tarfile.TarFile) -> tarfile.TarInfo:
        special = (tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE)
        long_names = (tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK)
        if self.type in (*special, *long_names) and self.size > MAX_SPECIAL_HEADER:
            raise HostileEntry(
                f"layer holds a {self.size}-byte extended tar header (at most {MAX_SPECIAL_HEADER})"
            )
        result: tarfile.TarInfo = super()._proc_member(tarfile_)  # type: ignore[misc]
        return result

    def _proc_sparse(self, tarfile_: tarfile.TarFile) -> tarfile.TarInfo:
        """A GNU sparse header: its map continues in extension blocks of 21 extents each, as many as the
        archive says; more than MAX_SPARSE_EXTENTS is refused before they pile up in memory."""
        structs, extended, origsize = self._sparse_structs  # type: ignore[attr-defined]
        del self._sparse_structs  # type: ignore[attr-defined]
        fileobj = tarfile_.fileobj
        assert fileobj is not None
        while extended:
            if len(structs) > MAX_SPARSE_EXTENTS:
                raise HostileEntry(
                    f"layer entry {self.name!r}: sparse map of more than {MAX_SPARSE_EXTENTS} extents"
                )
            block = fileobj.read(tarfile.BLOCKSIZE)
            if len(block) < tarfile.BLOCKSIZE:
                raise InvalidArgument(f"layer entry {self.name!r}: the archive ends inside its sparse map")
            for at in range(0, 21 * 24, 24):
                try:
                    offset = tarfile.nti(block[at : at + 12])  # type: ignore[attr-defined]
                    numbytes = tarfile.nti(block[at + 12 : at + 24])  # type: ignore[attr-defined]
                except tarfile.HeaderError:
                    break
                if offset and numbytes:
                    structs.append((offset, numbytes))
            extended = bool(block[504])
        self.sparse = structs
        self.offset_data = fileobj.tell()
        tarfile_.offset = self.offset_data + self._block(self.size)  # type: ignore[attr-defined]
        self.size = origsize
        return self

    def _proc_gnusparse_10(
        self, next_: tarfile.TarInfo, pax_headers: dict[str, str], tarfile_: tarfile.TarFile
    ) -> None:
        """A GNU PAX 1.0 sparse map: a count, then that many offset/size pairs, one number a line, at the
        start of the entry's data; more than MAX_SPARSE_EXTENTS, or a line longer than a block, is refused."""
        fileobj = tarfile_.fileobj
        assert fileobj is not None
        buf = fileobj.read(tarfile.BLOCKSIZE)
        numbers: list[int] = []
        wanted: int | None = None
        while wanted is None or len(numbers) < wanted:
            if b"\n" not in buf:
                more = fileobj.read(tarfile.BLOCKSIZE)
                if not more or len(buf) > tarfile.BLOCKSIZE:
                    raise InvalidArgument(f"layer entry {next_.name!r}: malformed sparse map")
                buf += more
                continue
            line, buf = buf.split(b"\n", 1)
            try:
                number = int(line)
            except ValueError:
                raise InvalidArgument(f"layer entry {next_.name!r}: malformed sparse map") from None
            if wanted is None:
                if not 0 <= number <= MAX_SPARSE_EXTENTS:
                    raise HostileEntry(
                        f"layer entry {next_.name!r}: sparse map of {number} extents "
                        f"(at most {MAX_SPARSE_EXTENTS})"
                    )
                wanted = 2 * number
            else:
                numbers.append(number)
        next_.offset_data = fileobj.tell()
        next_.sparse = list(zip(numbers[::2], numbers[1::2], strict=True))  # type: ignore[assignment]


def _entry_parts(name: str, what: str = "entry") -> list[str]:
    if "\0" in name:
        raise HostileEntry(f"layer {what} {name[:200]!r}: NUL in name")
    if name.startswith("/"):
        raise HostileEntry(f"layer {what} {name[:200]!r}: absolute path")
    if len(name.encode("utf-8", "surrogateescape")) >= PATH_MAX:
        raise HostileEntry(f"layer {what} {name[:200]!r}...: longer than PATH_MAX ({PATH_MAX} bytes)")
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise HostileEntry(f"layer {what} {name[:200]!r}: '..' in path")
    for part in parts:
        if len(part.encode("utf-8", "surrogateescape")) > NAME_MAX:
            raise HostileEntry(
                f"layer {what} {name[:200]!r}: a component is longer than NAME_MAX ({NAME_MAX} bytes)"
            )
    return parts


class _Unpacker:
    def __init__(self, root_fd: int, charge: Callable[[int], None] | None = None) -> None:
        self._root_fd = root_fd
        self._charge = charge
        # The last parent directory opened, kept because tar entries come grouped by directory.
        self._cached: tuple[tuple[str, ...], int] | None = None
        # Each directory's mtime from the archive, by inode: a path per directory would hold up to 4 KiB
        # for each of a million directories nested 2000 deep (a 16 GiB list of tuples, as it was).
        self._dir_mtimes: dict[int, int] = {}

    def close(self) -> None:
        self._forget_cached()
        os.close(self._root_fd)

    def _forget_cached(self) -> None:
        if self._cached is not None:
            os.close(self._cached[1])
            self._cached = None

    def _open_dir(self, parts: tuple[str, ...], name: str, create: bool) -> int:
        """An fd of the directory `parts` below the root, never following a symlink; the cache owns it."""
        if not parts:
            return self._root_fd
        if self._cached is not None and self._cached[0] == parts:
            return self._cached[1]
        try:
            found = open_beneath(self._root_fd, "/".join(parts), _DIR_FLAGS)
        except OSError:
            found = None  # missing, or a symlink or file on the way: the walk below says which
        if found is not None:
            self._forget_cached()
            self._cached = (parts, found)
            return found
        fd = os.dup(self._root_fd)
        try:
            for depth, part in enumerate(parts, 1):
                try:
                    next_fd = os.open(part, _DIR_FLAGS, dir_fd=fd)
                except FileNotFoundError:
                    if not create:
                        raise HostileEntry(
                            f"layer entry {name!r}: {'/'.join(parts)} is not in the layer"
                        ) from None
                    # A directory the archive never listed: root-owned 0755, as docker and containerd do.
                    os.mkdir(part, 0o755, dir_fd=fd)
                    next_fd = os.open(part, _DIR_FLAGS, dir_fd=fd)
                except OSError as err:
                    if err.errno in (errno.ELOOP, errno.ENOTDIR) and _is_symlink(fd, part):
                        raise HostileEntry(
                            f"layer entry {name!r}: path goes through the symlink {'/'.join(parts[:depth])!r}"
                        ) from None
                    if err.errno == errno.ENOTDIR:
                        raise HostileEntry(
                            f"layer entry {name!r}: {'/'.join(parts[:depth])!r} is not a directory"
                        ) from None
                    raise
                os.close(fd)
                fd = next_fd
        except BaseException:
            os.close(fd)
            raise
        self._forget_cached()
        self._cached = (parts, fd)
        return fd

    def apply(self, archive: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        name = member.name
        try:
            self._apply(archive, member)
        except (InvalidArgument, ResourceExhausted, gzip.BadGzipFile):
            raise
        except OSError as err:
            if err.errno in (errno.ENAMETOOLONG, errno.EINVAL, errno.EISDIR, errno.ENOTEMPTY):
                raise InvalidArgument(f"layer entry {name[:200]!r}: {err.strerror}") from err
            if err.errno == errno.EMLINK:
                raise InvalidArgument(
                    f"layer entry {name[:200]!r}: {err.strerror}: the layer links one file more often than "
                    "the image store's file system allows"
                ) from err
            if is_no_space(err):
                raise ResourceExhausted(
                    f"unpacking layer entry {name!r}: {err.strerror} (config key image.min_free_bytes keeps "
                    "room free for the rest of the node)"
                ) from err
            raise Internal(f"unpacking layer entry {name!r}: {err}") from err

    def _apply(self, archive: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        parts = _entry_parts(member.name)
        for what, number in (("uid", member.uid), ("gid", member.gid)):
            # 2^32-1 is chown's "leave unchanged"; a PAX header may carry any integer, negative too.
            if not 0 <= number < _NO_ID:
                raise HostileEntry(f"layer entry {member.name[:200]!r}: {what} {number} is out of range")
        if not (0 <= member.devmajor < _NO_ID and 0 <= member.devminor < _NO_ID):
            raise HostileEntry(f"layer entry {member.name[:200]!r}: device number out of range")
        if not parts:
            if not member.isdir():
                raise HostileEntry(f"layer entry {member.name!r}: the layer root must be a directory")
            self._set_dir_metadata(self._root_fd, member)
            return
        parent, base = tuple(parts[:-1]), parts[-1]
        if base == OPAQUE_MARKER:
            parent_fd = self._open_dir(parent, member.name, create=True)
            os.setxattr(parent_fd, OVERLAY_OPAQUE_XATTR, b"y")
            return
        if base.startswith(WHITEOUT_META_PREFIX):
            return
        if base.startswith(WHITEOUT_PREFIX):
            hidden = base[len(WHITEOUT_PREFIX) :]
            if hidden in ("", ".", ".."):
                raise HostileEntry(f"layer entry {member.name!r}: whiteout of nothing")
            parent_fd = self._open_dir(parent, member.name, create=True)
            self._remove_existing(parent_fd, hidden)
            os.mknod(hidden, stat.S_IFCHR | 0o000, os.makedev(0, 0), dir_fd=parent_fd)
            return
        parent_fd = self._open_dir(parent, member.name, create=True)
        if member.isdir():
            self._make_dir(parent_fd, parent, base, member)
        elif member.isreg():
            self._make_file(archive, parent_fd, base, member)
        elif member.issym():
            self._remove_existing(parent_fd, base)
            os.symlink(member.linkname, base, dir_fd=parent_fd)
            os.chown(base, member.uid, member.gid, dir_fd=parent_fd, follow_symlinks=False)
            os.utime(base, ns=_mtime_ns(member), dir_fd=parent_fd, follow_symlinks=False)
        elif member.islnk():
            self._make_hard_link(parent, base, member)
        elif member.ischr() or member.isblk() or member.isfifo():
            kind = stat.S_IFCHR if member.ischr() else stat.S_IFBLK if member.isblk() else stat.S_IFIFO
            self._remove_existing(parent_fd, base)
            os.mknod(base, kind | 0o600, os.makedev(member.devmajor, member.devminor), dir_fd=parent_fd)
            os.chown(base, member.uid, member.gid, dir_fd=parent_fd, follow_symlinks=False)
            os.chmod(base, member.mode & 0o7777, dir_fd=parent_fd)
            os.utime(base, ns=_mtime_ns(member), dir_fd=parent_fd, follow_symlinks=False)
        else:
            raise HostileEntry(f"layer entry {member.name!r}: unsupported tar entry type {member.type!r}")

    def _remove_existing(self, parent_fd: int, base: str) -> None:
        """Make room for an entry: a later entry of the same name replaces the earlier one."""
        try:
            existing = os.lstat(base, dir_fd=parent_fd)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(existing.st_mode):
            if self._cached is not None and self._cached[1] != parent_fd:
                self._forget_cached()  # the cached directory may lie below the one being removed
            remove_tree_at(parent_fd, base)
        else:
            os.unlink(base, dir_fd=parent_fd)

    def _make_dir(self, parent_fd: int, parent: tuple[str, ...], base: str, member: tarfile.TarInfo) -> None:
        try:
            existing = os.lstat(base, dir_fd=parent_fd)
            if not stat.S_ISDIR(existing.st_mode):
                self._remove_existing(parent_fd, base)
                os.mkdir(base, 0o700, dir_fd=parent_fd)
        except FileNotFoundError:
            os.mkdir(base, 0o700, dir_fd=parent_fd)
        fd = os.open(base, _DIR_FLAGS, dir_fd=parent_fd)
        try:
            self._set_dir_metadata(fd, member)
        finally:
            os.close(fd)

    def _set_dir_metadata(self, fd: int, member: tarfile.TarInfo) -> None:
        os.fchown(fd, member.uid, member.gid)
        os.fchmod(fd, member.mode & 0o7777)
        _set_xattrs(fd, member)
        # Writing children changes a directory's mtime: set it once everything is unpacked.
        self._dir_mtimes[os.fstat(fd).st_ino] = _mtime_ns(member)[1]

    def _make_file(
        self, archive: tarfile.TarFile, parent_fd: int, base: str, member: tarfile.TarInfo
    ) -> None:
        self._remove_existing(parent_fd, base)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        if member.issparse() and self._charge is not None:
            extents = typing.cast(list[tuple[int, int]], member.sparse or [])
            self._charge(max(0, member.size - sum(size for _, size in extents)))
        fd = os.open(base, flags, 0o600, dir_fd=parent_fd)
        try:
            source = archive.extractfile(member)
            if source is not None:
                with source:
                    while chunk := source.read(_COPY_CHUNK):
                        _write_all(fd, chunk)
            os.fchown(fd, member.uid, member.gid)
            os.fchmod(fd, member.mode & 0o7777)  # after chown, which clears setuid bits
            _set_xattrs(fd, member)
            os.utime(fd, ns=_mtime_ns(member))
        finally:
            os.close(fd)

    def _make_hard_link(self, parent: tuple[str, ...], base: str, member: tarfile.TarInfo) -> None:
        target = _entry_parts(member.linkname, "hard link target")
        if not target:
            raise HostileEntry(f"layer entry {member.name!r}: hard link to the layer root")
        if tuple(target) == (*parent, base):
            return
        target_parent = self._open_dir(tuple(target[:-1]), member.name, create=False)
        target_fd = os.dup(target_parent)
        try:
            try:
                found = os.lstat(target[-1], dir_fd=target_fd)
            except FileNotFoundError:
                raise HostileEntry(
                    f"layer entry {member.name!r}: hard link target {member.linkname!r} is not in the layer"
                ) from None
            if stat.S_ISDIR(found.st_mode):
                raise HostileEntry(f"layer entry {member.name!r}: hard link to a directory")
            parent_fd = self._open_dir(parent, member.name, create=True)
            self._remove_existing(parent_fd, base)
            os.link(target[-1], base, src_dir_fd=target_fd, dst_dir_fd=parent_fd, follow_symlinks=False)
        finally:
            os.close(target_fd)

    def finish(self) -> None:
        """Set the directories' mtimes, children before parents (one walk by descriptors, any depth)."""
        self._forget_cached()
        if not self._dir_mtimes:
            return

        def subdirs(_: int, entries: list[os.DirEntry[str]]) -> list[str]:
            return [entry.name for entry in entries if entry.is_dir(follow_symlinks=False)]

        def set_mtime(parent_fd: int, name: str) -> None:
            mtime = self._dir_mtimes.get(os.stat(name, dir_fd=parent_fd, follow_symlinks=False).st_ino)
            if mtime is not None:
                os.utime(name, ns=(mtime, mtime), dir_fd=parent_fd, follow_symlinks=False)

        walk_tree(self._root_fd, subdirs, set_mtime)
        mtime = self._dir_mtimes.get(os.fstat(self._root_fd).st_ino)
        if mtime is not None:
            os.utime(self._root_fd, ns=(mtime, mtime))


def _is_symlink(dir_fd: int, name: str) -> bool:
    try:
        return stat.S_ISLNK(os.lstat(name, dir_fd=dir_fd).st_mode)
    except FileNotFoundError:
        return False


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _mtime_ns(member: tarfile.TarInfo) -> tuple[int, int]:
    try:
        ns = int(float(member.mtime) * 1_000_000_000)
    except (OverflowError, ValueError):
        ns = 0
    ns = max(0, min(ns, 2**63 - 1))
    return ns, ns


def _set_xattrs(fd: int, member: tarfile.TarInfo) -> None:
    for key, value in member.pax_headers.items():
        if not key.startswith(_XATTR_PAX_PREFIX):
            continue
        name = key[len(_XATTR_PAX_PREFIX) :]
        if name.startswith("trusted.overlay.") or not name.startswith(_ALLOWED_XATTR_PREFIXES):
            _log.debug("dropping xattr from layer", entry=member.name, xattr=name)
            continue
        raw = value.encode("utf-8", "surrogateescape") if isinstance(value, str) else bytes(value)
        try:
            os.setxattr(fd, name, raw)
        except OSError as err:
            if err.errno in (errno.ENOTSUP, errno.EINVAL):
                _log.debug("file system refuses xattr", entry=member.name, xattr=name, error=str(err))
                continue
            # A value past 64 KiB (E2BIG), a name past 255 bytes (ERANGE), or more than the file system
            # keeps for one file (ENOSPC with room on the disk): the layer's fault, not the host's.
            if err.errno in (errno.E2BIG, errno.ERANGE) or (err.errno == errno.ENOSPC and _has_room(fd)):
                raise InvalidArgument(
                    f"layer entry {member.name[:200]!r}: xattr {name[:100]!r} of {len(raw)} bytes: "
                    f"{err.strerror} (more than the file system takes for one file)"
                ) from err
            raise


def _has_room(fd: int) -> bool:
    """Whether the file system of `fd` has free space left (so an ENOSPC was about something else)."""
    info = os.fstatvfs(fd)
    return info.f_bavail * info.f_frsize > 1 << 20
