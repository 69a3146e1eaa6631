"""Make a pod's namespaces and pin them (run as a short-lived helper process, like cri-o's pinns).

The helper unshares the requested namespaces, sets the hostname and the namespaced sysctls inside them,
brings the loopback up, then bind-mounts its own /proc/self/ns/<kind> onto files in the target dir, so the
namespaces outlive it. Doing this in a child keeps the daemon's threads in the host's namespaces.

Exit status 3 means a sysctl was refused (the message names it); anything else non-zero is a failure.
"""

import argparse
import errno
import fcntl
import os
import socket
import struct
import sys

from adapters.namespaces import linux

EXIT_BAD_SYSCTL = 3
_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1
_KINDS = {"net": linux.CLONE_NEWNET, "ipc": linux.CLONE_NEWIPC, "uts": linux.CLONE_NEWUTS}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="pinns")
    parser.add_argument("--dir", required=True)
    parser.add_argument("--ns", action="append", choices=sorted(_KINDS), default=[])
    parser.add_argument("--hostname", default="")
    parser.add_argument("--sysctl", action="append", default=[], metavar="NAME=VALUE")
    args = parser.parse_args(argv)
    flags = 0
    for kind in args.ns:
        flags |= _KINDS[kind]
    linux.unshare(flags)
    if "uts" in args.ns and args.hostname:
        linux.sethostname(args.hostname)
    if "net" in args.ns:
        _loopback_up()
    for item in args.sysctl:
        name, _, value = item.partition("=")
        problem = _write_sysctl(name, value)
        if problem:
            print(problem, file=sys.stderr)
            return EXIT_BAD_SYSCTL
    for kind in args.ns:
        target = os.path.join(args.dir, kind)
        os.close(os.open(target, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0o444))
        linux.mount(f"/proc/self/ns/{kind}", target, None, linux.MS_BIND)
    return 0


def _loopback_up() -> None:
    """SIOCSIFFLAGS with IFF_UP: one ioctl, where importing pyroute2 would double the helper's run time."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(sock, _SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(sock, _SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | _IFF_UP))


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
