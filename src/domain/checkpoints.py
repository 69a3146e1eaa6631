"""Checkpoint/restore rules, as cri-o applies them (server/container_checkpoint.go, container_restore.go).

A checkpoint archive is named where an image would be: CreateContainer whose `image.image` is an absolute
path restores the container checkpointed there, into the request's pod. The restored container keeps what
CRIU needs unchanged (the process, its environment, the terminal, the masked and read-only paths, the
checkpointed container's annotations) and takes the rest from the request: name, attempt, labels, log path,
resources, security context and the sources of its bind mounts. Every bind mount of the checkpointed
container must be given again by the request, or a restore could mount host paths nobody asked for.
"""

import json
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from domain.container_config import ContainerConfig, Mount, SecurityContext
from domain.errors import InvalidArgument

# cri-o's words when checkpoint/restore cannot be used (a restore's refusal starts with them).
CHECKPOINT_UNSUPPORTED = "checkpoint/restore support not available"
# CheckpointContainer's refusal, word for word: the kubelet's checkpoint e2e test skips on UNIMPLEMENTED
# only with this text (its form for "the engine has switched it off"; containerd answers the same). cri-o's
# own words it matches only as UNKNOWN, which pycrio never answers. The reason is logged instead.
CHECKPOINT_NOT_IMPLEMENTED = "method CheckpointContainer not implemented"
MAX_LOCATION = 4096  # PATH_MAX

# Container paths whose content is a mount, never part of the writable layer's diff (cri-o's list).
_RUNTIME_MOUNTS = frozenset(
    ("/dev", "/dev/shm", "/proc", "/run", "/run/.containerenv", "/run/secrets", "/sys")
)
# Mounts the runtime makes for every container in its pod: a restore makes them anew for the new pod.
_POD_MOUNTS = frozenset(
    (
        "/proc", "/dev", "/dev/pts", "/dev/mqueue", "/sys", "/sys/fs/cgroup", "/dev/shm", "/etc/resolv.conf",
        "/etc/hostname", "/etc/hosts", "/etc/passwd", "/etc/group", "/run/secrets", "/run/.containerenv",
    )
)  # fmt: skip
# Annotations pycrio adds to every spec (oci_spec._annotations): made anew for the restored container.
_OWN_ANNOTATIONS = "io.kubernetes.cri."
# cri-o keeps the CRI annotations as JSON under this key of its specs.
_CRIO_ANNOTATIONS = "io.kubernetes.cri-o.Annotations"
_CONTAINER_HASH = "io.kubernetes.container.hash"
_POD_UID = "io.kubernetes.pod.uid"


def unsupported(reason: str) -> str:
    """The message of a refused checkpoint or restore: cri-o's text, then why."""
    return f"{CHECKPOINT_UNSUPPORTED}: {reason}" if reason else CHECKPOINT_UNSUPPORTED


def is_archive(image: str) -> bool:
    """An image name never starts with '/': such a name is the path of a checkpoint archive."""
    return image.startswith("/")


def check_location(location: str) -> str:
    if not location:
        raise InvalidArgument("location: empty; name the file the checkpoint archive is written to")
    if not location.startswith("/") or "\0" in location or len(location) > MAX_LOCATION:
        raise InvalidArgument(f"location: {location[:200]!r} must be an absolute path of at most 4096 bytes")
    if location.endswith("/"):
        raise InvalidArgument(f"location: {location[:200]!r} names a directory, not a file")
    return location


def diff_skips(spec: Mapping[str, Any]) -> set[str]:
    """Container paths left out of the rootfs diff: the runtime's mounts and the bind mount points."""
    binds = {m.get("destination", "") for m in spec.get("mounts", []) if m.get("type") == "bind"}
    return set(_RUNTIME_MOUNTS) | binds


