"""Who uses an image: RemoveImage must refuse while a container was created from it.

The containers service implements this from its own records. Until it does, pycrio answers from the
root file systems the layer store holds for containers (`adapters/storage/image_users.py`).
"""

from typing import Protocol


class ImageUsers(Protocol):
    def containers_using(self, image_id: str) -> list[str]:
        """Ids of the containers created from the image, sorted; empty when none."""
        ...
