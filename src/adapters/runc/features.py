"""What an OCI runtime supports, from its `features` subcommand (runtime-spec features.md).

Recursive read-only mounts need both the runtime (`rro` among its mount options) and the kernel
(mount_setattr, Linux 5.12); containerd answers RuntimeHandlerFeatures the same way. User namespaces need
idmapped mounts (the kubelet's volumes are bind mounts the runtime must idmap): the runtime lists the `idmap`
or `ridmap` mount option or `linux.mountExtensions.idmap.enabled`, and the kernel idmaps overlayfs layers
(Linux 5.19), which pycrio does for the rootfs itself. A runtime without the subcommand (crun 1.8)
supports nothing this asks about. Each "no" carries the reason, for the refusal of a user-namespaced pod.
"""

import json
import os
from dataclasses import dataclass
from typing import Any

from adapters.process import runner
from domain.errors import PycrioError


@dataclass(frozen=True)
class RuntimeFeatures:
    recursive_read_only: bool = False
    idmapped_mounts: bool = False
    # Why idmapped_mounts is False ("" when it is True).
    idmap_reason: str = ""


def _kernel_at_least(major: int, minor: int, release: str | None = None) -> bool:
    parts = (release or os.uname().release).split(".")
    try:
        return (int(parts[0]), int(parts[1].split("-")[0])) >= (major, minor)
    except (IndexError, ValueError):
        return False


def runtime_features(
    binary: str, timeout: float = 10.0, kernel_release: str | None = None
) -> RuntimeFeatures:
    """Run `<binary> features` once and read what pycrio asks of it."""
    try:
        result = runner.run([binary, "features"], timeout=timeout, check=False)
    except (OSError, PycrioError) as err:
        return RuntimeFeatures(idmap_reason=f"`{binary} features` could not run: {err}")
    if result.returncode != 0:
        first = result.stderr.decode(errors="replace").strip().splitlines()[:1]
        return RuntimeFeatures(
            idmap_reason=f"`{binary} features` failed ({' '.join(first) or result.returncode}); "
            "a runtime without it cannot say it idmaps mounts"
        )
    try:
        document = json.loads(result.stdout)
    except ValueError:
        document = None
    if not isinstance(document, dict):
        return RuntimeFeatures(idmap_reason=f"`{binary} features` printed no JSON object")
    options = document.get("mountOptions") or []
    rro = "rro" in options and _kernel_at_least(5, 12, kernel_release)
    reason = ""
    if not ("idmap" in options or "ridmap" in options or _idmap_extension(document)):
        version = document.get("ociVersionMax", "?")
        reason = (
            f"`{binary} features` (ociVersionMax {version}) lists no idmap/ridmap mount option and no "
            "linux.mountExtensions.idmap: it cannot idmap the pod's volume mounts"
        )
    elif not _kernel_at_least(5, 19, kernel_release):
        reason = (
            f"kernel {kernel_release or os.uname().release} cannot idmap overlayfs layers (5.19 or newer)"
        )
    return RuntimeFeatures(recursive_read_only=rro, idmapped_mounts=not reason, idmap_reason=reason)


def _idmap_extension(document: dict[str, Any]) -> bool:
    linux = document.get("linux")
    extensions = linux.get("mountExtensions") if isinstance(linux, dict) else None
    idmap = extensions.get("idmap") if isinstance(extensions, dict) else None
    return isinstance(idmap, dict) and idmap.get("enabled") is True
