"""Reservations: one name, one creation; retries wait for it and take its result only when it was left."""

import threading

import pytest

from domain.errors import AlreadyExists
from domain.reservations import Handover, Reservations


def test_a_free_name_is_reserved_and_a_different_request_is_refused_at_once() -> None:
    names = Reservations("thing")
    assert names.reserve("n", "a", "request-1") is None
    with pytest.raises(AlreadyExists, match="reserved by thing a"):
        names.reserve("n", "b", "request-2")


def test_a_retry_waits_for_the_creation_and_takes_what_was_left_for_it() -> None:
    names = Reservations("thing", wait=30)
    assert names.reserve("n", "a", "r") is None
    got: list[str | None] = []
    retry = threading.Thread(target=lambda: got.append(names.reserve("n", "b", "r")))
    retry.start()
    names.created("n", "a", Handover.ONCE)
    retry.join(30)
    assert got == ["a"]
    with pytest.raises(AlreadyExists):  # taken once
        names.reserve("n", "c", "r")


def test_always_hands_over_to_every_identical_request_and_never_to_none() -> None:
    names = Reservations("thing")
    names.reserve("always", "a", "r")
    names.created("always", "a", Handover.ALWAYS)
    assert names.reserve("always", "b", "r") == names.reserve("always", "c", "r") == "a"
    names.restored("never", "x", "r", Handover.NEVER)
    with pytest.raises(AlreadyExists):
        names.reserve("never", "y", "r")


def test_a_failed_creation_frees_the_name_for_the_waiting_retry() -> None:
    names = Reservations("thing", wait=30)
    names.reserve("n", "a", "r")
    got: list[str | None] = []
    retry = threading.Thread(target=lambda: got.append(names.reserve("n", "b", "r")))
    retry.start()
    names.release("n", "a")
    retry.join(30)
    assert got == [None]  # the retry holds the name now
    names.release("n", "a")  # not the holder any more: nothing happens
    with pytest.raises(AlreadyExists, match="reserved by thing b"):
        names.reserve("n", "c", "other")


def test_a_retry_gives_up_after_its_wait() -> None:
    names = Reservations("thing", wait=0.01)
    names.reserve("n", "a", "r")
    with pytest.raises(AlreadyExists, match="still being created"):
        names.reserve("n", "b", "r")
