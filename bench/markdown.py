"""`python -m bench.markdown REPORT.json`: a saved run's ratios and targets as Markdown, for docs/bench.md.

It reads only the JSON that `--json` wrote, so a run on another machine can be pasted as it was measured.
"""

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.report import MS, baseline_key, gauge


def headline(row: dict[str, Any] | None) -> str:
    """A median report row as the docs show it: p50 in ms, or the value with its unit, or its status."""
    if row is None:
        return "-"
    if row["status"] != "ok":
        return str(row["status"])
    if row["latency"] is not None:
        return f"{row['latency']['p50'] * MS:.2f} ms"
    if row["value"] is not None:
        return gauge(float(row["value"]), row["unit"])
    return "-"


def number(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def spread_cells(spread: dict[str, Any] | None) -> list[str]:
    if spread is None:
        return ["-", "-", "-"]
    rounds = " ".join(number(value) for value in spread["rounds"])
    span = "-" if spread["low"] is None else f"{spread['low']:.2f}-{spread['high']:.2f}"
    return [rounds, number(spread["median"]), span]


def label(text: str) -> str:
    """Step rows are indented in the text report; Markdown needs the indent spelt out."""
    stripped = text.lstrip(" ")
    return "&nbsp;&nbsp;" * ((len(text) - len(stripped)) // 2) + stripped


def markdown_table(headers: Sequence[str], lines: Sequence[Sequence[str]]) -> str:
    rule = ["---"] + ["---:"] * (len(headers) - 1)
    return "\n".join("| " + " | ".join(cells) + " |" for cells in [headers, rule, *lines])


def comparison(document: dict[str, Any]) -> str:
    ratios = document["ratios"]
    subject, baseline = ratios["subject"], ratios["baseline"]
    rows = {
        name: {row["key"]: row for row in document["medians"][name]["rows"]} for name in (subject, baseline)
    }
    lines = [
        [
            label(item["label"]),
            headline(rows[subject].get(item["key"])),
            headline(rows[baseline].get(baseline_key(item["key"]))),
            *spread_cells(item["primary"]),
        ]
        for item in ratios["rows"]
    ]
    headers = ["row", f"{subject} (median)", f"{baseline} (median)", "ratio per round", "median", "min-max"]
    return markdown_table(headers, lines)


def targets(document: dict[str, Any]) -> str:
    lines = [
        [
            label(check["label"]),
            f"{check['bound']:.2f}",
            *spread_cells(check["ratio"]),
            number((check.get("floor") or {}).get("median")),
            check["verdict"],
        ]
        for check in document["ratios"]["targets"]
    ]
    return markdown_table(["target", "at most", "per round", "median", "min-max", "floor", "verdict"], lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.markdown", description=__doc__)
    parser.add_argument("report", type=Path, help="a report written by `python -m bench --json`")
    args = parser.parse_args(argv)
    document = json.loads(args.report.read_text())
    if "ratios" not in document:
        parser.error(f"{args.report}: no pycrio/containerd ratios (did both runtimes run?)")
    print(comparison(document))
    print()
    print(targets(document))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
