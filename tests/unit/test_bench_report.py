"""Ratios, tables and JSON of bench reports."""

import json

import pytest

from bench import report
from bench.results import Round, Row, RuntimeReport
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
    item = report.ratio(Row("cpu", "cpu", value=1.0, unit="s"), Row("cpu", "cpu", value=0.0, unit="s"))
    assert item.primary is None and item.note == "baseline is 0 s"


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
    comparison = report.comparison_table(subject, baseline, report.over_rounds([(subject, baseline)]))
    rows = {line.split()[0]: line for line in comparison.splitlines()[2:]}
    assert "2.00" in rows["pods"]
    assert "0.50" in rows["daemon"]
    assert "unsupported/ok" in rows["pull"]


def gauge_round(number: int, pycrio: float, containerd: float, key: str = "rss.idle") -> Round:
    return Round(
        number,
        [
            RuntimeReport("pycrio", "x", rows=[Row(key, key, value=pycrio, unit="MiB")]),
            RuntimeReport("containerd", "y", rows=[Row(key, key, value=containerd, unit="MiB")]),
        ],
    )


def test_over_rounds_gives_each_rounds_ratio_the_median_and_the_range() -> None:
    rounds = [gauge_round(1, 30.0, 40.0), gauge_round(2, 50.0, 40.0), gauge_round(3, 36.0, 40.0)]
    (item,) = report.over_rounds(report.pairs(rounds))
    assert item.primary.rounds == pytest.approx([0.75, 1.25, 0.9])
    assert item.primary.median == pytest.approx(0.9)
    assert (item.primary.low, item.primary.high) == pytest.approx((0.75, 1.25))
    subject, baseline = report.medians(rounds)
    comparison = report.comparison_table(subject, baseline, report.over_rounds(report.pairs(rounds)))
    assert "0.75 1.25 0.90" in comparison and "0.75-1.25" in comparison
    assert "36.0 MiB" in comparison  # the runtime columns are medians over rounds


def test_a_round_without_a_ratio_is_left_out_of_the_median_and_named() -> None:
    broken = gauge_round(2, 1.0, 1.0)
    broken.reports[0].rows[0] = Row("rss.idle", "rss.idle", status="failed", detail="daemon is gone")
    rounds = [gauge_round(1, 2.0, 1.0), broken, gauge_round(3, 4.0, 1.0)]
    (item,) = report.over_rounds(report.pairs(rounds))
    assert item.primary.rounds[1] is None
    assert item.primary.median == pytest.approx(3.0)
    assert item.note == "round 2: failed/ok"


def test_median_report_takes_each_column_over_rounds_and_shows_failures() -> None:
    reports = [
        RuntimeReport("pycrio", "x", rows=[latency_row("pods", [0.1, 0.3], wall=0.4)], seconds=10),
        RuntimeReport("pycrio", "x", rows=[latency_row("pods", [0.2, 0.2], wall=0.2)], seconds=12),
        RuntimeReport("pycrio", "x", rows=[latency_row("pods", [0.5, 0.5], wall=1.0)], seconds=11),
    ]
    merged = report.median_report(reports)
    row = merged.row("pods")
    assert row is not None and row.latency is not None
    assert row.latency.p50 == pytest.approx(0.2)
    assert row.latency.count == 6
    assert row.latency.throughput == pytest.approx(5.0)
    assert merged.seconds == 33
    reports[1].rows[0] = Row("pods", "pods", status="failed", detail="boom")
    failed = report.median_report(reports).row("pods")
    assert failed is not None and failed.status == "failed" and failed.detail == "round 2: boom"


def test_json_keeps_every_round_and_the_ratios_over_rounds() -> None:
    rounds = [gauge_round(1, 30.0, 40.0), gauge_round(2, 50.0, 40.0)]
    rounds[1].reports.reverse()  # round 2 ran containerd first
    document = json.loads(json.dumps(report.to_json(rounds, {"profile": "quick"})))
    assert document["meta"] == {"profile": "quick"}
    assert [entry["order"] for entry in document["rounds"]] == [
        ["pycrio", "containerd"],
        ["containerd", "pycrio"],
    ]
    assert document["rounds"][1]["runtimes"]["pycrio"]["rows"][0]["value"] == 50.0
    assert document["rounds"][0]["ratios"][0]["primary"] == pytest.approx(0.75)
    assert document["medians"]["pycrio"]["rows"][0]["value"] == pytest.approx(40.0)
    (row,) = document["ratios"]["rows"]
    assert row["primary"]["rounds"] == pytest.approx([0.75, 1.25])
    assert row["primary"]["median"] == pytest.approx(1.0)
    assert document["ratios"]["rounds"] == 2
    targets = {check["key"]: check for check in document["ratios"]["targets"]}
    assert targets["rss.idle"]["verdict"] == "met" and targets["rss.idle"]["bound"] == 1.0


