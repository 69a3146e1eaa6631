"""Concurrent layer downloads against the real registry, seen from the registry's side: the httpx adapter
and the overlay store driven by the image service in-process (as the daemon wires them), through a proxy
that holds every layer half-way (tests/fixtures/gating_registry.py), counts downloads under way and sees
the connections the puller closes. The last test drives the daemon itself: a client that cancels PullImage."""

import os
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest

from adapters.cri.generated import api_pb2 as pb
from adapters.registry.host_platform import host_platform
from adapters.registry.http_registry import HttpRegistry
from adapters.state.file_store import AtomicFileStateStore
from adapters.storage.image_store import StateImageStore
from adapters.storage.image_users import RootfsImageUsers
from adapters.storage.overlay_layer_store import OverlayLayerStore
from domain.errors import DeadlineExceeded, Internal, InvalidArgument
from domain.images import ImageService
from domain.registries_conf import parse_registries_conf
from tests.e2e.daemon import pulling_daemon
from tests.fakes.signatures import trust_with
from tests.fixtures.gating_registry import GatingProxy
from tests.fixtures.images import Compression, Layer, PushedImage, file, image_config, make_layer, push_image
from tests.fixtures.push import Pusher
from tests.fixtures.registry import RunningRegistry, registries_conf_text
from tests.storage_fixtures import tree, unmount_all_under

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the overlay store needs root")


def wait_for(condition: Callable[[], bool], what: str) -> None:
    """Wait (generously) for something the pull must get to; failing here means it never did."""
    deadline = time.monotonic() + 60
    while not condition():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.01)


class PullThread:
    """A pull on its own thread, as the kubelet's call would be; `result` joins it."""

    def __init__(self, service: ImageService, image: str, timeout: float | None = None) -> None:
        self.image = image
        self._outcome: list[object] = []
        self._thread = threading.Thread(target=self._pull, args=(service, timeout))
        self._thread.start()

    def _pull(self, service: ImageService, timeout: float | None) -> None:
        try:
            self._outcome.append(service.pull(self.image, timeout=timeout))
        except Exception as error:
            self._outcome.append(error)

    def result(self) -> str:
        self._thread.join(120)
        (outcome,) = self._outcome
        if isinstance(outcome, Exception):
            raise outcome
        return str(outcome)


def join_pull_workers(image: str) -> None:
    """The pull's own worker and its layer threads (they outlive a caller that gave up) until they end."""
    for thread in threading.enumerate():
        if thread.name.startswith(f"pull {image}"):
            thread.join(60)
            assert not thread.is_alive()


def random_layers(count: int) -> list[Layer]:
    """Layers of random bytes, each above the proxy's gating size, zstd and gzip in turn."""
    compressions: list[Compression] = ["zstd", "gzip"] * count
    return [make_layer([file(f"layer-{n}.bin", os.urandom(200_000))], compressions[n]) for n in range(count)]


def push(registry: RunningRegistry, layers: list[Layer]) -> PushedImage:
    pusher = Pusher(registry)
    try:
        return push_image(pusher, f"concurrent/{secrets.token_hex(4)}", "1", layers, image_config(layers))
    finally:
        pusher.close()


@pytest.fixture
def five_layers(registry: RunningRegistry) -> PushedImage:
    """Five layers, new for every test."""
    return push(registry, random_layers(5))


class Pulls:
    def __init__(
        self, gating_registry: RunningRegistry, tmp_path: Path, bound: int, progress_timeout: float = 60.0
    ) -> None:
        conf = parse_registries_conf(registries_conf_text(gating_registry), "test")
        # Without the watchdog, no read timeout either: a held read then ends only by being cancelled.
        self.adapter = HttpRegistry(timeout=3600.0) if progress_timeout == 0 else HttpRegistry()
        self.storage = tmp_path / "storage"
        self.layers = OverlayLayerStore(self.storage, AtomicFileStateStore(tmp_path / "state"))
        self.service = ImageService(
            self.adapter,
            self.layers,
            StateImageStore(AtomicFileStateStore(tmp_path / "state")),
            RootfsImageUsers(self.layers),
            trust_with(self.adapter),
            platform=host_platform(),
            registries_conf=lambda: conf,
            max_concurrent_layers=bound,
            pull_progress_timeout=progress_timeout,
        )
        self.host = gating_registry.host

    def reference(self, image: PushedImage) -> str:
        return f"{self.host}/{image.repository}:{image.tag}"

    def nothing_left(self) -> bool:
        return tree(self.storage / "layers") == set() and tree(self.storage / "tmp") == set()


