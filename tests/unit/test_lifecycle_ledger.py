"""LifecycleLedger: each container's events once and in order, whichever thread reports first."""

import pytest

from domain.events import ContainerEventType as E
from domain.events import LifecycleLedger
from tests.fakes.container_events import RecordingEventSink


def kinds(publisher: RecordingEventSink, container_id: str = "c1") -> list[E]:
    return publisher.kinds(container_id)


def ledger() -> tuple[LifecycleLedger, RecordingEventSink]:
    publisher = RecordingEventSink()
    return LifecycleLedger(publisher), publisher


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


def test_a_removal_reports_deleted_once_it_is_done_and_not_when_it_failed() -> None:
    book, publisher = ledger()
    book.publish("p1", "p1", E.CREATED)
    with book.removal("p1", "p1"):
        assert kinds(publisher, "p1") == [E.CREATED]  # nothing yet: the removal is under way
    assert kinds(publisher, "p1") == [E.CREATED, E.DELETED]
    book.publish("p2", "p2", E.CREATED)
    with pytest.raises(RuntimeError), book.removal("p2", "p2"):
        raise RuntimeError("removal failed")
    assert kinds(publisher, "p2") == [E.CREATED]


def test_events_known_from_before_a_restart_are_not_reported_again() -> None:
    book, publisher = ledger()
    book.known("c1", [E.CREATED, E.STARTED])
    book.publish("c1", "p1", E.STARTED)
    book.publish("c1", "p1", E.STOPPED)
    assert kinds(publisher) == [E.STOPPED]