def test_json_of_one_runtime_has_no_ratios() -> None:
    only = RuntimeReport("endpoint", "x", rows=[latency_row("pods", [0.2], wall=0.2)])
    assert "ratios" not in report.to_json([Round(1, [only])], {})


def test_targets_take_the_median_of_the_worse_of_p50_and_time_per_op_against_their_bounds() -> None:
    def one_round(number: int, wall: float) -> Round:
        subject = RuntimeReport(
            "pycrio",
            "x",
            rows=[
                latency_row("pod_lifecycle.c8", [0.1, 0.1], wall=wall),  # p50 0.5x, time/op wall/0.2
                latency_row("pull_cold", [0.85], wall=0.85),
                latency_row("fleet.list_pods", [0.0009], wall=0.0009),
                Row("rss.idle", "rss", value=50.0, unit="MiB"),
                Row("cpu.idle_0", "cpu", value=0.1, unit="s"),
            ],
        )
        baseline = RuntimeReport(
            "containerd",
            "y",
            rows=[
                latency_row("pod_lifecycle.c8", [0.2, 0.2], wall=0.2),
                latency_row("pull_cold", [1.0], wall=1.0),
                latency_row("fleet.list_pods", [0.001], wall=0.001),
                Row("rss.idle", "rss", value=40.0, unit="MiB"),
                Row("cpu.idle_0", "cpu", value=0.0, unit="s"),
            ],
        )
        return Round(number, [subject, baseline])

    rounds = [one_round(1, 0.4), one_round(2, 0.1), one_round(3, 0.15)]
    checks = {check.key: check for check in report.targets(report.over_rounds(report.pairs(rounds)))}
    lifecycle = checks["pod_lifecycle.c8"]
    assert lifecycle.bound == 0.8
    assert lifecycle.ratio is not None and lifecycle.ratio.rounds == pytest.approx([2.0, 0.5, 0.75])
    assert lifecycle.verdict == "met"  # median 0.75: one slow round does not decide it
    assert checks["pull_cold"].verdict == "not met"  # 0.85 is within 1.0 but not within 0.8
    assert checks["fleet.list_pods"].verdict == "met"  # 0.9 against 1.0
    assert checks["rss.idle"].verdict == "not met"
    assert checks["cpu.idle_0"].verdict == "n/a: rounds 1,2,3: baseline is 0 s"
    assert checks["pod_lifecycle.c1"].verdict == "n/a: no row"
    assert [check.key for check in report.targets([])] == list(report.TARGET_KEYS)
    table = report.targets_table(report.over_rounds(report.pairs(rounds)))
    assert "2.00 0.50 0.75" in table and "not met" in table


def test_a_floor_row_is_compared_with_the_baselines_row_it_is_the_floor_of() -> None:
    """pycrio's floor server (bench/floor.py) against containerd's daemon: the target shows both ratios."""

    def one_round(number: int, floor: float) -> Round:
        subject = RuntimeReport(
            "pycrio",
            "x",
            rows=[
                Row("rss.idle", "daemon RSS idle", value=52.0, unit="MiB"),
                Row("floor.rss.idle", "daemon RSS idle: floor", value=floor, unit="MiB"),
            ],
        )
        baseline = RuntimeReport(
            "containerd", "y", rows=[Row("rss.idle", "daemon RSS idle", value=40.0, unit="MiB")]
        )
        return Round(number, [subject, baseline])

    rounds = [one_round(1, 42.0), one_round(2, 44.0), one_round(3, 48.0)]
    items = {item.key: item for item in report.over_rounds(report.pairs(rounds))}
    assert items["floor.rss.idle"].primary.rounds == pytest.approx([1.05, 1.1, 1.2])
    check = next(check for check in report.targets(list(items.values())) if check.key == "rss.idle")
    assert check.verdict == "not met" and check.ratio is not None and check.ratio.median == pytest.approx(1.3)
    assert check.floor is not None and check.floor.median == pytest.approx(1.1)
    assert "floor" in report.targets_table(list(items.values())).splitlines()[0]
    subject, baseline = rounds[0].reports
    table = report.comparison_table(subject, baseline, list(items.values()))
    floor_line = next(line for line in table.splitlines() if "floor" in line)
    assert "42.0 MiB" in floor_line and "40.0 MiB" in floor_line  # the floor beside containerd's daemon
