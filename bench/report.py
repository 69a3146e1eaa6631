"""Render reports as text tables and JSON; pycrio/containerd ratios per round and over rounds (pure)."""

import dataclasses
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bench.results import FLOOR_PREFIX, Round, Row, RuntimeReport
from bench.stats import LatencySummary

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
        # A gauge can be 0 (CPU ticks of an idle window): no ratio then, and the note says why.
        note = "" if baseline.value > 0 else f"baseline is 0 {baseline.unit}".rstrip()
        return Ratio(key, label, _divide(subject.value, baseline.value), note=note)
    return Ratio(key, label, None, note="not comparable")


# Rows that total the whole run: comparable only when both runtimes ran every workload.
WHOLE_RUN_KEYS = frozenset({"cpu.daemon"})


def complete(report: RuntimeReport) -> bool:
    return not report.error and all(row.status == "ok" for row in report.rows)


def baseline_key(key: str) -> str:
    """The baseline row a subject's row is compared with: a floor row with the row it is the floor of."""
    return key.removeprefix(FLOOR_PREFIX)


def ratios(subject: RuntimeReport, baseline: RuntimeReport) -> list[Ratio]:
    """One ratio per row key, in the order rows first appear in either report."""
    keys = list(dict.fromkeys([row.key for row in subject.rows] + [row.key for row in baseline.rows]))
    same_work = complete(subject) and complete(baseline)
    found = []
    for key in keys:
        item = ratio(subject.row(key), baseline.row(baseline_key(key)))
        if key in WHOLE_RUN_KEYS and not same_work and item.primary is not None:
            item = Ratio(item.key, item.label, None, note="runs differ (some rows did not run)")
        found.append(item)
    return found


# --- over rounds -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Spread:
    """One number per round (None where a round had none), with the median and min-max of the known ones."""

    rounds: list[float | None]
    median: float | None
    low: float | None
    high: float | None


def spread(values: Sequence[float | None]) -> Spread:
    known = [value for value in values if value is not None]
    if not known:
        return Spread(list(values), None, None, None)
    return Spread(list(values), statistics.median(known), min(known), max(known))


def _median(values: Sequence[float | None]) -> float | None:
    return spread(values).median


@dataclass(frozen=True)
class RowRatios:
    """A row's ratios over rounds.

    `primary` is the p50 (or value) ratio of each round; `worst` the worse of that and the time/op ratio
    per round, which targets are judged on. `p99` and `time_per_op` are medians over rounds.
    """

    key: str
    label: str
    primary: Spread
    worst: Spread
    p99: float | None
    time_per_op: float | None
    note: str = ""


def _worst(item: Ratio | None) -> float | None:
    if item is None:
        return None
    measured = [value for value in (item.primary, item.time_per_op) if value is not None]
    return max(measured) if measured else None


def over_rounds(pairs: Sequence[tuple[RuntimeReport, RuntimeReport]]) -> list[RowRatios]:
    """Per row key, the subject/baseline ratios of every round (pairs of reports, one pair per round)."""
    per_round = [{item.key: item for item in ratios(subject, baseline)} for subject, baseline in pairs]
    keys = list(dict.fromkeys(key for found in per_round for key in found))
    rows = []
    for key in keys:
        items = [found.get(key) for found in per_round]
        label = next(item.label for item in items if item is not None)
        rows.append(
            RowRatios(
                key,
                label,
                spread([item.primary if item else None for item in items]),
                spread([_worst(item) for item in items]),
                _median([item.p99 if item else None for item in items]),
                _median([item.time_per_op if item else None for item in items]),
                _round_notes(items),
            )
        )
    return rows


def _round_notes(items: Sequence[Ratio | None]) -> str:
    """Why rounds have no ratio, e.g. "rounds 1,3: failed/ok"; without the round numbers for one round."""
    by_note: dict[str, list[int]] = {}
    for number, item in enumerate(items, start=1):
        if item is None or item.primary is None:
            by_note.setdefault(item.note if item is not None else "no row", []).append(number)
    if len(items) == 1:
        return "; ".join(by_note)
    return "; ".join(
        f"round{'s' if len(numbers) > 1 else ''} {','.join(map(str, numbers))}: {note}"
        for note, numbers in by_note.items()
    )


