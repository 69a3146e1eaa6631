"""Render reports as text tables and JSON, and compute pycrio/containerd ratios (pure)."""

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bench.results import Row, RuntimeReport

MS = 1000.0


@dataclass(frozen=True)
class Ratio:
    """subject/baseline of a cost (seconds, MiB): at or below 1.0 means the subject is as good or better.

    `time_per_op` compares wall time per operation over the batch (the inverse of throughput), which is
    what concurrency changes; `primary` is p50 for latency rows and the value for gauges.
    """

    key: str
    label: str
    primary: float | None
    p99: float | None = None
    time_per_op: float | None = None
    note: str = ""


def _divide(subject: float, baseline: float) -> float | None:
    return subject / baseline if baseline > 0 else None


def _time_per_op(subject: float | None, baseline: float | None) -> float | None:
    """Wall time per operation is 1/throughput, so its ratio is baseline/subject throughput."""
    if subject is None or baseline is None or subject <= 0:
        return None
    return baseline / subject


def ratio(subject: Row | None, baseline: Row | None) -> Ratio:
    some = subject or baseline
    assert some is not None
    key, label = some.key, some.label
    for name, row in (("subject", subject), ("baseline", baseline)):
        if row is None:
            return Ratio(key, label, None, note=f"no {name} row")
    assert subject is not None and baseline is not None
    if subject.status != "ok" or baseline.status != "ok":
        return Ratio(key, label, None, note=f"{subject.status}/{baseline.status}")
    if subject.latency is not None and baseline.latency is not None:
        return Ratio(
            key,
            label,
            _divide(subject.latency.p50, baseline.latency.p50),
            _divide(subject.latency.p99, baseline.latency.p99),
            _time_per_op(subject.latency.throughput, baseline.latency.throughput),
        )
    if subject.value is not None and baseline.value is not None:
        return Ratio(key, label, _divide(subject.value, baseline.value))
    return Ratio(key, label, None, note="not comparable")


# Rows that total the whole run: comparable only when both runtimes ran every workload.
WHOLE_RUN_KEYS = frozenset({"cpu.daemon"})


def complete(report: RuntimeReport) -> bool:
    return not report.error and all(row.status == "ok" for row in report.rows)


def ratios(subject: RuntimeReport, baseline: RuntimeReport) -> list[Ratio]:
    """One ratio per row key, in the order rows first appear in either report."""
    keys = list(dict.fromkeys([row.key for row in subject.rows] + [row.key for row in baseline.rows]))
    same_work = complete(subject) and complete(baseline)
    found = []
    for key in keys:
        item = ratio(subject.row(key), baseline.row(key))
        if key in WHOLE_RUN_KEYS and not same_work and item.primary is not None:
            item = Ratio(item.key, item.label, None, note="runs differ (some rows did not run)")
        found.append(item)
    return found


# The targets: lifecycle rows, the cold pull and daemon memory at or below containerd's.
TARGET_KEYS = (
    "pod_lifecycle.c1",
    "pod_lifecycle.c8",
    "container_lifecycle.c1",
    "container_lifecycle.c8",
    "pod_container_start.c1",
    "pod_container_start.c8",
    "pull_cold",
    "rss.idle",
    "rss.fleet",
)


@dataclass(frozen=True)
class TargetCheck:
    """The worse of a row's p50 (or value) and time/op ratios, against 1.0. Reported, never asserted."""

    key: str
    label: str
    ratio: float | None
    verdict: str  # "met", "not met", or "n/a" with the reason


def targets(items: Sequence[Ratio]) -> list[TargetCheck]:
    by_key = {item.key: item for item in items}
    checks = []
    for key in TARGET_KEYS:
        item = by_key.get(key)
        if item is None:
            checks.append(TargetCheck(key, key, None, "n/a: no row"))
            continue
        measured = [value for value in (item.primary, item.time_per_op) if value is not None]
        if not measured:
            checks.append(TargetCheck(key, item.label, None, f"n/a: {item.note or 'no ratio'}"))
            continue
        worst = max(measured)
        checks.append(TargetCheck(key, item.label, worst, "met" if worst <= 1.0 else "not met"))
    return checks


def targets_table(items: Sequence[Ratio]) -> str:
    return table(
        ["target (at or below 1.00 x containerd)", "ratio", "verdict"],
        [[check.label, _number(check.ratio), check.verdict] for check in targets(items)],
    )


def table(headers: Sequence[str], lines: Sequence[Sequence[str]]) -> str:
    """A plain-text table: first column left-aligned, the others right-aligned."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *lines, strict=False)]

    def render(cells: Sequence[str]) -> str:
        parts = [
            cell.ljust(width) if index == 0 else cell.rjust(width)
            for index, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * width for width in widths)
    return "\n".join([render(headers), rule, *(render(line) for line in lines)])


def _number(value: float | None, scale: float = 1.0, digits: int = 2) -> str:
    return "-" if value is None else f"{value * scale:.{digits}f}"


def runtime_table(report: RuntimeReport) -> str:
    headers = ["operation", "n", "p50 ms", "p90 ms", "p99 ms", "ops/s", "value", "note"]
    lines = []
    for row in report.rows:
        extras = [f"{_compact(value)} {unit}" for unit, value in row.extra.items()]
        status_note = row.detail if row.status == "ok" else f"{row.status}: {row.detail}"
        note = ", ".join(part for part in [*extras, status_note] if part)
        if row.latency is not None:
            summary = row.latency
            lines.append(
                [
                    row.label,
                    str(summary.count),
                    _number(summary.p50, MS),
                    _number(summary.p90, MS),
                    _number(summary.p99, MS),
                    _number(summary.throughput, digits=1),
                    "",
                    _clip(note),
                ]
            )
        else:
            value = "" if row.value is None else f"{row.value:.1f} {row.unit}"
            lines.append([row.label, "", "", "", "", "", value, _clip(note)])
    return table(headers, lines)


def comparison_table(subject: RuntimeReport, baseline: RuntimeReport) -> str:
    headers = [
        "operation",
        f"{subject.runtime}",
        f"{baseline.runtime}",
        "ratio",
        "p99 ratio",
        "time/op ratio",
        "note",
    ]
    lines = []
    for item in ratios(subject, baseline):
        lines.append(
            [
                item.label,
                _headline(subject.row(item.key)),
                _headline(baseline.row(item.key)),
                _number(item.primary),
                _number(item.p99),
                _number(item.time_per_op),
                item.note,
            ]
        )
    return table(headers, lines)


def _headline(row: Row | None) -> str:
    """p50 in ms for latency rows, the value for gauges, else the status."""
    if row is None:
        return "-"
    if row.status != "ok":
        return row.status
    if row.latency is not None:
        return f"{row.latency.p50 * MS:.2f} ms"
    if row.value is not None:
        return f"{row.value:.1f} {row.unit}"
    return "-"


def _compact(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.1f}"


def _clip(text: str, width: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."


def to_json(reports: Sequence[RuntimeReport], meta: dict[str, Any]) -> dict[str, Any]:
    document: dict[str, Any] = {
        "meta": meta,
        "runtimes": {report.runtime: dataclasses.asdict(report) for report in reports},
    }
    by_name = {report.runtime: report for report in reports}
    if "pycrio" in by_name and "containerd" in by_name:
        items = ratios(by_name["pycrio"], by_name["containerd"])
        document["ratios"] = {
            "subject": "pycrio",
            "baseline": "containerd",
            "rows": [dataclasses.asdict(item) for item in items],
            "targets": [dataclasses.asdict(check) for check in targets(items)],
        }
    return document
