"""The real OCI runtimes the contract suites run against, and whether this host accepts each one."""

import functools
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.contract.container_host import build_busybox_rootfs, make_bundle, remove_cgroups, unique_id

CRUN_HYBRID_REFUSAL = "cgroups in hybrid mode not supported"
RUNTIME_BINARIES = {"runc": "/usr/sbin/runc", "crun": "/usr/bin/crun"}


@functools.cache
def refusal(name: str) -> str | None:
    """Why this host cannot run containers with `name`, found by running one; None when it can.

    Only crun's documented refusal of hybrid cgroup layouts counts as a reason (MACHINE.md); any other
    failure is returned as None so that the suite runs and shows it.
    """
    if name != "crun":
        return None
    with tempfile.TemporaryDirectory(prefix="pctest-crun-probe-") as scratch:
        work = Path(scratch)
        rootfs = build_busybox_rootfs(work / "rootfs")
        container_id = unique_id("pctest-probe")
        parent = f"/pycrio-test-containers/probe-{container_id}"
        make_bundle(work / "bundle", rootfs, container_id, parent, ["/bin/true"])
        root = work / "state"
        result = subprocess.run(
            [
                RUNTIME_BINARIES[name],
                "--root",
                str(root),
                "run",
                "--bundle",
                str(work / "bundle"),
                container_id,
            ],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=60,
            check=False,
        )
        subprocess.run([RUNTIME_BINARIES[name], "--root", str(root), "delete", "--force", container_id],
                       capture_output=True, timeout=60, check=False)  # fmt: skip
        remove_cgroups(parent)
        text = (result.stderr + result.stdout).decode(errors="replace")
        if result.returncode != 0 and CRUN_HYBRID_REFUSAL in text:
            return f"crun refuses this host: {text.strip()}"
    return None


def installed(name: str) -> bool:
    return shutil.which(RUNTIME_BINARIES[name]) is not None
