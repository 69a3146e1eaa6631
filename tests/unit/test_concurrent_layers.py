"""The layers of one pull download at once, bounded by max_concurrent_layers; any order of completion gives
the same image; one failing layer (or the caller's deadline) stops the others and leaves nothing behind.

Concurrency is observed through the fake registry (how many blobs stream at once, gates that hold a blob
after its first chunk), never by timing."""

import threading
import time
from collections.abc import Callable

import pytest

from domain.cancellation import Cancellation
from domain.errors import Cancelled, DeadlineExceeded, Internal
from domain.image_config import chain_ids
from tests.fakes.registry import Gate
from tests.layer_tars import Layer, file, layer
from tests.unit.test_image_service import World, join_pull_workers

LAYERS = [layer([file(f"f{n}", bytes([n]) * (200_000 + n))], "gzip" if n % 2 else "zstd") for n in range(5)]


def wait_for(condition: Callable[[], bool], what: str) -> None:
    """Wait (generously) for something the pull must get to; failing here means it never did."""
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.005)


def gate_all(world: World, layers: list[Layer]) -> dict[str, Gate]:
    gates = {item.descriptor.digest: Gate() for item in layers}
    world.registry.gates.update(gates)
    return gates


def pull_in_background(world: World, image: str, **options: object) -> tuple[threading.Thread, list[object]]:
    outcome: list[object] = []

    def pull() -> None:
        try:
            outcome.append(world.service.pull(image, **options))  # type: ignore[arg-type]
        except Exception as error:
            outcome.append(error)

    thread = threading.Thread(target=pull)
    thread.start()
    return thread, outcome


def reached(gates: dict[str, Gate]) -> list[str]:
    return [digest for digest, gate in gates.items() if gate.reached.is_set()]


@pytest.mark.parametrize("bound", [1, 2, 3])
def test_no_more_layers_stream_at_once_than_the_bound(bound: int) -> None:
    world = World(max_concurrent_layers=bound)
    world.registry.add("r.test/many:1", LAYERS)
    gates = gate_all(world, LAYERS)
    thread, outcome = pull_in_background(world, "r.test/many:1")
    released = 0
    while released < len(LAYERS):
        expected = min(released + bound, len(LAYERS))
        wait_for(lambda n=expected: len(reached(gates)) == n, f"{expected} layers started")  # type: ignore[misc]
        # The released layers end; every worker is then held at a gate, so no other layer can stream.
        wait_for(lambda n=expected - released: world.registry.streaming == n, "released layers ended")  # type: ignore[misc]
        assert world.registry.most_streaming <= bound
        gates[reached(gates)[released]].release.set()
        released += 1
    thread.join(30)
    assert isinstance(outcome[0], str), outcome
    assert world.registry.most_streaming == bound
    image = world.service.status(outcome[0])
    assert image is not None and list(image.layers) == chain_ids([item.diff_id for item in LAYERS])


def test_layers_completing_in_reverse_order_make_the_same_image() -> None:
    world = World(max_concurrent_layers=len(LAYERS))
    world.registry.add("r.test/many:1", LAYERS)
    gates = gate_all(world, LAYERS)
    thread, outcome = pull_in_background(world, "r.test/many:1")
    wait_for(lambda: len(reached(gates)) == len(LAYERS), "every layer started")
    chains = chain_ids([item.diff_id for item in LAYERS])
    for item, chain in reversed(list(zip(LAYERS, chains, strict=True))):
        gates[item.descriptor.digest].release.set()
        wait_for(lambda c=chain: world.layers.get(c) is not None, f"layer {chain} committed")  # type: ignore[misc]
    thread.join(30)
    assert world.layers.unpacked == list(reversed(chains))
    image = world.service.status(str(outcome[0]))
    assert image is not None and list(image.layers) == chains
    assert world.layers.get(chains[-1]) is not None and world.layers.get(chains[-1]).parent == chains[-2]  # type: ignore[union-attr]
    rootfs = world.service.create_rootfs("ctr", str(outcome[0]))
    assert rootfs.image.id == outcome[0]


def test_a_failing_layer_cancels_the_others_and_the_pull_keeps_nothing() -> None:
    done, held, broken, waiting = LAYERS[0], LAYERS[1], LAYERS[2], LAYERS[3]
    world = World(max_concurrent_layers=3)
    world.registry.add("r.test/broken:1", [done, held, broken, waiting])
    world.registry.corrupt_blob("r.test", broken.descriptor.digest, b"not the layer")
    # `waiting` starts when `done` frees its worker, before or after `broken` fails: either way it stops.
    gates = gate_all(world, [held, waiting, broken])
    chains = chain_ids([item.diff_id for item in (done, held, broken, waiting)])
    thread, outcome = pull_in_background(world, "r.test/broken:1")
    assert gates[held.descriptor.digest].reached.wait(30)
    wait_for(lambda: world.layers.get(chains[0]) is not None, "the first layer committed")
    gates[broken.descriptor.digest].release.set()
    # The held layers are never let go: the failure cancels their reads, and the pull answers.
    thread.join(30)
    (error,) = outcome
    assert isinstance(error, Internal) and broken.descriptor.digest in str(error)
    assert gates[held.descriptor.digest].cancelled.is_set()
    assert not gates[held.descriptor.digest].release.is_set()
    assert chains[1] not in world.layers.unpacked and chains[3] not in world.layers.unpacked
    # The layer finished before the failure was released again: nothing of the pull is left.
    assert world.layers.unpacked == [chains[0]]
    assert world.layers.list_layers() == [] and world.service.list_images() == []
    assert world.registry.streaming == 0


