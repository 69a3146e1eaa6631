"""A registry that fails a layer download the ways real ones do, through the daemon's PullImage: the
connection closed mid-blob, 429 with Retry-After, 500, a blob that does not match its digest, headers and
then silence. Transient faults are retried (a cut download resumes) and the pull succeeds; lasting ones end
in a clear status, bounded, with nothing stored: no layer, no temp file, no image, and no partial layer that
a later pull could pick up.
"""

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from adapters.cri.generated import api_pb2 as pb
from tests.e2e.containers_support import wait_until
from tests.e2e.daemon import Daemon, pulling_daemon
from tests.fixtures.faulty_registry import FaultyProxy
from tests.fixtures.images import PushedImages
from tests.fixtures.registry import RunningRegistry
from tests.storage_fixtures import tree

PROGRESS_TIMEOUT = 15.0  # far longer than a moving layer takes on a loaded host


@pytest.fixture
def daemon(faulty_proxy: FaultyProxy, registry: RunningRegistry, tmp_path: Path) -> Iterator[Daemon]:
    proxied = RunningRegistry("faulty", faulty_proxy.host, "http", registry.container_name)
    daemon = pulling_daemon(tmp_path, proxied, f"image.pull_progress_timeout={PROGRESS_TIMEOUT:g}")
    yield daemon
    daemon.stop()


def _pull(daemon: Daemon, proxy: FaultyProxy, pushed: PushedImages) -> str:
    image = pushed.busybox
    name = f"{proxy.host}/{image.repository}:{image.tag}"
    request = pb.PullImageRequest(image=pb.ImageSpec(image=name))
    return str(daemon.client.image.PullImage(request, timeout=180).image_ref)


def _nothing_stored(daemon: Daemon) -> None:
    storage = daemon.workdir / "root" / "storage"
    assert tree(storage / "layers") == set()
    assert tree(storage / "tmp") == set()
    assert not daemon.client.image.ListImages(pb.ListImagesRequest()).images


@pytest.mark.parametrize("faults", [("cut",), ("busy", "busy"), ("error",), ("cut", "error", "busy")])
def test_transient_layer_faults_are_retried_and_the_pull_succeeds(
    daemon: Daemon, faulty_proxy: FaultyProxy, pushed_images: PushedImages, faults: tuple[str, ...]
) -> None:
    faulty_proxy.queue(*faults)
    image_ref = _pull(daemon, faulty_proxy, pushed_images)
    assert faulty_proxy.served[: len(faults)] == list(faults)  # each fault was met, then retried
    listed = daemon.client.image.ListImages(pb.ListImagesRequest()).images
    assert [image.id for image in listed] == [image_ref]


@pytest.mark.parametrize(
    ("fault", "code", "words"),
    [
        ("error", grpc.StatusCode.UNAVAILABLE, "500"),
        ("busy", grpc.StatusCode.UNAVAILABLE, "429"),
        ("cut", grpc.StatusCode.UNAVAILABLE, ""),
        # The last byte is gzip's length field: the unpack that runs as bytes arrive refuses it before the
        # digest is complete, naming the layer.
        ("corrupt", grpc.StatusCode.INVALID_ARGUMENT, "refusing layer sha256:"),
        # A valid layer, unpacked as it arrives, whose bytes are not the descriptor's: refused, never used
        # (INTERNAL, as every content a registry sends that does not match its digest, see docs/images.md).
        ("recompressed", grpc.StatusCode.INTERNAL, "its descriptor says"),
    ],
)
def test_a_layer_that_keeps_failing_ends_the_pull_clearly_and_keeps_nothing(
    daemon: Daemon,
    faulty_proxy: FaultyProxy,
    pushed_images: PushedImages,
    fault: str,
    code: grpc.StatusCode,
    words: str,
) -> None:
    faulty_proxy.queue(*[fault] * 50)
    with pytest.raises(grpc.RpcError) as caught:
        _pull(daemon, faulty_proxy, pushed_images)
    error = caught.value
    assert error.code() == code, error.details()
    assert words in (error.details() or ""), error.details()
    assert len(faulty_proxy.served) < 50  # the retries are bounded
    _nothing_stored(daemon)
    faulty_proxy.queue()  # healthy again: the same pull works, from scratch
    _pull(daemon, faulty_proxy, pushed_images)


def test_headers_then_silence_is_cancelled_by_the_progress_timeout(
    daemon: Daemon, faulty_proxy: FaultyProxy, pushed_images: PushedImages
) -> None:
    faulty_proxy.queue("silent")
    with pytest.raises(grpc.RpcError) as caught:
        _pull(daemon, faulty_proxy, pushed_images)
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED, caught.value.details()
    assert "no progress" in (caught.value.details() or "")
    # The answer comes at once; the worker whose read the cancellation ended removes its temp dir after.
    tmp = daemon.workdir / "root" / "storage" / "tmp"
    wait_until(lambda: not tmp.exists() or not any(tmp.iterdir()), what="the unpack dir removed")
    _nothing_stored(daemon)
