"""CheckpointArchives as one JSON file per archive: the dumps, the CRIU images' bytes, the layer's files.

Work directories are real (the runtime, fake or real, writes CRIU images into them); an archive is a JSON
document written at its location. Only regular files of the writable layer are carried, and no deletions:
what overlayfs whiteouts mean is the real adapter's business (tests/contract/test_checkpoint_archives.py).
"""

import base64
import json
import os
import shutil
from collections.abc import Collection
from pathlib import Path

from domain.errors import InvalidArgument
from ports.checkpoints import CRIU_IMAGES, CheckpointDumps


class FakeCheckpointArchives:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.exported: list[str] = []  # every location written, in order

    def prepare(self, container_id: str) -> Path:
        work = self.root / container_id
        shutil.rmtree(work, ignore_errors=True)
        (work / CRIU_IMAGES).mkdir(parents=True)
        return work

    def export(
        self,
        container_id: str,
        location: str,
        dumps: CheckpointDumps,
        writable_layer: str,
        skip: Collection[str],
        log_path: str,
    ) -> None:
        images = self.root / container_id / CRIU_IMAGES
        layer = Path(writable_layer)
        files = {}
        if layer.is_dir():
            for path in sorted(layer.rglob("*")):
                inside = "/" + path.relative_to(layer).as_posix()
                if path.is_file() and not path.is_symlink() and inside not in skip:
                    files[inside] = base64.b64encode(path.read_bytes()).decode()
        document = {
            "config": dict(dumps.config),
            "spec": dict(dumps.spec),
            "images": {p.name: base64.b64encode(p.read_bytes()).decode() for p in images.iterdir()},
            "files": files,
        }
        try:
            fd = os.open(location, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        except OSError as err:
            raise InvalidArgument(f"location: {location!r} cannot be written: {err.strerror}") from None
        with os.fdopen(fd, "w") as handle:
            json.dump(document, handle)
        self.exported.append(location)

    def _load(self, location: str) -> dict[str, dict[str, object]]:
        try:
            document: dict[str, dict[str, object]] = json.loads(Path(location).read_text())
        except FileNotFoundError:
            raise InvalidArgument(f"image.image: checkpoint archive {location!r} not found") from None
        except (ValueError, UnicodeDecodeError):
            raise InvalidArgument(f"image.image: {location!r} is not a checkpoint archive") from None
        if not isinstance(document, dict) or not isinstance(document.get("spec"), dict):
            raise InvalidArgument(f"image.image: {location!r} is not a checkpoint archive (no spec.dump)")
        return document

    def read_dumps(self, location: str) -> CheckpointDumps:
        document = self._load(location)
        return CheckpointDumps(config=document["config"], spec=document["spec"])

    def unpack(self, container_id: str, location: str, rootfs: str) -> Path:
        document = self._load(location)
        images = self.prepare(container_id) / CRIU_IMAGES
        for name, data in document["images"].items():
            (images / name).write_bytes(base64.b64decode(str(data)))
        root = Path(rootfs)
        if root.is_dir():  # the fake rootfs adapter's paths do not exist
            for inside, data in document["files"].items():
                target = root / inside.lstrip("/")
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(base64.b64decode(str(data)))
        if not (images / "inventory.img").is_file():
            raise InvalidArgument(f"image.image: {location!r} holds no CRIU images")
        return images

    def remove(self, container_id: str) -> None:
        shutil.rmtree(self.root / container_id, ignore_errors=True)
