"""Bundles as directories under the runtime's run dir: `<root>/<id>/config.json`, readable by root only."""

import json
import os
import shutil
from pathlib import Path
from typing import Any

from adapters.host.no_space import no_space_left
from domain.names import check_plain_name


class DirectoryBundles:
    def __init__(self, root: Path) -> None:
        self._root = root

    def path(self, container_id: str) -> Path:
        return self._root / check_plain_name("container id", container_id)

    def write(self, container_id: str, spec: dict[str, Any]) -> Path:
        """The spec holds the container's environment (often secrets): root's alone, 0600 in a 0700 dir.

        Written to a temporary name and renamed, so the runtime never reads half a spec; not fsynced: the
        bundle lives in the run dir, volatile by design (tmpfs on most hosts), and after a power loss the
        container it describes is gone with it."""
        bundle = self.path(container_id)
        # The create's rollback removes what was made.
        with no_space_left(f"for the bundle of container {container_id} in {self._root}"):
            self._write(bundle, spec)
        return bundle

    @staticmethod
    def _write(bundle: Path, spec: dict[str, Any]) -> None:
        bundle.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(bundle, 0o700)
        temporary = bundle / ".config.json.tmp"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), 0o600)
            handle.write(json.dumps(spec).encode())
        temporary.replace(bundle / "config.json")

    def remove(self, container_id: str) -> None:
        shutil.rmtree(self.path(container_id), ignore_errors=True)