# The targets, each with its bound on pycrio/containerd, judged on the median over rounds.
LIFECYCLE_BOUND = 0.8
TARGETS: tuple[tuple[str, float], ...] = (
    ("pod_lifecycle.c1", LIFECYCLE_BOUND),
    ("pod_lifecycle.c8", LIFECYCLE_BOUND),
    ("container_lifecycle.c1", LIFECYCLE_BOUND),
    ("container_lifecycle.c8", LIFECYCLE_BOUND),
    ("pod_container_start.c1", LIFECYCLE_BOUND),
    ("pod_container_start.c8", LIFECYCLE_BOUND),
    ("pod_lifecycle.c1.run", 0.8),
    ("pull_cold", 0.8),
    ("fleet.list_pods", 1.0),
    ("fleet.list_containers", 1.0),
    ("exec_sync", 0.8),
    ("cpu.idle_0", 1.0),
    ("cpu.idle_n", 1.0),
    ("rss.idle", 1.0),
)
TARGET_KEYS = tuple(key for key, _ in TARGETS)


@dataclass(frozen=True)
class TargetCheck:
    """A row's `worst` ratio over rounds against its bound: judged on the median. Reported, never asserted."""

    key: str
    label: str
    bound: float
    ratio: Spread | None
    verdict: str  # "met", "not met", or "n/a" with the reason
    floor: Spread | None = None  # the same ratio for the floor row, where the subject has one


def targets(items: Sequence[RowRatios]) -> list[TargetCheck]:
    by_key = {item.key: item for item in items}
    checks = []
    for key, bound in TARGETS:
        item = by_key.get(key)
        floor_item = by_key.get(FLOOR_PREFIX + key)
        floor = floor_item.worst if floor_item is not None else None
        if item is None:
            checks.append(TargetCheck(key, key, bound, None, "n/a: no row", floor))
        elif item.worst.median is None:
            checks.append(
                TargetCheck(key, item.label, bound, item.worst, f"n/a: {item.note or 'no ratio'}", floor)
            )
        else:
            verdict = "met" if item.worst.median <= bound else "not met"
            checks.append(TargetCheck(key, item.label, bound, item.worst, verdict, floor))
    return checks


def targets_table(items: Sequence[RowRatios]) -> str:
    lines = []
    for check in targets(items):
        found = check.ratio
        lines.append(
            [
                check.label,
                f"{check.bound:.2f}",
                _rounds(found),
                _number(found.median if found else None),
                _range(found),
                _number(check.floor.median if check.floor else None),
                check.verdict,
            ]
        )
    return table(
        ["target (pycrio / containerd)", "at most", "per round", "median", "min-max", "floor", "verdict"],
        lines,
    )


def _rounds(found: Spread | None) -> str:
    return "-" if found is None else " ".join(_number(value) for value in found.rounds)


def _range(found: Spread | None) -> str:
    if found is None or found.low is None or found.high is None:
        return "-"
    return f"{found.low:.2f}-{found.high:.2f}"


def median_report(reports: Sequence[RuntimeReport]) -> RuntimeReport:
    """One runtime's rounds folded into one report: each number the median over the rounds that measured it.

    A row that was not ok in some round is shown as the first such round's row, so nothing fails unseen.
    """
    first = reports[0]
    merged = RuntimeReport(
        first.runtime,
        first.endpoint,
        version=next((report.version for report in reports if report.version), ""),
        error="; ".join(f"round {n}: {r.error}" for n, r in enumerate(reports, start=1) if r.error),
        seconds=round(sum(report.seconds for report in reports), 1),
    )
    keys = list(dict.fromkeys(row.key for report in reports for row in report.rows))
    for key in keys:
        found = [(number, row) for number, report in enumerate(reports, start=1) if (row := report.row(key))]
        broken = [(number, row) for number, row in found if row.status != "ok"]
        if broken:
            number, row = broken[0]
            prefix = f"round {number}: " if len(reports) > 1 else ""
            merged.rows.append(dataclasses.replace(row, detail=prefix + row.detail))
        else:
            merged.rows.append(_median_row([row for _, row in found]))
    return merged


