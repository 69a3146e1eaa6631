"""A saved report rendered as the Markdown tables docs/bench.md shows."""

import json
from pathlib import Path

import pytest

from bench import markdown, report
from bench.results import Round, Row, RuntimeReport
from bench.stats import summarize


def one_round(number: int, pycrio_ms: float) -> Round:
    def reports(p50: float) -> list[Row]:
        return [
            Row("pod_lifecycle.c1", "pod run+stop+remove c=1", latency=summarize([p50], wall=p50)),
            Row("pod_lifecycle.c1.run", "  RunPodSandbox c=1", latency=summarize([p50 / 2])),
            Row("cpu.idle_0", "daemon CPU 30 s idle, 0 pods", value=0.05, unit="s"),
        ]

    return Round(
        number,
        [
            RuntimeReport("pycrio", "x", rows=reports(pycrio_ms / 1000)),
            RuntimeReport("containerd", "y", rows=reports(0.2)),
        ],
    )


def test_a_saved_report_becomes_the_docs_tables(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    saved = tmp_path / "report.json"
    document = report.to_json([one_round(1, 100.0), one_round(2, 300.0), one_round(3, 140.0)], {})
    saved.write_text(json.dumps(document))
    assert markdown.main([str(saved)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "| row | pycrio (median) | containerd (median) | ratio per round | median | min-max |"
    assert lines[1] == "| --- | ---: | ---: | ---: | ---: | ---: |"
    assert (
        lines[2] == "| pod run+stop+remove c=1 | 140.00 ms | 200.00 ms | 0.50 1.50 0.70 | 0.70 | 0.50-1.50 |"
    )
    assert lines[3].startswith("| &nbsp;&nbsp;RunPodSandbox c=1 | 70.00 ms |")
    assert (
        lines[4] == "| daemon CPU 30 s idle, 0 pods | 0.05 s | 0.05 s | 1.00 1.00 1.00 | 1.00 | 1.00-1.00 |"
    )
    targets = [line for line in lines if line.startswith("| pod run+stop+remove c=1 | 0.80 |")]
    assert targets == ["| pod run+stop+remove c=1 | 0.80 | 0.50 1.50 0.70 | 0.70 | 0.50-1.50 | - | met |"]


def test_a_floor_row_shows_beside_the_baselines_row_and_in_its_target(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pycrio = [
        Row("rss.idle", "daemon RSS idle", value=52.0, unit="MiB"),
        Row("floor.rss.idle", "daemon RSS idle: floor", value=44.0, unit="MiB"),
    ]
    containerd = [Row("rss.idle", "daemon RSS idle", value=40.0, unit="MiB")]
    rounds = [
        Round(
            1, [RuntimeReport("pycrio", "x", rows=pycrio), RuntimeReport("containerd", "y", rows=containerd)]
        )
    ]
    saved = tmp_path / "report.json"
    saved.write_text(json.dumps(report.to_json(rounds, {})))
    assert markdown.main([str(saved)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "| daemon RSS idle: floor | 44.0 MiB | 40.0 MiB | 1.10 | 1.10 | 1.10-1.10 |" in lines
    assert "| daemon RSS idle | 1.00 | 1.30 | 1.30 | 1.30-1.30 | 1.10 | not met |" in lines


def test_a_report_without_both_runtimes_is_refused(tmp_path: Path) -> None:
    saved = tmp_path / "report.json"
    saved.write_text(json.dumps(report.to_json([Round(1, [RuntimeReport("pycrio", "x")])], {})))
    with pytest.raises(SystemExit):
        markdown.main([str(saved)])
