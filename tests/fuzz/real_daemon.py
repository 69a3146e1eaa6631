"""A private real daemon for the fuzz suites (runc, conmon, CNI, overlay storage, cgroups), and what keeps
random requests from damaging this shared machine: host paths (mount sources, devices, log directories,
cgroup parents) moved under a scratch directory, mounts made read-only, harmless commands. When the daemon
stops nothing may be left: no mount, runc container or cgroup, and no path created outside its dirs."""

import os
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from adapters.cri.generated import api_pb2 as pb
from tests.contract.container_host import cgroup_dirs, remove_cgroups, remove_test_root_if_empty
from tests.cri_client import CriClient
from tests.e2e.containers_support import force_delete_runc_containers, start_private_daemon
from tests.fuzz.sequences import clean_up

SAFE_COMMANDS = [["/bin/true"], ["/bin/echo", "fuzz"], ["/bin/sleep", "1000"], ["/bin/sh", "-c", "exit 3"]]
# Paths a request may name that did not exist before; none may exist after.
WATCHED = ["/data", "/var/log/pods/x", "/tmp/relative", "/proc/sys/kernel/fuzz", "/etc/fuzz", "/a", "/b"]


@contextmanager
def confined_daemon(
    work: Path, name: str, bridge: str, subnet: str, settings: Sequence[str] = ()
) -> Iterator[tuple[CriClient, str]]:
    """(client, cgroup parent) of a daemon on `work` (`work/scratch` for the confined paths); checks on the
    way out that it left nothing behind."""
    (work / "scratch").mkdir(exist_ok=True)
    daemon, parent = start_private_daemon(work, name, bridge=bridge, subnet=subnet, settings=settings)
    before = {path for path in WATCHED if os.path.lexists(path)}
    try:
        yield daemon.client, parent
    finally:
        clean_up(daemon.client)
        daemon.stop()
        subprocess.run(["ip", "link", "del", bridge], capture_output=True, check=False)
        mounts = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()
                  if str(work) in line.split()[4]]  # fmt: skip
        for point in sorted(mounts, key=len, reverse=True):  # cleaned first, then reported
            subprocess.run(["umount", "-l", point], capture_output=True, check=False)
        runc = force_delete_runc_containers(work / "runc")
        cgroups = cgroup_dirs(parent[1:])
        nested = [c for c in cgroups if c.name != parent.rsplit("/", 1)[-1]]
        remove_cgroups(parent)
        remove_test_root_if_empty()
        assert mounts == [], f"mounts left: {mounts}"
        assert runc == [], f"runc containers left: {runc}"
        assert nested == [], f"cgroups left: {nested}"
        assert {path for path in WATCHED if os.path.lexists(path)} == before


def confined(request: Any, scratch: Path, parent: str) -> Any:
    """The request with host paths under `scratch`, read-only mounts and harmless commands (see above)."""

    def inside(path: str) -> str:
        return str(scratch / path.lstrip("/")) if path else path

    config = getattr(request, "config", None)
    if isinstance(request, pb.RunPodSandboxRequest):
        request.config.log_directory = inside(request.config.log_directory)
        if request.config.linux.cgroup_parent:
            request.config.linux.cgroup_parent = parent + "/" + request.config.linux.cgroup_parent.strip("/")
    if isinstance(request, pb.CreateContainerRequest):
        assert config is not None
        for mount in config.mounts:
            mount.host_path, mount.readonly = inside(mount.host_path), True
            mount.propagation = pb.PROPAGATION_PRIVATE
        for device in config.devices:
            device.host_path = "/dev/null"
        config.linux.security_context.privileged = False
        config.linux.security_context.seccomp.localhost_ref = inside(
            config.linux.security_context.seccomp.localhost_ref
        )
        del config.command[:], config.args[:]
        config.command.extend(SAFE_COMMANDS[len(config.metadata.name) % len(SAFE_COMMANDS)])
        request.sandbox_config.log_directory = inside(request.sandbox_config.log_directory)
    if isinstance(request, (pb.ExecSyncRequest, pb.ExecRequest)):
        del request.cmd[:]
        request.cmd.extend(["/bin/echo", "fuzz"])
    return request