def test_the_callers_deadline_stops_every_layer_in_flight_and_keeps_nothing() -> None:
    first, *rest = LAYERS[:4]
    world = World(max_concurrent_layers=4)
    world.registry.add("r.test/slow:1", [first, *rest])
    gates = gate_all(world, rest)
    with pytest.raises(DeadlineExceeded, match="deadline"):
        world.service.pull("r.test/slow:1", timeout=0.5)
    # The pull is cancelled by now: a gated layer stops at its next chunk, one not yet started never does.
    for gate in gates.values():
        gate.release.set()
    join_pull_workers("r.test/slow:1")
    chains = chain_ids([item.diff_id for item in LAYERS[:4]])
    assert not set(world.layers.unpacked) & set(chains[1:])
    assert world.layers.list_layers() == [] and world.service.list_images() == []
    assert world.registry.streaming == 0


def test_a_failing_layer_cancels_a_layer_stuck_in_a_read_without_the_watchdog() -> None:
    stuck, broken = LAYERS[0], LAYERS[1]
    # No watchdog: only the failing layer's cancellation can end the stuck read.
    world = World(max_concurrent_layers=2, pull_progress_timeout=0)
    world.registry.add("r.test/stuck:1", [stuck, broken])
    world.registry.corrupt_blob("r.test", broken.descriptor.digest, b"not the layer")
    gates = gate_all(world, [stuck])
    with pytest.raises(Internal, match=broken.descriptor.digest):
        world.service.pull("r.test/stuck:1")
    # The pull answered only once its layer tasks ended: the stuck one was cancelled, never released.
    assert gates[stuck.descriptor.digest].cancelled.is_set()
    assert world.registry.streaming == 0
    assert world.layers.list_layers() == [] and world.service.list_images() == []


def test_a_caller_that_cancels_stops_the_pull_and_a_new_pull_works() -> None:
    first, second = LAYERS[0], LAYERS[1]
    world = World(max_concurrent_layers=2, pull_progress_timeout=0)
    world.registry.add("r.test/gone:1", [first, second])
    gates = gate_all(world, [second])
    gone = Cancellation()
    thread, outcome = pull_in_background(world, "r.test/gone:1", cancel=gone)
    assert gates[second.descriptor.digest].reached.wait(30)
    chains = chain_ids([first.diff_id, second.diff_id])
    wait_for(lambda: world.layers.get(chains[0]) is not None, "the first layer committed")
    gone.cancel(Cancelled("the client went away"))
    thread.join(30)
    (error,) = outcome
    assert isinstance(error, Cancelled)
    join_pull_workers("r.test/gone:1")
    assert gates[second.descriptor.digest].cancelled.is_set()
    assert world.registry.streaming == 0
    assert world.layers.list_layers() == [] and world.service.list_images() == []
    world.registry.gates.clear()
    image_id = world.service.pull("r.test/gone:1")
    assert world.service.status(image_id) is not None


def test_a_caller_that_cancels_leaves_the_pull_to_the_others_waiting() -> None:
    only = LAYERS[0]
    world = World(pull_progress_timeout=0)
    world.registry.add("r.test/shared:1", [only])
    gates = gate_all(world, [only])
    gone = Cancellation()
    leaving, left = pull_in_background(world, "r.test/shared:1", cancel=gone)
    assert gates[only.descriptor.digest].reached.wait(30)
    staying, stayed = pull_in_background(world, "r.test/shared:1")
    wait_for(lambda: world.service.pulls_in_progress() != [] and _waiters(world) == 2, "both callers wait")
    gone.cancel(Cancelled("the client went away"))
    leaving.join(30)
    assert isinstance(left[0], Cancelled)
    gates[only.descriptor.digest].release.set()
    staying.join(30)
    assert isinstance(stayed[0], str) and not gates[only.descriptor.digest].cancelled.is_set()


def _waiters(world: World) -> int:
    return sum(flight.waiters for flight in world.service._flights.values())


def test_a_pull_past_its_deadline_is_cancelled_whatever_its_progress() -> None:
    only = LAYERS[0]
    # The watchdog is off: the whole-pull deadline alone ends the held download.
    world = World(pull_progress_timeout=0, pull_deadline=0.5)
    world.registry.add("r.test/slow:1", [only])
    gates = gate_all(world, [only])
    with pytest.raises(DeadlineExceeded, match=r"image\.pull_deadline"):
        world.service.pull("r.test/slow:1")
    join_pull_workers("r.test/slow:1")
    assert gates[only.descriptor.digest].cancelled.is_set()
    assert world.layers.list_layers() == [] and world.service.list_images() == []
