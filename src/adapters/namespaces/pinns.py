"""Make a pod's namespaces and pin them (run as a short-lived helper process, like cri-o's pinns).

The helper unshares the requested namespaces, sets the hostname and the namespaced sysctls inside them,
brings the loopback up, then bind-mounts its own /proc/self/ns/<kind> onto files in the target dir, so the
namespaces outlive it. Doing this in a child keeps the daemon's threads in the host's namespaces.

Exit status 3 means a sysctl was refused (the message names it); anything else non-zero is a failure.
"""

import _socket  # the C module: `socket` converts its constants to enums at import, a third of the run
import errno
import fcntl
import os
import struct
import sys

from adapters.namespaces import linux
from adapters.namespaces.helper_args import parse_helper_args

EXIT_BAD_SYSCTL = 3
_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1
_KINDS = {"net": linux.CLONE_NEWNET, "ipc": linux.CLONE_NEWIPC, "uts": linux.CLONE_NEWUTS}


def main(argv: list[str]) -> int:
    args = parse_helper_args(
        "pinns", argv, single=("dir", "hostname"), repeated=("ns", "sysctl"), required=("dir",)
    )
    kinds = args.values("ns")
    unknown = [kind for kind in kinds if kind not in _KINDS]
    if unknown:
        print(f"pinns: --ns {unknown[0]!r}: one of {', '.join(sorted(_KINDS))}", file=sys.stderr)
        return 2
    flags = 0
    for kind in kinds:
        flags |= _KINDS[kind]
    linux.unshare(flags)
    hostname = args.value("hostname")
    if "uts" in kinds and hostname:
        linux.sethostname(hostname)
    if "net" in kinds:
        _loopback_up()
    for item in args.values("sysctl"):
        name, _, value = item.partition("=")
        problem = _write_sysctl(name, value)
        if problem:
            print(problem, file=sys.stderr)
            return EXIT_BAD_SYSCTL
    for kind in kinds:
        target = os.path.join(args.value("dir"), kind)
        os.close(os.open(target, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0o444))
        linux.mount(f"/proc/self/ns/{kind}", target, None, linux.MS_BIND)
    return 0


def _loopback_up() -> None:
    """SIOCSIFFLAGS with IFF_UP: one ioctl, where importing pyroute2 would double the helper's run time."""
    sock = _socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM)
    try:
        request = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(sock.fileno(), _SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(sock.fileno(), _SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | _IFF_UP))
    finally:
        sock.close()


def _write_sysctl(name: str, value: str) -> str:
    path = "/proc/sys/" + name.replace(".", "/")
    try:
        with open(path, "w") as handle:
            handle.write(value)
    except OSError as err:
        if err.errno == errno.ENOENT:
            return f"sysctl {name!r} does not exist in the pod's namespaces"
        return f"sysctl {name!r}: the kernel refused value {value!r}: {err.strerror}"
    return ""


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