def config_dump(
    *,
    container_id: str,
    name: str,
    image: str,
    image_id: str,
    image_name: str,
    runtime: str,
    created_ns: int,
    now_ns: int,
    restored: bool,
) -> dict[str, Any]:
    """checkpointctl's ContainerConfig (config.dump)."""
    return {
        "id": container_id,
        "name": name,
        "rootfsImage": image,
        "rootfsImageRef": image_id,
        "rootfsImageName": image_name,
        "runtime": runtime,
        "createdTime": _rfc3339(created_ns),
        "checkpointedTime": _rfc3339(now_ns),
        "restored": restored,
    }


def _rfc3339(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, UTC).isoformat().replace("+00:00", "Z")


def archive_images(config: Mapping[str, Any]) -> list[str]:
    """The checkpointed container's image, most exact first (its id, then names)."""
    names = [config.get(key) for key in ("rootfsImageRef", "rootfsImageName", "rootfsImage")]
    return [n for n in names if isinstance(n, str) and n]


def restored_config(
    request: ContainerConfig, spec: Mapping[str, Any], pod_uid: str, location: str
) -> ContainerConfig:
    """The config a container restored from `spec` (the archive's spec.dump) is created with."""
    process = spec.get("process") or {}
    linux = spec.get("linux") or {}
    if not isinstance(process, dict) or not isinstance(linux, dict):
        raise InvalidArgument(f"image.image: spec.dump of {location!r} is not an OCI runtime spec")
    security: SecurityContext = replace(
        request.security,
        masked_paths=tuple(linux.get("maskedPaths") or request.security.masked_paths),
        readonly_paths=tuple(linux.get("readonlyPaths") or request.security.readonly_paths),
    )
    envs = tuple(tuple(e.split("=", 1)) for e in process.get("env") or () if "=" in e)
    return replace(
        request,
        command=tuple(str(a) for a in process.get("args") or ()),
        args=(),
        working_dir=str(process.get("cwd") or ""),
        envs=envs,
        tty=bool(process.get("terminal")),
        stdin=False,
        stdin_once=False,
        mounts=_restored_mounts(request.mounts, spec, location),
        annotations=_restored_annotations(request.annotations, spec, pod_uid, location),
        security=security,
    )


def _restored_mounts(
    requested: tuple[Mount, ...], spec: Mapping[str, Any], location: str
) -> tuple[Mount, ...]:
    by_path = {m.container_path.rstrip("/") or "/": m for m in requested}
    mounts, missing = [], []
    for mount in spec.get("mounts") or ():
        destination = str(mount.get("destination", "")).rstrip("/") or "/"
        if destination in _POD_MOUNTS:
            continue
        found = by_path.get(destination)
        if found is None:
            missing.append(destination)
        else:
            mounts.append(found)
    if missing:
        needed = ", ".join(sorted(missing))
        raise InvalidArgument(f"mounts: restoring {location!r} expects these mounts in the request: {needed}")
    return tuple(mounts)


def _restored_annotations(
    requested: Mapping[str, str], spec: Mapping[str, Any], pod_uid: str, location: str
) -> dict[str, str]:
    dumped = spec.get("annotations") or {}
    if _CRIO_ANNOTATIONS in dumped:
        try:
            original = json.loads(dumped[_CRIO_ANNOTATIONS])
        except ValueError:
            raise InvalidArgument(f"image.image: {_CRIO_ANNOTATIONS} of {location!r} is not JSON") from None
    else:
        original = {k: v for k, v in dumped.items() if not k.startswith(_OWN_ANNOTATIONS)}
    annotations = {str(k): str(v) for k, v in original.items()}
    if _POD_UID in annotations and pod_uid:
        annotations[_POD_UID] = pod_uid
    if _CONTAINER_HASH in annotations and _CONTAINER_HASH in requested:
        # The kubelet compares this hash with its pod spec: the old one would make it restart the container.
        annotations[_CONTAINER_HASH] = requested[_CONTAINER_HASH]
    return annotations
