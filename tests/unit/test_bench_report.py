"""Ratios, tables and JSON of bench reports."""

import json

import pytest

from bench import report
from bench.results import Row, RuntimeReport
from bench.stats import summarize


def latency_row(key: str, samples: list[float], wall: float | None = None) -> Row:
    return Row(key, key, latency=summarize(samples, wall))


def test_latency_ratio_compares_p50_p99_and_time_per_op() -> None:
    subject = latency_row("pods", [0.2, 0.2, 0.4], wall=0.6)  # 5 ops/s
    baseline = latency_row("pods", [0.1, 0.1, 0.2], wall=0.3)  # 10 ops/s
    item = report.ratio(subject, baseline)
    assert item.primary == pytest.approx(2.0)
    assert item.p99 == pytest.approx(2.0)
    assert item.time_per_op == pytest.approx(2.0)


def test_a_step_row_has_no_time_per_op_ratio() -> None:
    item = report.ratio(latency_row("run", [0.1]), latency_row("run", [0.2]))
    assert item.primary == pytest.approx(0.5)
    assert item.time_per_op is None


def test_gauge_ratio_divides_values() -> None:
    subject = Row("rss", "rss", value=30.0, unit="MiB")
    baseline = Row("rss", "rss", value=40.0, unit="MiB")
    assert report.ratio(subject, baseline).primary == pytest.approx(0.75)


def test_no_ratio_when_a_side_is_unsupported_or_missing() -> None:
    ok = latency_row("pods", [0.1], wall=0.1)
    unsupported = Row("pods", "pods", status="unsupported", detail="UNIMPLEMENTED")
    item = report.ratio(unsupported, ok)
    assert item.primary is None and item.note == "unsupported/ok"
    assert report.ratio(None, ok).note == "no subject row"
    assert report.ratio(ok, None).note == "no baseline row"


def test_no_ratio_against_a_zero_baseline() -> None:
    assert report.ratio(Row("cpu", "cpu", value=1.0), Row("cpu", "cpu", value=0.0)).primary is None


def test_whole_run_rows_compare_only_complete_runs() -> None:
    subject = RuntimeReport(
        "pycrio",
        "unix:///a",
        rows=[
            Row("cpu.daemon", "cpu", value=1.0, unit="s"),
            Row("pods", "pods", status="unsupported"),
        ],
    )
    baseline = RuntimeReport(
        "containerd",
        "unix:///b",
        rows=[
            Row("cpu.daemon", "cpu", value=2.0, unit="s"),
            latency_row("pods", [0.1], wall=0.1),
        ],
    )
    by_key = {item.key: item for item in report.ratios(subject, baseline)}
    assert by_key["cpu.daemon"].primary is None
    assert "differ" in by_key["cpu.daemon"].note
    subject.rows[1] = latency_row("pods", [0.1], wall=0.1)
    by_key = {item.key: item for item in report.ratios(subject, baseline)}
    assert by_key["cpu.daemon"].primary == pytest.approx(0.5)


def test_ratios_cover_rows_of_either_side_in_order() -> None:
    subject = RuntimeReport("pycrio", "x", rows=[Row("a", "a", value=1.0), Row("b", "b", value=1.0)])
    baseline = RuntimeReport("containerd", "y", rows=[Row("a", "a", value=1.0), Row("c", "c", value=1.0)])
    assert [item.key for item in report.ratios(subject, baseline)] == ["a", "b", "c"]


def test_table_aligns_columns() -> None:
    text = report.table(["name", "n"], [["alpha", "1"], ["b", "100"]])
    lines = text.splitlines()
    assert lines[0] == "name     n"
    assert lines[2] == "alpha    1"
    assert lines[3] == "b      100"


def test_runtime_and_comparison_tables_show_every_row() -> None:
    subject = RuntimeReport(
        "pycrio",
        "x",
        rows=[
            latency_row("pods", [0.002, 0.004], wall=0.006),
            Row("rss", "daemon RSS", value=12.5, unit="MiB", extra={"processes": 3}),
            Row("pull", "pull", status="unsupported", detail="UNIMPLEMENTED: not yet"),
        ],
    )
    baseline = RuntimeReport(
        "containerd",
        "y",
        rows=[
            latency_row("pods", [0.001, 0.002], wall=0.003),
            Row("rss", "daemon RSS", value=25.0, unit="MiB"),
            latency_row("pull", [1.0], wall=1.0),
        ],
    )
    text = report.runtime_table(subject)
    assert "3.00" in text  # p50 in ms
    assert "12.5 MiB" in text and "3 processes" in text
    assert "unsupported: UNIMPLEMENTED: not yet" in text
    comparison = report.comparison_table(subject, baseline)
    rows = {line.split()[0]: line for line in comparison.splitlines()[2:]}
    assert "2.00" in rows["pods"]
    assert "0.50" in rows["daemon"]
    assert "unsupported/ok" in rows["pull"]


def test_json_holds_both_runtimes_and_ratios() -> None:
    subject = RuntimeReport("pycrio", "x", rows=[latency_row("pods", [0.2], wall=0.2)])
    baseline = RuntimeReport("containerd", "y", rows=[latency_row("pods", [0.1], wall=0.1)])
    document = json.loads(json.dumps(report.to_json([subject, baseline], {"profile": "quick"})))
    assert document["meta"] == {"profile": "quick"}
    assert document["runtimes"]["pycrio"]["rows"][0]["latency"]["p50"] == pytest.approx(0.2)
    assert document["ratios"]["rows"][0]["primary"] == pytest.approx(2.0)


def test_json_of_one_runtime_has_no_ratios() -> None:
    only = RuntimeReport("endpoint", "x", rows=[latency_row("pods", [0.2], wall=0.2)])
    assert "ratios" not in report.to_json([only], {})


def test_targets_take_the_worse_of_p50_and_time_per_op() -> None:
    subject = RuntimeReport(
        "pycrio",
        "x",
        rows=[
            latency_row("pod_lifecycle.c8", [0.1, 0.1], wall=0.4),  # p50 0.5x, but half the throughput
            latency_row("pull_cold", [0.9], wall=0.9),
            Row("rss.idle", "rss", value=50.0, unit="MiB"),
            Row("rss.fleet", "rss", status="unsupported", detail="UNIMPLEMENTED"),
        ],
    )
    baseline = RuntimeReport(
        "containerd",
        "y",
        rows=[
            latency_row("pod_lifecycle.c8", [0.2, 0.2], wall=0.2),
            latency_row("pull_cold", [1.0], wall=1.0),
            Row("rss.idle", "rss", value=40.0, unit="MiB"),
            Row("rss.fleet", "rss", value=40.0, unit="MiB"),
        ],
    )
    checks = {check.key: check for check in report.targets(report.ratios(subject, baseline))}
    assert checks["pod_lifecycle.c8"].ratio == pytest.approx(2.0)
    assert checks["pod_lifecycle.c8"].verdict == "not met"
    assert checks["pull_cold"].verdict == "met"
    assert checks["rss.idle"].ratio == pytest.approx(1.25) and checks["rss.idle"].verdict == "not met"
    assert checks["rss.fleet"].verdict.startswith("n/a: unsupported")
    assert checks["pod_lifecycle.c1"].verdict == "n/a: no row"
    assert "not met" in report.targets_table(report.ratios(subject, baseline))
