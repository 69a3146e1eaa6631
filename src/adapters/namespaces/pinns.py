"""Make a pod's namespaces and pin them (run as a short-lived helper process, like cri-o's pinns).

The helper unshares the requested namespaces, sets the hostname and the namespaced sysctls inside them,
brings the loopback up, then bind-mounts its own /proc/self/ns/<kind> onto files in the target dir, so the
namespaces outlive it. Doing this in a child keeps the daemon's threads in the host's namespaces.

With `--uid-map`/`--gid-map` (user-namespaced pods) a child process makes the user namespace first; this
process, still in the host's user namespace, writes the child's mappings (only a process with CAP_SETUID in
the parent namespace may map more than its own id) and pins it. The child then makes the other namespaces
inside it, so the pod's user namespace owns them, and this process pins those from /proc/<child>/ns: a
process inside the user namespace could not mount onto the host's run dir.

Exit status 3 means a sysctl was refused (the message names it); anything else non-zero is a failure.
"""

import _socket  # the C module: `socket` converts its constants to enums at import, a third of the run
import errno
import fcntl
import os
import struct
import sys

from adapters.namespaces import linux
from adapters.namespaces.helper_args import HelperArgs, parse_helper_args

EXIT_BAD_SYSCTL = 3
_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1
_KINDS = {"net": linux.CLONE_NEWNET, "ipc": linux.CLONE_NEWIPC, "uts": linux.CLONE_NEWUTS}


def main(argv: list[str]) -> int:
    args = parse_helper_args(
        "pinns",
        argv,
        single=("dir", "hostname", "uid-map", "gid-map"),
        repeated=("ns", "sysctl"),
        required=("dir",),
    )
    kinds = args.values("ns")
    unknown = [kind for kind in kinds if kind not in _KINDS]
    if unknown:
        print(f"pinns: --ns {unknown[0]!r}: one of {', '.join(sorted(_KINDS))}", file=sys.stderr)
        return 2
    if args.value("uid-map"):
        return _in_user_namespace(args, kinds)
    problem = _make_namespaces(args, kinds)
    if problem:
        print(problem, file=sys.stderr)
        return EXIT_BAD_SYSCTL
    for kind in kinds:
        _pin(f"/proc/self/ns/{kind}", args.value("dir"), kind)
    return 0


def _make_namespaces(args: HelperArgs, kinds: list[str]) -> str:
    """Unshare the namespaces and set them up; a refused sysctl's message, or ""."""
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
            return problem
    return ""


def _pin(source: str, directory: str, kind: str) -> None:
    target = os.path.join(directory, kind)
    os.close(os.open(target, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0o444))
    linux.mount(source, target, None, linux.MS_BIND)


def _in_user_namespace(args: HelperArgs, kinds: list[str]) -> int:
    """The child unshares the user namespace, waits for its mappings, makes the rest and waits to be pinned.

    Pipes: `ready` (child: unshared), `go` (parent: mapped; closed: pinned, the child may exit), `result`
    (child: "" or why it failed, prefixed with the exit status to report)."""
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    result_r, result_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(ready_r)
        os.close(go_w)
        os.close(result_r)
        outcome = ""
        try:
            linux.unshare(linux.CLONE_NEWUSER)
            os.write(ready_w, b"u")
            if os.read(go_r, 1) != b"g":
                os._exit(1)
            problem = _make_namespaces(args, kinds)
            outcome = f"{EXIT_BAD_SYSCTL} {problem}" if problem else ""
        except BaseException as err:  # reported to the parent, never run on
            outcome = f"1 {type(err).__name__}: {err}"
        os.write(result_w, outcome.encode() or b"ok")
        os.close(result_w)
        os.read(go_r, 1)  # EOF once the parent has pinned the namespaces
        os._exit(0)
    for fd in (ready_w, go_r, result_w):
        os.close(fd)
    try:
        if os.read(ready_r, 1) != b"u":
            print("pinns: the user namespace child exited before unsharing", file=sys.stderr)
            return 1
        for name in ("uid", "gid"):
            with open(f"/proc/{pid}/{name}_map", "w") as handle:
                handle.write(args.value(f"{name}-map").replace(",", "\n") + "\n")
        _pin(f"/proc/{pid}/ns/user", args.value("dir"), "user")
        os.write(go_w, b"g")
        report = b""
        while chunk := os.read(result_r, 4096):
            report += chunk
        if report != b"ok":
            status, _, message = report.decode(errors="replace").partition(" ")
            print(message or "pinns: the user namespace child failed", file=sys.stderr)
            return int(status) if status.isdigit() else 1
        for kind in kinds:
            _pin(f"/proc/{pid}/ns/{kind}", args.value("dir"), kind)
        return 0
    finally:
        os.close(go_w)
        os.waitpid(pid, 0)


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
