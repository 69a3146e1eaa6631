"""Bundles as directories under the runtime's run dir: `<root>/<id>/config.json`."""

import json
import os
import shutil
from pathlib import Path
from typing import Any

from domain.names import check_plain_name


class DirectoryBundles:
    def __init__(self, root: Path) -> None:
        self._root = root

    def path(self, container_id: str) -> Path:
        return self._root / check_plain_name("container id", container_id)

    def write(self, container_id: str, spec: dict[str, Any]) -> Path:
        bundle = self.path(container_id)
        bundle.mkdir(parents=True, exist_ok=True)
        temporary = bundle / ".config.json.tmp"
        with temporary.open("w") as handle:
            json.dump(spec, handle)
            handle.flush()
            os.fsync(handle.fileno())
        temporary.replace(bundle / "config.json")
        return bundle

    def remove(self, container_id: str) -> None:
        shutil.rmtree(self.path(container_id), ignore_errors=True)