@pytest.fixture
def pulls(gating_registry: RunningRegistry, tmp_path: Path) -> Iterator[Callable[..., Pulls]]:
    made: list[Pulls] = []

    def make(bound: int, progress_timeout: float = 60.0) -> Pulls:
        made.append(Pulls(gating_registry, tmp_path, bound, progress_timeout))
        return made[-1]

    yield make
    for each in made:
        each.adapter.close()
    unmount_all_under(tmp_path)


def test_layer_downloads_stay_within_the_bound_and_make_the_whole_image(
    pulls: Callable[..., Pulls], gating_proxy: GatingProxy, five_layers: PushedImage
) -> None:
    world = pulls(2)
    puller = PullThread(world.service, world.reference(five_layers))
    released: set[str] = set()
    while len(released) < len(five_layers.layers):
        expected = min(2, len(five_layers.layers) - len(released))
        wait_for(lambda n=expected: len(gating_proxy.held()) == n, f"{expected} layers held")  # type: ignore[misc]
        # Released downloads end; every layer thread then waits at the proxy, so no other can be under way.
        wait_for(lambda n=expected: gating_proxy.in_flight == n, "released downloads ended")  # type: ignore[misc]
        assert gating_proxy.most_in_flight <= 2
        digest = gating_proxy.held()[0]
        gating_proxy.release(digest)
        released.add(digest)
        wait_for(lambda d=digest: d not in gating_proxy.held(), "a released layer finished")  # type: ignore[misc]
    image_id = puller.result()
    assert gating_proxy.most_in_flight == 2
    assert released == set(five_layers.layer_digests)
    rootfs = world.service.create_rootfs("ctr-1", image_id)
    assert sorted(p.name for p in rootfs.path.iterdir()) == [f"layer-{n}.bin" for n in range(5)]
    world.service.remove_rootfs("ctr-1")


def test_a_corrupt_layer_closes_the_downloads_in_flight_at_once_and_keeps_nothing(
    pulls: Callable[..., Pulls], gating_proxy: GatingProxy, five_layers: PushedImage
) -> None:
    # No watchdog (nor read timeout): only the failing layer's cancellation can end the held reads.
    world = pulls(3, progress_timeout=0)
    first, second, broken, fourth = five_layers.layer_digests[:4]
    gating_proxy.corrupt.add(broken)
    puller = PullThread(world.service, world.reference(five_layers))
    wait_for(lambda: set(gating_proxy.held()) == {first, second, broken}, "three layers held")
    gating_proxy.release(first)
    # The first layer's place goes to the fourth: waiting for that (not for a moment with two downloads in
    # flight, which may be too short to see) shows the first one done.
    wait_for(lambda: set(gating_proxy.held()) == {second, broken, fourth}, "the fourth layer took its place")
    wait_for(lambda: len(world.layers.list_layers()) == 1, "the first layer committed")
    gating_proxy.release(broken)
    # The broken layer fails (its decompression or a digest check); the two others, never let go, are
    # cancelled: their connections are shut down, their reads return, and the pull answers.
    with pytest.raises((Internal, InvalidArgument)) as failure:
        puller.result()
    broken_layer = five_layers.layers[2]
    assert broken_layer.digest in str(failure.value) or broken_layer.diff_id in str(failure.value)
    wait_for(lambda: {second, fourth} <= gating_proxy.dropped, "the proxy saw both connections closed")
    join_pull_workers(puller.image)
    assert world.nothing_left() and world.service.list_images() == []
    assert gating_proxy.requests[second] == 1 and gating_proxy.requests[fourth] == 1, "no resumed download"


def test_the_callers_deadline_stops_the_layers_in_flight_and_keeps_nothing(
    pulls: Callable[..., Pulls], gating_proxy: GatingProxy, five_layers: PushedImage
) -> None:
    world = pulls(3)
    # Long enough to see three layers held and one committed first (the layers wait for the test).
    puller = PullThread(world.service, world.reference(five_layers), timeout=15)
    wait_for(lambda: len(gating_proxy.held()) == 3, "three layers held")
    gating_proxy.release(gating_proxy.held()[0])
    wait_for(lambda: len(world.layers.list_layers()) == 1, "one layer committed")
    with pytest.raises(DeadlineExceeded, match="deadline"):
        puller.result()
    for digest in gating_proxy.held():
        gating_proxy.release(digest)
    join_pull_workers(puller.image)
    assert world.nothing_left() and world.service.list_images() == []


