"""Start a pod's infra process (catatonit) in the pod's namespaces, without a runtime or an image.

Run as a short-lived helper: it joins the pod's user namespace (when it has one: first, as it owns the
others, and the PID namespace unshared next is then the user namespace's too, so containers in it can join
it), the pod's network, IPC and UTS namespaces, unshares a mount and
(for NamespaceMode POD) a PID namespace, and forks. The child joins the pod cgroup, pivots into an empty
tmpfs root that holds only the init binary (so it keeps no host mount, and so pins no other pod's
namespace), and execs it as PID 1. The helper prints "<pid> <start time>" and exits once the exec
succeeded; the infra process lives on, reparented to the daemon (a child subreaper) or init.
"""

import os
import sys

from adapters.namespaces import linux
from adapters.namespaces.helper_args import parse_helper_args

_JOIN = (
    ("user", linux.CLONE_NEWUSER),
    ("net", linux.CLONE_NEWNET),
    ("ipc", linux.CLONE_NEWIPC),
    ("uts", linux.CLONE_NEWUTS),
)


def main(argv: list[str]) -> int:
    args = parse_helper_args(
        "infra-launcher",
        argv,
        single=("user", "net", "ipc", "uts", "rootfs", "init", "pid-file"),
        repeated=("cgroup-procs",),
        flags=("new-pid",),
        required=("rootfs", "init", "pid-file"),
    )
    for kind, nstype in _JOIN:
        path = args.value(kind)
        if path:
            linux.setns(path, nstype)
    if args.flag("new-pid"):
        linux.unshare(linux.CLONE_NEWPID)  # applies to the next child, not to this process
    devnull = os.open("/dev/null", os.O_RDWR)
    read_end, write_end = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        try:
            _become_infra(
                args.value("rootfs"),
                args.value("init"),
                args.values("cgroup-procs"),
                devnull,
                bool(args.value("user")),
            )
        except BaseException as err:  # report anything to the parent, never run on
            os.write(write_end, f"{type(err).__name__}: {err}".encode())
        os._exit(127)
    os.close(write_end)
    failure = b""
    while chunk := os.read(read_end, 4096):
        failure += chunk
    if failure:
        os.waitpid(pid, 0)
        print(f"infra process failed to start: {failure.decode(errors='replace')}", file=sys.stderr)
        return 1
    start_time = linux.process_start_time(pid)
    if start_time is None:
        print("infra process exited right after it started", file=sys.stderr)
        return 1
    pid_file = args.value("pid-file")
    tmp = pid_file + ".tmp"
    with open(tmp, "w") as handle:
        handle.write(f"{pid} {start_time}\n")
    os.replace(tmp, pid_file)
    print(f"{pid} {start_time}")
    return 0


def _become_infra(rootfs: str, init: str, cgroup_procs: list[str], devnull: int, in_userns: bool) -> None:
    for procs in cgroup_procs:
        with open(procs, "w") as handle:
            handle.write("0")  # 0: the writing process itself, whatever pid namespace it is in
    os.setsid()
    # A mount namespace of the child's own: pivot_root moves every process of a namespace.
    linux.unshare(linux.CLONE_NEWNS)
    linux.mount(None, "/", None, linux.MS_REC | linux.MS_PRIVATE)
    # In a user namespace the tmpfs is its root's (uid=0 there), for the files made in it below.
    owner = ",uid=0,gid=0" if in_userns else ""
    linux.mount("tmpfs", rootfs, "tmpfs", linux.MS_NOSUID | linux.MS_NODEV, f"size=64k,mode=0755{owner}")
    os.chdir(rootfs)
    if in_userns:
        # Become the pod's root once the host-owned paths are behind: its host uid may not traverse the run
        # dir, and the host's root, unmapped in the namespace, may not make files in the tmpfs.
        os.setresgid(0, 0, 0)
        os.setresuid(0, 0, 0)
    # Under its own name, so `ps` on the node shows what each pod's PID 1 is.
    name = os.path.basename(init)
    os.close(os.open(name, os.O_CREAT | os.O_WRONLY, 0o755))
    linux.mount(init, name, None, linux.MS_BIND)
    linux.mount(None, name, None, linux.MS_BIND | linux.MS_REMOUNT | linux.MS_RDONLY)
    os.mkdir("old")
    linux.pivot_root(".", "old")
    os.chdir("/")
    linux.umount2("/old", linux.MNT_DETACH)
    os.rmdir("/old")
    linux.mount(None, "/", None, linux.MS_REMOUNT | linux.MS_BIND | linux.MS_RDONLY | linux.MS_NOSUID)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.execv("/" + name, ["/" + name, "-P"])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
