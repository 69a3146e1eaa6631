"""Pull metrics: bytes counted through the registry decorator during a real ImageService pull, and
PullImage outcomes counted by the handler decorator over a real gRPC server."""

from pathlib import Path

import grpc
import pytest

from adapters.cri.generated import api_pb2 as pb
from adapters.cri.server import CriServer
from adapters.cri.services import image_service, runtime_service
from adapters.metrics.pulls import MeteredRegistry, PullMetricsHandlers
from adapters.storage.image_users import RootfsImageUsers
from domain import errors
from domain.images import ImageService
from tests.cri_client import connect
from tests.fakes.image_store import InMemoryImageStore
from tests.fakes.layer_store import InMemoryLayerStore
from tests.fakes.metrics import RecordingMetrics
from tests.fakes.signatures import trust_with
from tests.fakes.small_registry import SmallRegistry
from tests.layer_tars import file, layer


def test_bytes_from_the_registry_are_counted_once_per_pull() -> None:
    registry, metrics, layers = SmallRegistry(), RecordingMetrics(), InMemoryLayerStore()
    first = layer([file("a", b"x" * 50_000)])
    second = layer([file("b", b"y" * 20_000)])
    registry.add("app", [first, second])
    service = ImageService(
        MeteredRegistry(registry, metrics),
        layers,
        InMemoryImageStore(),
        RootfsImageUsers(layers),
        trust_with(registry),
    )
    service.pull("app")
    assert metrics.pull_bytes == len(first.blob) + len(second.blob)
    service.pull("app")  # already stored: nothing downloaded again
    assert metrics.pull_bytes == len(first.blob) + len(second.blob)


class _Images:
    def PullImage(self, request: pb.PullImageRequest, context: grpc.ServicerContext) -> pb.PullImageResponse:
        if request.image.image == "missing":
            raise errors.NotFound("missing: manifest unknown")
        return pb.PullImageResponse(image_ref="sha256:abc")

    def ListImages(
        self, request: pb.ListImagesRequest, context: grpc.ServicerContext
    ) -> pb.ListImagesResponse:
        return pb.ListImagesResponse()


def test_pull_outcomes_are_counted(tmp_path: Path) -> None:
    metrics = RecordingMetrics()
    server = CriServer(
        tmp_path / "cri.sock",
        0o660,
        runtime_service([]),
        image_service([PullMetricsHandlers(_Images(), metrics)]),
        4,
    )
    server.start()
    client = connect(tmp_path / "cri.sock")
    try:
        client.image.PullImage(pb.PullImageRequest(image=pb.ImageSpec(image="busybox")))
        with pytest.raises(grpc.RpcError):
            client.image.PullImage(pb.PullImageRequest(image=pb.ImageSpec(image="missing")))
        client.image.ListImages(pb.ListImagesRequest())  # passes through, counts nothing
    finally:
        client.close()
        server.stop(1)
    assert metrics.pulls == [(True, ""), (False, "NotFound")]
