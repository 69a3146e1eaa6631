"""The fuzz suite, bounded, against the real daemon: runc, conmon, CNI, overlay storage, cgroups.

Fewer examples and a wider time budget than the fakes' run. Requests are as random as there, except what
would let a random request damage this shared machine: host paths (mount sources, devices, log
directories, cgroup parents) are moved under a scratch directory and mounts made read-only, and the commands
containers and execs run are harmless. Afterwards nothing may be left: no pod, container, runc container,
mount or cgroup, and nothing created outside the daemon's dirs and the scratch directory.

More examples: PYCRIO_FUZZ_REAL_EXAMPLES=200.
"""

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.cri.generated import api_pb2 as pb
from tests.contract.container_host import cgroup_dirs, remove_cgroups, remove_test_root_if_empty
from tests.cri_client import CriClient
from tests.e2e.containers_support import force_delete_runc_containers, start_private_daemon
from tests.fuzz.messages import Known
from tests.fuzz.sequences import clean_up, fuzz_settings, run_sequence

BUDGET = 60.0
SAFE_COMMANDS = [["/bin/true"], ["/bin/echo", "fuzz"], ["/bin/sleep", "1000"], ["/bin/sh", "-c", "exit 3"]]
# Paths a request may name that did not exist before; none may exist after.
WATCHED = ["/data", "/var/log/pods/x", "/tmp/relative", "/proc/sys/kernel/fuzz", "/etc/fuzz", "/a", "/b"]


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[CriClient, Path, str]]:
    work = tmp_path_factory.mktemp("fuzz-real")
    (work / "scratch").mkdir()
    daemon, parent = start_private_daemon(work, "fuzz", bridge="pcfuzz0", subnet="10.94.0.0/24")
    before = {path for path in WATCHED if os.path.lexists(path)}
    try:
        yield daemon.client, work, parent
    finally:
        clean_up(daemon.client)
        daemon.stop()
        subprocess.run(["ip", "link", "del", "pcfuzz0"], capture_output=True, check=False)
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


@fuzz_settings("PYCRIO_FUZZ_REAL_EXAMPLES", 40)
@given(data=st.data())
def test_random_calls_against_the_real_daemon(real: tuple[CriClient, Path, str], data: st.DataObject) -> None:
    client, work, parent = real
    scratch = work / "scratch"
    known = Known(log_directory=str(scratch / "logs"))
    run_sequence(client, data, known, calls=6, budget=BUDGET, allow_huge=False,
                 confine=lambda request: confined(request, scratch, parent))  # fmt: skip
    assert not client.runtime.ListPodSandbox(pb.ListPodSandboxRequest()).items
    assert not client.runtime.ListContainers(pb.ListContainersRequest()).containers
