"""The bench's percentiles and summaries, and its batch runner."""

import threading

import pytest

from bench.stats import percentile, summarize
from bench.timing import Recorder, run_batch


def test_percentile_interpolates_between_closest_ranks() -> None:
    samples = [4.0, 1.0, 3.0, 2.0]  # unsorted on purpose
    assert percentile(samples, 0) == 1.0
    assert percentile(samples, 100) == 4.0
    assert percentile(samples, 50) == pytest.approx(2.5)
    assert percentile(samples, 90) == pytest.approx(3.7)


def test_percentile_of_one_sample_is_that_sample() -> None:
    assert percentile([7.0], 50) == percentile([7.0], 99) == 7.0


def test_percentiles_of_a_hundred_values() -> None:
    samples = [float(value) for value in range(1, 101)]
    assert percentile(samples, 50) == pytest.approx(50.5)
    assert percentile(samples, 90) == pytest.approx(90.1)
    assert percentile(samples, 99) == pytest.approx(99.01)


@pytest.mark.parametrize("bad", [-1, 101])
def test_percentile_rejects_out_of_range(bad: float) -> None:
    with pytest.raises(ValueError):
        percentile([1.0], bad)


def test_percentile_of_nothing_is_an_error() -> None:
    with pytest.raises(ValueError):
        percentile([], 50)


def test_summary_throughput_is_count_over_wall_time() -> None:
    summary = summarize([0.1, 0.2, 0.3, 0.4], wall=0.5)
    assert summary.count == 4
    assert summary.throughput == pytest.approx(8.0)
    assert summary.mean == pytest.approx(0.25)
    assert summary.max == 0.4
    assert summary.p50 == pytest.approx(0.25)


def test_summary_of_a_step_has_no_throughput() -> None:
    summary = summarize([0.1, 0.3])
    assert summary.throughput is None and summary.wall is None


def test_summary_rejects_a_zero_wall_time() -> None:
    with pytest.raises(ValueError):
        summarize([0.1], wall=0)


def test_run_batch_runs_every_index_once_with_concurrency() -> None:
    seen: list[int] = []
    threads: set[str] = set()
    lock = threading.Lock()
    barrier = threading.Barrier(4, timeout=10)

    def operation(index: int) -> None:
        if index < 4:
            barrier.wait()  # proves four calls were in flight together
        with lock:
            seen.append(index)
            threads.add(threading.current_thread().name)

    run_batch(operation, 20, 4)
    assert sorted(seen) == list(range(20))
    assert len(threads) == 4


def test_run_batch_raises_the_first_error() -> None:
    def operation(index: int) -> None:
        if index == 3:
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        run_batch(operation, 10, 1)
    with pytest.raises(RuntimeError, match="boom"):
        run_batch(operation, 10, 4)


def test_recorder_keeps_samples_per_step() -> None:
    recorder = Recorder()
    with recorder.step("a"):
        pass
    recorder.add("a", 1.5)
    recorder.add("b", 2.0)
    assert len(recorder.samples("a")) == 2 and recorder.samples("a")[1] == 1.5
    assert recorder.samples("b") == [2.0]
    assert recorder.samples("missing") == []
