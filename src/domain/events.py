"""Container lifecycle events, broadcast to every subscriber without ever blocking the publisher.

The kubelet (evented PLEG) and tools follow GetContainerEvents instead of polling. Each subscriber has its
own bounded queue; when one is full (a slow or stuck client) the event is dropped for that subscriber only
and counted, so a runtime operation never waits on a client.
"""

import enum
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


class ContainerEventType(enum.Enum):
    CREATED = "created"
    STARTED = "started"
    STOPPED = "stopped"
    DELETED = "deleted"


@dataclass(frozen=True)
class ContainerEvent:
    container_id: str
    pod_id: str
    type: ContainerEventType
    created_at_ns: int


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

    def next(self, timeout: float) -> T | None:
        """The next item, or None when none came within `timeout` seconds or the subscription closed."""
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
