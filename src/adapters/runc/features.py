"""What an OCI runtime supports, from its `features` subcommand (runtime-spec features.md).

Recursive read-only mounts need both the runtime (`rro` among its mount options) and the kernel
(mount_setattr, Linux 5.12); containerd answers RuntimeHandlerFeatures the same way. A runtime without
the subcommand (crun 1.8) supports nothing this asks about.
"""

import json
import os

from adapters.process import runner
from domain.errors import PycrioError


def _kernel_at_least(major: int, minor: int, release: str | None = None) -> bool:
    parts = (release or os.uname().release).split(".")
    try:
        return (int(parts[0]), int(parts[1].split("-")[0])) >= (major, minor)
    except (IndexError, ValueError):
        return False


def supports_recursive_read_only(
    binary: str, timeout: float = 10.0, kernel_release: str | None = None
) -> bool:
    try:
        result = runner.run([binary, "features"], timeout=timeout, check=False)
    except (OSError, PycrioError):
        return False
    if result.returncode != 0:
        return False
    try:
        options = json.loads(result.stdout).get("mountOptions") or []
    except (ValueError, AttributeError):
        return False
    return "rro" in options and _kernel_at_least(5, 12, kernel_release)
