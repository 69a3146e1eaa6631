"""The pod as an OCI runtime spec, for PodSandboxStatus's verbose info.

cri-o and containerd put the pause container's spec under `runtimeSpec` in a pod's verbose info, and node
tooling reads it (`crictl inspectp ... | jq '.info.runtimeSpec.linux.namespaces'` is how operators find a
pod's network namespace). pycrio runs no pause container, so this describes what one would have been
given: the pod's pinned namespaces, hostname, cgroup, sysctls and annotations. A namespace the pod shares
with the host is left out, as in a spec.
"""

from typing import Any

from domain.oci_spec import OCI_VERSION
from domain.sandbox_model import PodSandbox


def sandbox_namespaces(sb: PodSandbox) -> list[dict[str, str]]:
    """The pod's own namespaces with the paths that hold them (joined by its containers)."""
    paths = (
        ("user", sb.namespaces.user),
        ("network", sb.namespaces.network),
        ("ipc", sb.namespaces.ipc),
        ("uts", sb.namespaces.uts),
        ("pid", sb.pid_namespace),
    )
    return [{"type": kind, "path": path} for kind, path in paths if path]


def sandbox_runtime_spec(sb: PodSandbox) -> dict[str, Any]:
    """An OCI-spec-shaped description of the pod sandbox (fields as runtime-spec names them)."""
    meta = sb.config.metadata
    annotations = dict(sb.config.annotations)
    annotations.update(
        {
            "io.kubernetes.cri.container-type": "sandbox",
            "io.kubernetes.cri.sandbox-id": sb.id,
            "io.kubernetes.cri.sandbox-name": meta.name,
            "io.kubernetes.cri.sandbox-namespace": meta.namespace,
            "io.kubernetes.cri.sandbox-uid": meta.uid,
            "io.kubernetes.cri.sandbox-log-directory": sb.config.log_directory,
        }
    )
    linux: dict[str, Any] = {"namespaces": sandbox_namespaces(sb), "sysctl": dict(sb.config.sysctls)}
    if sb.cgroup_path:
        linux["cgroupsPath"] = sb.cgroup_path
    return {
        "ociVersion": OCI_VERSION,
        "hostname": sb.hostname,
        "annotations": annotations,
        "linux": linux,
    }
