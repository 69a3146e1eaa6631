"""A registry that stops sending mid-layer: the daemon's `image.pull_progress_timeout` cancels the pull with
DEADLINE_EXCEEDED and keeps nothing of it."""

from pathlib import Path

import grpc
import pytest

from adapters.cri.generated import api_pb2 as pb
from tests.e2e.daemon import Daemon, pulling_daemon
from tests.fixtures.images import PushedImages
from tests.fixtures.registry import RunningRegistry
from tests.storage_fixtures import tree

# Far shorter than the proxy's stall (minutes), far longer than a slow but moving manifest fetch.
PROGRESS_TIMEOUT = 15.0


def test_a_stalled_pull_is_cancelled_and_keeps_nothing(
    stalling_registry: RunningRegistry, pushed_images: PushedImages, tmp_path: Path
) -> None:
    # One limit covers the manifest too, which passes the proxy whole but, on a loaded host, may take
    # seconds to: only a stall as long as the one held on the layer may trip it.
    daemon = pulling_daemon(tmp_path, stalling_registry, f"image.pull_progress_timeout={PROGRESS_TIMEOUT:g}")
    try:
        image = pushed_images.busybox
        name = f"{stalling_registry.host}/{image.repository}:{image.tag}"
        with pytest.raises(grpc.RpcError) as failure:
            daemon.client.image.PullImage(pb.PullImageRequest(image=pb.ImageSpec(image=name)), timeout=120)
        assert failure.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED, failure.value.details()
        details = str(failure.value.details())
        assert "no progress" in details
        # Which layer and which registry stalled.
        assert f"from registry {stalling_registry.host}" in details
        assert " on layer sha256:" in details
        assert "pull layer started" in daemon.log()
        assert not daemon.client.image.ListImages(pb.ListImagesRequest()).images
    finally:
        daemon.stop()
    storage = tmp_path / "pycrio" / "root" / "storage"
    assert tree(storage / "layers") == set()
    # A worker still blocked in a read when the daemon stopped leaves its temp dir: start-up removes it.
    Daemon(daemon.workdir, daemon.settings[4:]).start().stop()
    assert tree(storage / "tmp") == set()
