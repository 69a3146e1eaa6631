"""The few Linux syscalls Python 3.11 lacks (setns, mount, umount2, idmapped mounts), through libc."""

import ctypes
import os

CLONE_NEWNET = 0x40000000

MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MNT_DETACH = 0x2
UMOUNT_NOFOLLOW = 0x8


# find_library runs ldconfig: glibc's soname is named directly.
_libc = ctypes.CDLL("libc.so.6", use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def setns(path: str, nstype: int = 0) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        _check(_libc.setns(fd, nstype), f"setns {path}")
    finally:
        os.close(fd)


def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    _check(
        _libc.mount(
            source.encode() if source else None,
            target.encode(),
            fstype.encode() if fstype else None,
            ctypes.c_ulong(flags),
            data.encode() if data else None,
        ),
        f"mount {target}",
    )


def umount2(target: str, flags: int = MNT_DETACH) -> None:
    _check(_libc.umount2(target.encode(), flags), f"umount {target}")


def process_start_time(pid: int) -> int | None:
    """Field 22 of /proc/<pid>/stat (clock ticks after boot); None when the pid is gone or a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
    except OSError:
        return None
    fields = stat[stat.rfind(b")") + 2 :].split()
    if fields[0] in (b"Z", b"X"):
        return None
    return int(fields[19])


# The new mount API (Linux 5.2, mount_setattr 5.12): one number on every architecture.
_SYS_OPEN_TREE = 428
_SYS_MOVE_MOUNT = 429
_SYS_MOUNT_SETATTR = 442
_AT_FDCWD = -100
_AT_EMPTY_PATH = 0x1000
_AT_RECURSIVE = 0x8000
_OPEN_TREE_CLONE = 0x1
_MOVE_MOUNT_F_EMPTY_PATH = 0x4
_MOUNT_ATTR_IDMAP = 0x00100000


class _MountAttr(ctypes.Structure):
    _fields_ = [
        ("attr_set", ctypes.c_uint64),
        ("attr_clr", ctypes.c_uint64),
        ("propagation", ctypes.c_uint64),
        ("userns_fd", ctypes.c_uint64),
    ]


def idmapped_bind(source: str, target: str, userns_path: str) -> None:
    """Bind `source` (recursively) on `target`, its owners shifted by the user namespace's mappings: a
    file of uid N shows as the host uid that N maps to, so the namespace's root owns what root owned."""
    userns = os.open(userns_path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        tree = _libc.syscall(
            _SYS_OPEN_TREE, _AT_FDCWD, source.encode(), _OPEN_TREE_CLONE | os.O_CLOEXEC | _AT_RECURSIVE
        )
        if tree < 0:
            _check(-1, f"open_tree {source}")
        try:
            attr = _MountAttr(attr_set=_MOUNT_ATTR_IDMAP, userns_fd=userns)
            _check(
                _libc.syscall(
                    _SYS_MOUNT_SETATTR, tree, b"", _AT_EMPTY_PATH | _AT_RECURSIVE,
                    ctypes.byref(attr), ctypes.sizeof(attr),
                ),
                f"mount_setattr (idmap) {source}",
            )  # fmt: skip
            _check(
                _libc.syscall(
                    _SYS_MOVE_MOUNT, tree, b"", _AT_FDCWD, target.encode(), _MOVE_MOUNT_F_EMPTY_PATH
                ),
                f"move_mount {target}",
            )
        finally:
            os.close(tree)
    finally:
        os.close(userns)


_SYS_FSOPEN = 430
_SYS_FSCONFIG = 431
_SYS_FSMOUNT = 432
_FSOPEN_CLOEXEC = 0x1
_FSMOUNT_CLOEXEC = 0x1
_FSCONFIG_SET_STRING = 1
_FSCONFIG_CMD_CREATE = 6


def mount_overlay_by_layer(lower: list[str], upper: str, work: str, target: str) -> None:
    """Mount an overlay with one `lowerdir+` option per layer (fsconfig, Linux 6.8): mount(2) takes all
    options in one page, which holds about 170 layers; this way only overlayfs' own limit (500) counts.
    `lower` is top layer first. Raises OSError (EINVAL from a kernel without `lowerdir+`)."""
    context = _libc.syscall(_SYS_FSOPEN, b"overlay", _FSOPEN_CLOEXEC)
    if context < 0:
        _check(-1, "fsopen overlay")
    try:

        def set_string(key: str, value: str) -> None:
            _check(
                _libc.syscall(_SYS_FSCONFIG, context, _FSCONFIG_SET_STRING, key.encode(), value.encode(), 0),
                f"fsconfig {key}={value}",
            )

        for layer in lower:
            set_string("lowerdir+", layer)
        set_string("upperdir", upper)
        set_string("workdir", work)
        _check(_libc.syscall(_SYS_FSCONFIG, context, _FSCONFIG_CMD_CREATE, None, None, 0), "fsconfig create")
        mounted = _libc.syscall(_SYS_FSMOUNT, context, _FSMOUNT_CLOEXEC, 0)
        if mounted < 0:
            _check(-1, "fsmount overlay")
        try:
            _check(
                _libc.syscall(
                    _SYS_MOVE_MOUNT, mounted, b"", _AT_FDCWD, target.encode(), _MOVE_MOUNT_F_EMPTY_PATH
                ),
                f"move_mount {target}",
            )
        finally:
            os.close(mounted)
    finally:
        os.close(context)
