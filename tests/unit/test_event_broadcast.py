"""The event broadcaster: fan-out, bounded queues, drops counted, publishers never blocked."""

import threading

import pytest

from domain.events import Broadcaster


def test_every_subscriber_gets_every_event_in_order() -> None:
    broadcaster: Broadcaster[int] = Broadcaster(capacity=10)
    with broadcaster.subscribe() as first, broadcaster.subscribe() as second:
        for n in range(5):
            broadcaster.publish(n)
        assert [first.next(0) for _ in range(5)] == [0, 1, 2, 3, 4]
        assert [second.next(0) for _ in range(5)] == [0, 1, 2, 3, 4]
        assert first.next(0) is None


def test_a_full_subscriber_loses_events_alone_and_they_are_counted() -> None:
    drops: list[int] = []
    broadcaster: Broadcaster[int] = Broadcaster(capacity=3, on_drop=drops.append)
    with broadcaster.subscribe() as slow, broadcaster.subscribe() as fast:
        for n in range(5):
            broadcaster.publish(n)
            assert fast.next(0) == n
        assert [slow.next(0) for _ in range(4)] == [0, 1, 2, None]
        assert slow.dropped == 2 and fast.dropped == 0
        assert broadcaster.dropped == 2
        assert sum(drops) == 2


def test_publish_does_not_wait_for_a_reader_that_never_reads() -> None:
    broadcaster: Broadcaster[int] = Broadcaster(capacity=1)
    stuck = broadcaster.subscribe()
    finished = threading.Event()

    def publisher() -> None:
        for n in range(10_000):
            broadcaster.publish(n)
        finished.set()

    thread = threading.Thread(target=publisher)
    thread.start()
    thread.join()
    assert finished.is_set()
    assert broadcaster.dropped == 9_999
    stuck.close()


def test_unsubscribed_readers_get_nothing_and_cost_nothing() -> None:
    broadcaster: Broadcaster[int] = Broadcaster(capacity=2)
    subscription = broadcaster.subscribe()
    assert broadcaster.has_subscribers
    subscription.close()
    assert not broadcaster.has_subscribers
    broadcaster.publish(1)
    assert subscription.next(0) is None
    assert broadcaster.dropped == 0


def test_a_waiting_reader_wakes_on_publish_and_on_close() -> None:
    broadcaster: Broadcaster[str] = Broadcaster(capacity=2)
    subscription = broadcaster.subscribe()
    got: list[str | None] = []
    reader = threading.Thread(target=lambda: got.append(subscription.next(timeout=60)))
    reader.start()
    broadcaster.publish("hello")
    reader.join()
    assert got == ["hello"]
    reader = threading.Thread(target=lambda: got.append(subscription.next(timeout=60)))
    reader.start()
    broadcaster.close()
    reader.join()
    assert got == ["hello", None] and subscription.closed


def test_capacity_must_be_positive() -> None:
    with pytest.raises(ValueError):
        Broadcaster(capacity=0)
