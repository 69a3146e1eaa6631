"""In-memory Bundles: specs kept by bundle path (FakeOciRuntime reads them through `read`)."""

import copy
from pathlib import Path
from typing import Any

from domain.names import check_plain_name


class InMemoryBundles:
    def __init__(self, root: Path = Path("/fake-bundles")) -> None:
        self._root = root
        self.specs: dict[Path, dict[str, Any]] = {}

    def path(self, container_id: str) -> Path:
        return self._root / check_plain_name("container id", container_id)

    def write(self, container_id: str, spec: dict[str, Any]) -> Path:
        path = self.path(container_id)
        self.specs[path] = copy.deepcopy(spec)
        return path

    def read(self, bundle: Path) -> dict[str, Any]:
        return copy.deepcopy(self.specs[bundle])

    def remove(self, container_id: str) -> None:
        self.specs.pop(self.path(container_id), None)
