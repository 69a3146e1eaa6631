"""What a run produces: one row per measured thing, per runtime, per round (pure data)."""

from dataclasses import dataclass, field
from typing import Literal

from bench.stats import LatencySummary

RowStatus = Literal["ok", "unsupported", "failed", "skipped"]

# The key prefix of a floor row (bench/floor.py): "floor.rss.idle" measures, for the row "rss.idle", a server
# on pycrio's required stack with nothing of pycrio in it; it is compared with the baseline's "rss.idle".
FLOOR_PREFIX = "floor."


@dataclass
class Row:
    """One line of the report.

    A latency row holds a summary of per-operation seconds; a gauge row holds one value (MiB, CPU seconds,
    a count). `extra` carries secondary numbers such as a pull's MiB/s.
    """

    key: str
    label: str
    status: RowStatus = "ok"
    latency: LatencySummary | None = None
    value: float | None = None
    unit: str = ""
    extra: dict[str, float] = field(default_factory=dict)
    detail: str = ""


@dataclass
class RuntimeReport:
    runtime: str
    endpoint: str
    version: str = ""
    rows: list[Row] = field(default_factory=list)
    error: str = ""
    # Wall seconds of this runtime's turn (start-up, every workload, stop and sweep), and of each workload.
    seconds: float = 0.0
    steps: dict[str, float] = field(default_factory=dict)

    def row(self, key: str) -> Row | None:
        return next((row for row in self.rows if row.key == key), None)


@dataclass
class Round:
    """One fresh batch of every row on every runtime, in the order they ran (A B, then B A, ...)."""

    number: int
    reports: list[RuntimeReport] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def order(self) -> list[str]:
        return [report.runtime for report in self.reports]

    def runtime(self, name: str) -> RuntimeReport | None:
        return next((report for report in self.reports if report.runtime == name), None)


def unsupported(key: str, label: str, detail: str) -> Row:
    return Row(key=key, label=label, status="unsupported", detail=detail)


def failed(key: str, label: str, detail: str) -> Row:
    return Row(key=key, label=label, status="failed", detail=detail)
