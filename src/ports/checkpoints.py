"""Checkpoint archives: the tar file CheckpointContainer writes and a restore reads.

The layout is the one cri-o and Podman share (checkpointctl reads it): `config.dump` (checkpointctl's
ContainerConfig), `spec.dump` (the OCI spec the container ran with), `checkpoint/` (CRIU's images),
`rootfs-diff.tar` and `deleted.files` (what the container changed in its writable layer), CRIU's `dump.log`
and `stats-dump`, and the container's log. Each container being checkpointed or waiting for its restore has
a work directory of its own, which holds the CRIU images until they are archived or restored.
"""

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

CONFIG_DUMP = "config.dump"
SPEC_DUMP = "spec.dump"
CRIU_IMAGES = "checkpoint"
ROOTFS_DIFF = "rootfs-diff.tar"
DELETED_FILES = "deleted.files"
# cri-o's name for the container's log inside the archive (its LogPath annotation key).
LOG_FILE = "io.kubernetes.cri-o.LogPath"


@dataclass(frozen=True)
class CheckpointDumps:
    config: Mapping[str, Any]  # config.dump
    spec: Mapping[str, Any]  # spec.dump


class CheckpointArchives(Protocol):
    def prepare(self, container_id: str) -> Path:
        """A fresh, empty work directory for the container's checkpoint (CRIU's images go into its
        `checkpoint/`, CRIU's logs into the directory itself)."""
        ...

    def export(
        self,
        container_id: str,
        location: str,
        dumps: CheckpointDumps,
        writable_layer: str,
        skip: Collection[str],
        log_path: str,
    ) -> None:
        """Write the archive to `location` (mode 0600: it holds every memory page of the processes): the
        dumps, the work directory's CRIU images and logs, the writable layer's changes except the container
        paths in `skip` (mount points), and the log at `log_path` when there is one."""
        ...

    def read_dumps(self, location: str) -> CheckpointDumps:
        """The dumps of the archive at `location`; InvalidArgument naming what is missing when it is none."""
        ...

    def unpack(self, container_id: str, location: str, rootfs: str) -> Path:
        """Unpack the archive's CRIU images into the container's work directory and apply its file changes
        to `rootfs` (never through a symlink); returns the directory of the images."""
        ...

    def remove(self, container_id: str) -> None:
        """Delete the container's work directory; idempotent."""
        ...