def _median_row(rows: Sequence[Row]) -> Row:
    first = rows[0]
    extra_keys = [key for key in first.extra if all(key in row.extra for row in rows)]
    extra = {key: statistics.median(row.extra[key] for row in rows) for key in extra_keys}
    value = _median([row.value for row in rows]) if first.value is not None else None
    latency = None
    summaries = [row.latency for row in rows if row.latency is not None]
    if summaries:
        latency = LatencySummary(
            count=sum(summary.count for summary in summaries),
            p50=statistics.median(summary.p50 for summary in summaries),
            p90=statistics.median(summary.p90 for summary in summaries),
            p99=statistics.median(summary.p99 for summary in summaries),
            mean=statistics.median(summary.mean for summary in summaries),
            max=max(summary.max for summary in summaries),
            wall=_median([summary.wall for summary in summaries]),
            throughput=_median([summary.throughput for summary in summaries]),
        )
    return Row(
        first.key,
        first.label,
        latency=latency,
        value=value,
        unit=first.unit,
        extra=extra,
        detail=first.detail,
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
            value = "" if row.value is None else gauge(row.value, row.unit)
            lines.append([row.label, "", "", "", "", "", value, _clip(note)])
    return table(headers, lines)


def comparison_table(subject: RuntimeReport, baseline: RuntimeReport, items: Sequence[RowRatios]) -> str:
    """Per row: both runtimes' medians over rounds, the ratio of each round, its median and min-max."""
    headers = [
        "operation",
        f"{subject.runtime}",
        f"{baseline.runtime}",
        "ratio per round",
        "median",
        "min-max",
        "p99",
        "time/op",
        "note",
    ]
    lines = []
    for item in items:
        lines.append(
            [
                item.label,
                _headline(subject.row(item.key)),
                _headline(baseline.row(baseline_key(item.key))),
                _rounds(item.primary),
                _number(item.primary.median),
                _range(item.primary),
                _number(item.p99),
                _number(item.time_per_op),
                _clip(item.note),
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
        return gauge(row.value, row.unit)
    return "-"


def gauge(value: float, unit: str) -> str:
    """A gauge with one decimal, or two below 1 (an idle window's CPU seconds are a few hundredths)."""
    return f"{value:.{2 if abs(value) < 1 else 1}f} {unit}".rstrip()


def _compact(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.1f}"


def _clip(text: str, width: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."


SUBJECT, BASELINE = "pycrio", "containerd"


def pairs(rounds: Sequence[Round]) -> list[tuple[RuntimeReport, RuntimeReport]]:
    """(pycrio, containerd) of each round where both ran."""
    found = []
    for item in rounds:
        subject, baseline = item.runtime(SUBJECT), item.runtime(BASELINE)
        if subject is not None and baseline is not None:
            found.append((subject, baseline))
    return found


def medians(rounds: Sequence[Round]) -> list[RuntimeReport]:
    """One median report per runtime, in the order the runtimes first ran."""
    names = list(dict.fromkeys(name for item in rounds for name in item.order))
    return [
        median_report([report for item in rounds if (report := item.runtime(name)) is not None])
        for name in names
    ]


def to_json(rounds: Sequence[Round], meta: dict[str, Any]) -> dict[str, Any]:
    """Every round as measured, the medians per runtime and the ratios over rounds (docs/bench.md)."""
    document: dict[str, Any] = {
        "meta": meta,
        "rounds": [],
        "medians": {report.runtime: dataclasses.asdict(report) for report in medians(rounds)},
    }
    for item in rounds:
        entry: dict[str, Any] = {
            "number": item.number,
            "order": item.order,
            "seconds": item.seconds,
            "runtimes": {report.runtime: dataclasses.asdict(report) for report in item.reports},
        }
        subject, baseline = item.runtime(SUBJECT), item.runtime(BASELINE)
        if subject is not None and baseline is not None:
            entry["ratios"] = [dataclasses.asdict(ratio) for ratio in ratios(subject, baseline)]
        document["rounds"].append(entry)
    both = pairs(rounds)
    if both:
        items = over_rounds(both)
        document["ratios"] = {
            "subject": SUBJECT,
            "baseline": BASELINE,
            "rounds": len(both),
            "rows": [dataclasses.asdict(item) for item in items],
            "targets": [dataclasses.asdict(check) for check in targets(items)],
        }
    return document
