"""LifecycleLedger: each container's events once and in order, whichever thread reports first."""

from adapters.cri.container_events import LifecycleLedger
from domain.events import ContainerEventType as E


class RecordingPublisher:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, E]] = []

    def container_event(self, container_id: str, pod_id: str, kind: E) -> None:
        self.events.append((container_id, pod_id, kind))


def kinds(publisher: RecordingPublisher, container_id: str = "c1") -> list[E]:
    return [kind for cid, _, kind in publisher.events if cid == container_id]


def ledger() -> tuple[LifecycleLedger, RecordingPublisher]:
    publisher = RecordingPublisher()
    return LifecycleLedger(publisher), publisher  # type: ignore[arg-type]


def test_the_usual_order_passes_through() -> None:
    book, publisher = ledger()
    for kind in (E.CREATED, E.STARTED, E.STOPPED, E.DELETED):
        book.publish("c1", "p1", kind)
    assert kinds(publisher) == [E.CREATED, E.STARTED, E.STOPPED, E.DELETED]


def test_an_exit_noticed_before_start_returned_still_reads_started_then_stopped() -> None:
    book, publisher = ledger()
    book.publish("c1", "p1", E.CREATED)
    book.publish("c1", "p1", E.STOPPED)  # the exit watcher was first
    book.publish("c1", "p1", E.STARTED)  # StartContainer returns afterwards
    assert kinds(publisher) == [E.CREATED, E.STARTED, E.STOPPED]


def test_duplicates_are_dropped_and_a_deleted_container_is_forgotten() -> None:
    book, publisher = ledger()
    book.publish("c1", "p1", E.CREATED)
    book.publish("c1", "p1", E.CREATED)
    book.publish("c1", "p1", E.DELETED)
    book.publish("c1", "p1", E.CREATED)  # an id reused after removal starts afresh
    assert kinds(publisher) == [E.CREATED, E.DELETED, E.CREATED]


def test_a_container_removed_without_running_gets_no_invented_events() -> None:
    book, publisher = ledger()
    book.publish("c1", "p1", E.CREATED)
    book.publish("c1", "p1", E.DELETED)
    assert kinds(publisher) == [E.CREATED, E.DELETED]
