"""Percentiles and summaries of latency samples (pure)."""

import math
from collections.abc import Sequence
from dataclasses import dataclass


def percentile(samples: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) with linear interpolation between closest ranks (numpy's default).

    With few samples the p99 is honest about being close to the maximum instead of pretending precision.
    """
    if not samples:
        raise ValueError("percentile of no samples")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} is outside 0..100")
    ordered = sorted(samples)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = math.ceil(rank)
    if low == high:
        return ordered[low]
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True)
class LatencySummary:
    """Seconds, and operations per second of wall time over the whole batch (not 1/mean: concurrency).

    Rows for one step of a cycle have no throughput of their own (`wall` and `throughput` are None).
    """

    count: int
    p50: float
    p90: float
    p99: float
    mean: float
    max: float
    wall: float | None
    throughput: float | None


def summarize(samples: Sequence[float], wall: float | None = None) -> LatencySummary:
    if wall is not None and wall <= 0:
        raise ValueError(f"wall time must be positive, got {wall}")
    return LatencySummary(
        count=len(samples),
        p50=percentile(samples, 50),
        p90=percentile(samples, 90),
        p99=percentile(samples, 99),
        mean=sum(samples) / len(samples),
        max=max(samples),
        wall=wall,
        throughput=None if wall is None else len(samples) / wall,
    )
