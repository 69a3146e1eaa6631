"""Pull metrics, reported by the image service: bytes as they arrive from the registry, and every pull's
outcome."""

import pytest

from adapters.storage.image_users import RootfsImageUsers
from domain import errors
from domain.images import ImageService
from tests.fakes.image_store import InMemoryImageStore
from tests.fakes.layer_store import InMemoryLayerStore
from tests.fakes.metrics import RecordingMetrics
from tests.fakes.registry import InMemoryRegistry
from tests.fakes.signatures import trust_with
from tests.layer_tars import file, layer


def metered_service(
    registry: InMemoryRegistry, layers: InMemoryLayerStore, metrics: RecordingMetrics
) -> ImageService:
    users, trust = RootfsImageUsers(layers), trust_with(registry)
    return ImageService(registry, layers, InMemoryImageStore(), users, trust, metrics=metrics)


def test_bytes_from_the_registry_are_counted_once_per_pull() -> None:
    registry, metrics, layers = InMemoryRegistry(), RecordingMetrics(), InMemoryLayerStore()
    first = layer([file("a", b"x" * 50_000)])
    second = layer([file("b", b"y" * 20_000)])
    registry.add("app", [first, second])
    service = metered_service(registry, layers, metrics)
    service.pull("app")
    assert metrics.pull_bytes == len(first.blob) + len(second.blob)
    service.pull("app")  # already stored: nothing downloaded again
    assert metrics.pull_bytes == len(first.blob) + len(second.blob)


def test_pull_outcomes_are_counted_with_the_error_class() -> None:
    registry, metrics, layers = InMemoryRegistry(), RecordingMetrics(), InMemoryLayerStore()
    registry.add("app", [layer([file("a", b"x")])])
    service = metered_service(registry, layers, metrics)
    service.pull("app")
    with pytest.raises(errors.NotFound):
        service.pull("missing")
    with pytest.raises(errors.InvalidArgument):
        service.pull("")
    service.list_images()  # counts nothing
    assert metrics.pulls == [(True, ""), (False, "NotFound"), (False, "InvalidArgument")]
