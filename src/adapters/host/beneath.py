"""Open a relative path below a directory descriptor in one system call, never through a symlink.

Walking a path one `openat(O_NOFOLLOW)` at a time costs a system call per component, and a layer's tar
entries may each lie 2048 directories deep: a million of them would cost two billion calls. Linux's
openat2 (5.6) resolves the whole path in the kernel with RESOLVE_NO_SYMLINKS (any symlink on the way is
ELOOP) and RESOLVE_BENEATH (nothing may resolve outside the directory), so the cost is one call. Where the
kernel lacks it (ENOSYS, or seccomp's EPERM) callers fall back to their per-component walk.
"""

import ctypes
import ctypes.util
import errno
import os

_SYS_OPENAT2 = 437  # the same number on every architecture (the unified syscall table)
_RESOLVE_NO_MAGICLINKS = 0x02
_RESOLVE_NO_SYMLINKS = 0x04
_RESOLVE_BENEATH = 0x08


class _OpenHow(ctypes.Structure):
    _fields_ = (("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64))


_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
_libc.syscall.restype = ctypes.c_long
_available = True


def open_beneath(dir_fd: int, path: str, flags: int) -> int | None:
    """A descriptor of `path` (relative) below `dir_fd`; None when openat2 is not available here.

    Raises OSError as openat2 does: ELOOP for a symlink anywhere on the way, ENOENT, ENOTDIR, EXDEV for
    a path that would leave `dir_fd`."""
    global _available
    if not _available:
        return None
    how = _OpenHow(flags | os.O_CLOEXEC, 0, _RESOLVE_NO_SYMLINKS | _RESOLVE_NO_MAGICLINKS | _RESOLVE_BENEATH)
    fd = _libc.syscall(
        _SYS_OPENAT2,
        ctypes.c_int(dir_fd),
        ctypes.c_char_p(os.fsencode(path)),
        ctypes.byref(how),
        ctypes.c_size_t(ctypes.sizeof(how)),
    )
    if fd >= 0:
        return int(fd)
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EPERM):
        _available = False
        return None
    raise OSError(err, os.strerror(err), path)
