"""What a run produces: one row per measured thing, per runtime (pure data)."""

from dataclasses import dataclass, field
from typing import Literal

from bench.stats import LatencySummary

RowStatus = Literal["ok", "unsupported", "failed", "skipped"]


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

    def row(self, key: str) -> Row | None:
        return next((row for row in self.rows if row.key == key), None)


def unsupported(key: str, label: str, detail: str) -> Row:
    return Row(key=key, label=label, status="unsupported", detail=detail)


def failed(key: str, label: str, detail: str) -> Row:
    return Row(key=key, label=label, status="failed", detail=detail)
