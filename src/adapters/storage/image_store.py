"""Image records kept in memory for lookups and persisted through the StateStore (kind `images`)."""

import threading
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

import structlog

from domain.errors import Internal
from ports.image_store import ImageConfig, ImageRecord
from ports.state_store import StateStore

IMAGE_KIND = "images"
_log = structlog.get_logger("pycrio.images")


def to_document(image: ImageRecord) -> dict[str, Any]:
    return asdict(image)


def from_document(doc: dict[str, Any]) -> ImageRecord:
    try:
        config = doc["config"]
        return ImageRecord(
            id=doc["id"],
            repo_tags=tuple(doc["repo_tags"]),
            repo_digests=tuple(doc["repo_digests"]),
            layers=tuple(doc["layers"]),
            size=int(doc["size"]),
            config=ImageConfig(
                user=config["user"],
                env=tuple(config["env"]),
                entrypoint=tuple(config["entrypoint"]),
                cmd=tuple(config["cmd"]),
                working_dir=config["working_dir"],
                volumes=tuple(config["volumes"]),
                stop_signal=config["stop_signal"],
                labels=dict(config["labels"]),
            ),
            oci_config=dict(doc.get("oci_config") or {}),
            pulled_at=int(doc.get("pulled_at", 0)),
        )
    except (KeyError, TypeError, ValueError) as err:
        raise Internal(f"image record {doc.get('id')!r} is corrupt: {err!r}") from err


class StateImageStore:
    def __init__(self, state: StateStore) -> None:
        self._state = state
        self._lock = threading.Lock()
        self._images = _readable(state.list(IMAGE_KIND))

    def put(self, image: ImageRecord) -> None:
        with self._lock:
            self._state.put(IMAGE_KIND, image.id, to_document(image))
            self._images[image.id] = image

    def delete(self, image_id: str) -> None:
        with self._lock:
            if image_id in self._images:
                self._state.delete(IMAGE_KIND, image_id)
                del self._images[image_id]

    def get(self, image_id: str) -> ImageRecord | None:
        with self._lock:
            return self._images.get(image_id)

    def by_id_prefix(self, prefix: str) -> list[ImageRecord]:
        with self._lock:
            return [image for key, image in sorted(self._images.items()) if key.startswith(prefix)]

    def by_tag(self, repo_tag: str) -> ImageRecord | None:
        with self._lock:
            return next((i for i in self._images.values() if repo_tag in i.repo_tags), None)

    def by_digest(self, repo_digest: str) -> ImageRecord | None:
        with self._lock:
            return next((i for i in self._images.values() if repo_digest in i.repo_digests), None)

    def list_images(self) -> list[ImageRecord]:
        with self._lock:
            return [image for _, image in sorted(self._images.items())]


def _readable(documents: Mapping[str, dict[str, Any]]) -> dict[str, ImageRecord]:
    """The records that make an image; a damaged one is reported and skipped (the image reads as absent and
    a pull records it afresh) rather than keeping the daemon from starting."""
    images = {}
    for key, doc in documents.items():
        try:
            images[key] = from_document(doc)
        except Internal as err:
            _log.error("unreadable image record skipped", id=key, error=str(err))
    return images
