"""An in-memory ImageStore: a dict of records, with the same look-ups as the real one."""

import threading

from ports.image_store import ImageRecord


class InMemoryImageStore:
    def __init__(self) -> None:
        self._images: dict[str, ImageRecord] = {}
        self._lock = threading.Lock()

    def put(self, image: ImageRecord) -> None:
        with self._lock:
            self._images[image.id] = image

    def delete(self, image_id: str) -> None:
        with self._lock:
            self._images.pop(image_id, None)

    def get(self, image_id: str) -> ImageRecord | None:
        with self._lock:
            return self._images.get(image_id)

    def by_id_prefix(self, prefix: str) -> list[ImageRecord]:
        with self._lock:
            return [i for k, i in sorted(self._images.items()) if k.startswith(prefix)]

    def by_tag(self, repo_tag: str) -> ImageRecord | None:
        with self._lock:
            return next((i for i in self._images.values() if repo_tag in i.repo_tags), None)

    def by_digest(self, repo_digest: str) -> ImageRecord | None:
        with self._lock:
            return next((i for i in self._images.values() if repo_digest in i.repo_digests), None)

    def list_images(self) -> list[ImageRecord]:
        with self._lock:
            return [i for _, i in sorted(self._images.items())]
