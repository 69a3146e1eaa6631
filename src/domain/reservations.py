"""Names reserved while an object is created, so a kubelet retry finds the result (cri-o's resourcestore).

The kubelet gives up on a create after its own timeout and sends the same request again. A retry that arrives
while the first attempt still works waits for it (at most `wait` seconds, if set). Once the attempt is done,
the retry gets the object it made when that object was left for a retry: `Handover.ONCE` (a pod whose
caller went away: the first retry takes it) or `Handover.ALWAYS` (a container: any identical request). Any
other request for a taken name is AlreadyExists naming the holder. An attempt that failed frees the name,
and whoever waited for it tries anew. Used by the pods and the containers services alike.
"""

import enum
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from domain.errors import AlreadyExists, DeadlineExceeded


class Handover(enum.Enum):
    NEVER = "never"
    ONCE = "once"
    ALWAYS = "always"


@dataclass
class _Holder:
    object_id: str
    fingerprint: str
    handover: Handover = Handover.NEVER
    done: threading.Event = field(default_factory=threading.Event)
    waiting: int = 0  # identical requests (retries) waiting for this attempt to finish


class Reservations:
    def __init__(self, kind: str, wait: float | None = None) -> None:
        self._kind = kind
        self._wait = wait
        self._holders: dict[str, _Holder] = {}
        self._lock = threading.Lock()  # guards the map only; never held while waiting

    def reserve(self, name: str, object_id: str, fingerprint: str) -> str | None:
        """Reserve `name` for `object_id` (None: go ahead and create it), or the id a finished identical
        request made and left for a retry. `fingerprint` tells identical requests apart."""
        while True:
            with self._lock:
                holder = self._holders.get(name)
                if holder is None:
                    self._holders[name] = _Holder(object_id, fingerprint)
                    return None
                if holder.done.is_set():
                    return self._take(name, holder, fingerprint)
            if holder.fingerprint != fingerprint:
                raise self._taken(name, holder)
            with self._lock:
                holder.waiting += 1
            try:
                finished = holder.done.wait(self._wait)
            finally:
                with self._lock:
                    holder.waiting -= 1
            if not finished:
                raise AlreadyExists(
                    f"{self._kind} {holder.object_id} with name {name!r} is still being created"
                )

    def _take(self, name: str, holder: _Holder, fingerprint: str) -> str:
        """Called with the lock held, for a finished holder."""
        if holder.fingerprint != fingerprint or holder.handover is Handover.NEVER:
            raise self._taken(name, holder)
        if holder.handover is Handover.ONCE:
            holder.handover = Handover.NEVER
        return holder.object_id

    def _taken(self, name: str, holder: _Holder) -> AlreadyExists:
        return AlreadyExists(
            f"{self._kind} name {name!r} is reserved by {self._kind} {holder.object_id}; remove it first"
        )

    def waiting(self, name: str) -> int:
        """How many identical requests wait for the attempt holding `name`."""
        with self._lock:
            holder = self._holders.get(name)
            return 0 if holder is None else holder.waiting

    def check_caller(self, name: str, object_id: str, caller_gone: Callable[[], bool], request: str) -> None:
        """Between the steps of a creation: a caller that gave up (its deadline passed) gets nothing made,
        unless a retry of it waits for `object_id`, which will take the object instead."""
        if not caller_gone():
            return
        with self._lock:
            holder = self._holders.get(name)
            awaited = holder is not None and holder.object_id == object_id and holder.waiting > 0
        if not awaited:
            raise DeadlineExceeded(f"{request} for {name!r}: the caller gave up; nothing is kept")

    def created(self, name: str, object_id: str, handover: Handover) -> None:
        """The object exists; waiting retries go on (and take it if `handover` allows)."""
        with self._lock:
            holder = self._holders.get(name)
            if holder is not None and holder.object_id == object_id:
                holder.handover = handover
                holder.done.set()

    def restored(self, name: str, object_id: str, fingerprint: str, handover: Handover) -> None:
        """An object that existed before this daemon started holds its name."""
        holder = _Holder(object_id, fingerprint, handover)
        holder.done.set()
        with self._lock:
            self._holders[name] = holder

    def release(self, name: str, object_id: str) -> None:
        """Free the name (the object is gone, or its creation failed); waiting retries try anew."""
        with self._lock:
            holder = self._holders.get(name)
            if holder is None or holder.object_id != object_id:
                return
            del self._holders[name]
        holder.done.set()