def test_two_pulls_sharing_a_base_layer_download_it_once_and_each_keeps_it(
    pulls: Callable[..., Pulls], gating_proxy: GatingProxy, registry: RunningRegistry
) -> None:
    base, own_a, own_b = random_layers(3)
    first, second = push(registry, [base, own_a]), push(registry, [base, own_b])
    world = pulls(3)
    pull_a = PullThread(world.service, world.reference(first))
    wait_for(lambda: {base.digest, own_a.digest} <= set(gating_proxy.held()), "the first image's layers held")
    pull_b = PullThread(world.service, world.reference(second))
    # The second pull's base layer waits for the first's download instead of asking the registry again.
    wait_for(lambda: own_b.digest in gating_proxy.held(), "the second image's own layer held")
    for digest in gating_proxy.held():
        gating_proxy.release(digest)
    id_a, id_b = pull_a.result(), pull_b.result()
    assert gating_proxy.requests[base.digest] == 1
    world.service.remove(id_a)
    assert world.layers.get(base.diff_id) is not None
    world.service.remove(id_b)
    assert world.nothing_left()


def pull_request(gating_registry: RunningRegistry, image: PushedImage) -> pb.PullImageRequest:
    return pb.PullImageRequest(image=pb.ImageSpec(image=f"{gating_registry.host}/{image.repository}:1"))


def test_a_client_that_cancels_pull_image_stops_the_download_and_a_new_pull_works(
    gating_proxy: GatingProxy, gating_registry: RunningRegistry, registry: RunningRegistry, tmp_path: Path
) -> None:
    image = push(registry, random_layers(2))
    done, held = image.layer_digests
    # No watchdog (the read timeout is then 300 s): only the client's cancellation stops the pull.
    daemon = pulling_daemon(tmp_path, gating_registry, "image.pull_progress_timeout=0")
    storage = tmp_path / "pycrio" / "root" / "storage"
    try:
        request = pull_request(gating_registry, image)
        call = daemon.client.image.PullImage.future(request)
        wait_for(lambda: set(gating_proxy.held()) == {done, held}, "both layers held")
        gating_proxy.release(done)
        wait_for(lambda: len(tree(storage / "layers")) > 0, "the first layer committed")
        call.cancel()
        wait_for(lambda: held in gating_proxy.dropped, "the daemon closed the held download")
        # The pull's worker releases what it committed once its layer tasks ended.
        wait_for(lambda: tree(storage / "layers") == set() and tree(storage / "tmp") == set(), "nothing left")
        assert not daemon.client.image.ListImages(pb.ListImagesRequest()).images
        # The same image again, each layer let go as it is asked for.
        again = daemon.client.image.PullImage.future(request)
        for digest in (done, held):
            wait_for(lambda d=digest: d in gating_proxy.held(), f"{digest} asked for again")  # type: ignore[misc]
            gating_proxy.release(digest)
        assert again.result(timeout=120).image_ref == image.config_digest.removeprefix("sha256:")
    finally:
        daemon.stop()


def test_the_daemon_cancels_a_pull_past_image_pull_deadline_and_closes_its_downloads(
    gating_proxy: GatingProxy, gating_registry: RunningRegistry, registry: RunningRegistry, tmp_path: Path
) -> None:
    image = push(registry, random_layers(1))
    (held,) = image.layer_digests
    # A held download is a registry that trickles as slowly as it likes: with the watchdog off, only the
    # whole-pull deadline can end it.
    daemon = pulling_daemon(
        tmp_path, gating_registry, "image.pull_progress_timeout=0", "image.pull_deadline=5"
    )
    storage = tmp_path / "pycrio" / "root" / "storage"
    try:
        request = pull_request(gating_registry, image)
        with pytest.raises(grpc.RpcError) as failure:
            daemon.client.image.PullImage(request, timeout=120)
        assert failure.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED, failure.value.details()
        assert "image.pull_deadline" in str(failure.value.details())
        wait_for(lambda: held in gating_proxy.dropped, "the daemon closed the held download")
        wait_for(lambda: tree(storage / "layers") == set() and tree(storage / "tmp") == set(), "nothing left")
    finally:
        daemon.stop()
