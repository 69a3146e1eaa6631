"""Shared pieces of the container contract suites: a busybox rootfs, bundles, host clean-up checks.

The rootfs holds Debian's busybox-static (its shell runs applets without exec, which is all these tests
need). Bundles get a config.json from the domain's own spec builder, with host network and IPC (no pod
sandbox here), a private PID namespace and a cgroup under `pycrio-test-containers/`.
"""

import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from adapters.host.facts import read_host_facts
from domain.container_config import (
    ContainerConfig,
    ImageConfig,
    NamespaceMode,
    NamespaceOptions,
    Resources,
    SandboxFacts,
    SecurityContext,
    SecurityProfile,
)
from domain.oci_spec import SpecInputs, build_spec

BUSYBOX = Path("/bin/busybox")
APPLETS = (
    "sh", "echo", "cat", "sleep", "ls", "id", "tail", "head", "tr", "true", "false", "ps", "grep", "wc",
    "touch", "mount", "umount", "mkdir", "stat", "readlink", "hostname", "test",
)  # fmt: skip
CGROUP_ROOT = Path("/sys/fs/cgroup")
TEST_CGROUP = "pycrio-test-containers"


def build_busybox_rootfs(target: Path) -> Path:
    """A minimal root filesystem: busybox, the libraries it links (none for busybox-static), applet links,
    /etc/passwd and /etc/group.

    Debian's busybox and busybox-static conflict, so whichever is installed is used: the dynamic one comes
    with its libc, and then its shell execs the applet links as real files.
    """
    for directory in ("bin", "etc", "proc", "sys", "dev", "tmp", "root", "home/app"):
        (target / directory).mkdir(parents=True, exist_ok=True)
    shutil.copy2(BUSYBOX, target / "bin" / "busybox")
    for library in _linked_libraries(BUSYBOX):
        destination = target / library.lstrip("/")
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(library, destination)
    for applet in APPLETS:
        (target / "bin" / applet).symlink_to("busybox")
    (target / "etc" / "passwd").write_text(
        "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n"
    )
    (target / "etc" / "group").write_text("root:x:0:\napp:x:1000:\nextra:x:2000:app\n")
    return target


def _linked_libraries(binary: Path) -> list[str]:
    """Absolute paths of the shared objects `binary` loads, its dynamic loader included."""
    result = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, check=False)
    libraries = []
    for line in result.stdout.splitlines():
        for word in line.split():
            if word.startswith("/") and Path(word).exists():
                libraries.append(word)
    return libraries


def unique_id(prefix: str = "pctest") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def make_bundle(
    bundle: Path,
    rootfs: Path,
    container_id: str,
    cgroup_parent: str,
    command: list[str],
    memory_limit: int = 0,
    tty: bool = False,
) -> dict[str, Any]:
    config = ContainerConfig(
        name=container_id,
        command=tuple(command),
        tty=tty,
        resources=Resources(memory_limit_in_bytes=memory_limit),
        security=SecurityContext(
            namespace_options=NamespaceOptions(network=NamespaceMode.NODE, ipc=NamespaceMode.NODE),
            seccomp=SecurityProfile(),
        ),
    )
    inputs = SpecInputs(
        container_id=container_id,
        config=config,
        image=ImageConfig(),
        image_name="busybox",
        sandbox=SandboxFacts(id="contract", cgroup_parent=cgroup_parent),
        host=read_host_facts("cgroupfs"),
        rootfs=str(rootfs),
        passwd=(rootfs / "etc" / "passwd").read_text(),
        group=(rootfs / "etc" / "group").read_text(),
    )
    spec = build_spec(inputs)
    bundle.mkdir(parents=True, exist_ok=True)
    (bundle / "config.json").write_text(json.dumps(spec))
    return spec


def cgroup_dirs(relative: str) -> list[Path]:
    """The cgroup directory of `relative` in every v1 controller that has it."""
    found = []
    for controller in CGROUP_ROOT.iterdir():
        path = controller / relative.lstrip("/")
        if path.is_dir():
            found.append(path)
    return found


def remove_cgroups(relative: str) -> list[Path]:
    """Remove `relative` (deepest first) in every controller; returns what could not be removed."""
    left = []
    for path in cgroup_dirs(relative):
        for child in sorted((p for p in path.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
            try:
                child.rmdir()
            except OSError:
                left.append(child)
        try:
            path.rmdir()
        except OSError:
            left.append(path)
    return left


def processes_matching(text: str) -> list[int]:
    """Host pids whose command line contains `text` (zombies have none and are not listed)."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry.name}/cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if text.encode() in cmdline:
            found.append(int(entry.name))
    return found


def cgroup_parent_for(name: str) -> Iterator[str]:
    """A fresh cgroup parent under the test prefix; afterwards it must be gone again."""
    parent = f"/{TEST_CGROUP}/{name}-{uuid.uuid4().hex[:8]}"
    yield parent
    left = remove_cgroups(parent)
    assert not left, f"cgroups left behind: {left}"
