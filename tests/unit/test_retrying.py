"""until_done: an exit whose handling failed (no file descriptor free) is handled again, with a growing
delay, until it works; a failure that lasts is given up after GIVE_UP_AFTER seconds."""

from app.links import retrying


def test_a_failing_action_is_retried_until_it_works() -> None:
    calls: list[int] = []
    sleeps: list[float] = []

    def action() -> None:
        calls.append(1)
        if len(calls) < 4:
            raise OSError(24, "Too many open files")

    retrying.until_done(action, "learning an exit", sleep=sleeps.append)
    assert len(calls) == 4
    assert sleeps == [0.1, 0.2, 0.4]


def test_a_lasting_failure_is_given_up() -> None:
    sleeps: list[float] = []

    def action() -> None:
        raise OSError(24, "Too many open files")

    retrying.until_done(action, "learning an exit", sleep=sleeps.append)
    assert max(sleeps) == retrying.MAX_DELAY
    assert retrying.GIVE_UP_AFTER <= sum(sleeps) < retrying.GIVE_UP_AFTER + retrying.MAX_DELAY
