"""ImageUsers answered from the root file systems the layer store holds for containers.

A container holds a root file system from CreateContainer to RemoveContainer, which is exactly the time
its image must not be removed. The containers service may replace this with its own records.
"""

from ports.layer_store import LayerStore


class RootfsImageUsers:
    def __init__(self, layers: LayerStore) -> None:
        self._layers = layers

    def containers_using(self, image_id: str) -> list[str]:
        return sorted(r.container_id for r in self._layers.list_rootfs() if r.image_id == image_id)
