"""Container lifecycle events: the ledger the pods and containers services report to, and the broadcaster
that hands events to every subscriber without ever blocking the publisher.

The kubelet (evented PLEG) and tools follow GetContainerEvents instead of polling. `LifecycleLedger` keeps
each container's (and each pod's infra container's) events single and in order, although several threads
report them: a command that exits at once can have its exit noticed before its start is reported. Each
subscriber has its own bounded queue; when one is full (a slow or stuck client) the event is dropped for
that subscriber only and counted, so a runtime operation never waits on a client.
"""

import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar

from ports.container_events import ContainerEventSink, ContainerEventType

T = TypeVar("T")


__all__ = ["Broadcaster", "ContainerEventType", "LifecycleLedger", "Subscription"]


class LifecycleLedger:
    """The one ledger of published lifecycle events, shared by the pods and containers services.

    A pod's infra container is reported with the sandbox id as its container id, as cri-o does.
    """

    def __init__(self, sink: ContainerEventSink) -> None:
        self._sink = sink
        self._published: dict[str, set[ContainerEventType]] = {}
        # Publishing is in-memory work (statuses from the services' listings), so one lock is cheap. It is
        # re-entrant: describing one change lists the pod's containers, and the containers service may learn
        # another container's exit right then and report it from the same thread.
        self._lock = threading.RLock()

    def publish(self, container_id: str, pod_id: str, kind: ContainerEventType) -> None:
        with self._lock:
            done = self._published.setdefault(container_id, set())
            if kind in done:
                return
            if kind == ContainerEventType.STARTED and ContainerEventType.STOPPED in done:
                return  # its exit already reported the start
            implied = kind == ContainerEventType.STOPPED and ContainerEventType.STARTED not in done
            done.update((kind, ContainerEventType.STARTED) if implied else (kind,))  # before the sink runs
            if implied:
                self._sink.container_event(container_id, pod_id, ContainerEventType.STARTED)
            self._sink.container_event(container_id, pod_id, kind)
            if kind == ContainerEventType.DELETED:
                self._published.pop(container_id, None)

    @contextmanager
    def removal(self, container_id: str, pod_id: str) -> Iterator[None]:
        """DELETED once the body has removed the object, described as it was before (a removed pod has no
        status left to report). Nothing is published when the body raises."""
        send = self._sink.prepare(container_id, pod_id, ContainerEventType.DELETED)
        yield
        with self._lock:
            self._published.pop(container_id, None)
            send()

    def known(self, container_id: str, kinds: Iterable[ContainerEventType]) -> None:
        """Events that happened before this daemon started (restored objects): not published again."""
        with self._lock:
            self._published.setdefault(container_id, set()).update(kinds)


class _Unreported:
    def container_event(self, container_id: str, pod_id: str, kind: ContainerEventType) -> None:
        pass

    def prepare(self, container_id: str, pod_id: str, kind: ContainerEventType) -> Callable[[], None]:
        return lambda: None


def unreported() -> LifecycleLedger:
    """A ledger nobody listens to (services built without events)."""
    return LifecycleLedger(_Unreported())


class Subscription(Generic[T]):
    """One subscriber's queue. Use as a context manager so that it always unsubscribes."""

    def __init__(self, broadcaster: "Broadcaster[T]", capacity: int) -> None:
        self._broadcaster = broadcaster
        self._items: deque[T] = deque()
        self._capacity = capacity
        self._ready = threading.Condition()
        self._closed = False
        self.dropped = 0

    def offer(self, item: T) -> bool:
        """Queue an item unless full; never waits."""
        with self._ready:
            if self._closed or len(self._items) >= self._capacity:
                return False
            self._items.append(item)
            self._ready.notify()
            return True

    def next(self, timeout: float | None = None) -> T | None:
        """The next item, or None when none came within `timeout` seconds (None: no limit) or the
        subscription closed."""
        with self._ready:
            if not self._items and not self._closed:
                self._ready.wait(timeout)
            return self._items.popleft() if self._items else None

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        with self._ready:
            self._closed = True
            self._ready.notify_all()
        self._broadcaster.unsubscribe(self)

    def __enter__(self) -> "Subscription[T]":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Broadcaster(Generic[T]):
    def __init__(self, capacity: int, on_drop: Callable[[int], None] = lambda count: None) -> None:
        if capacity <= 0:
            raise ValueError("capacity must be positive")
        self._capacity = capacity
        self._on_drop = on_drop
        self._subscribers: list[Subscription[T]] = []
        self._lock = threading.Lock()
        self.dropped = 0

    def subscribe(self) -> Subscription[T]:
        subscription = Subscription(self, self._capacity)
        with self._lock:
            self._subscribers.append(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription[T]) -> None:
        with self._lock:
            if subscription in self._subscribers:
                self._subscribers.remove(subscription)

    @property
    def has_subscribers(self) -> bool:
        with self._lock:
            return bool(self._subscribers)

    def publish(self, item: T) -> None:
        with self._lock:
            subscribers = list(self._subscribers)
        dropped = 0
        for subscription in subscribers:
            if not subscription.offer(item) and not subscription.closed:
                subscription.dropped += 1
                dropped += 1
        if dropped:
            with self._lock:
                self.dropped += dropped
            self._on_drop(dropped)

    def close(self) -> None:
        """End every subscription (daemon shutdown): their readers see None and `closed`."""
        with self._lock:
            subscribers = list(self._subscribers)
        for subscription in subscribers:
            subscription.close()
