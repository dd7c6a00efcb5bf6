"""The benchmark against MLflow runs end to end at its smoke sizes and writes its report.

The first run installs MLflow into ./.bench-venv, which takes a minute or two;
later runs reuse it. Only the report's shape is checked, never a speed.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
WORKLOADS = ("W1", "W2", "W3", "W4", "W5", "W6", "W7")
NUMBER = re.compile(r"^-?[\d,]+(\.\d+)?(e[+-]?\d+)?$")


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    output = tmp_path_factory.mktemp("bench") / "benchmarks.md"
    # pytest sets PYTEST_CURRENT_TEST, which switches MLflow into its own test checks.
    environment = {key: value for key, value in os.environ.items() if key != "PYTEST_CURRENT_TEST"}
    finished = subprocess.run(
        ["bash", str(ROOT / "scripts" / "bench"), "--smoke", "--output", str(output)],
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
        env=environment,
        cwd=ROOT,
    )
    return finished, output


def report_rows(report: str) -> list[list[str]]:
    """Return the cells of the results table's rows, one list per workload row."""
    rows = []
    for line in report.splitlines():
        if re.match(r"^\| W\d ", line):
            rows.append([cell.strip() for cell in line.strip("|").split(" | ")])
    return rows


def test_bench_smoke_exits_zero(smoke_run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    finished, _ = smoke_run

    assert finished.returncode == 0, finished.stderr[-4000:]


def test_bench_report_has_every_workload(smoke_run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    _, output = smoke_run
    rows = report_rows(output.read_text(encoding="utf-8"))

    assert sorted({row[0] for row in rows}) == list(WORKLOADS)


def test_bench_rows_have_numbers(smoke_run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    _, output = smoke_run
    rows = report_rows(output.read_text(encoding="utf-8"))

    for row in rows:
        assert len(row) == 8, row
        assert NUMBER.match(row[3]), f"our figure of {row[0]} {row[1]} is not a number: {row[3]!r}"


def test_bench_compares_with_mlflow(smoke_run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    _, output = smoke_run
    rows = report_rows(output.read_text(encoding="utf-8"))

    for row in rows:
        if row[0] in ("W5", "W6"):
            assert row[4] == "no equivalent", row
        else:
            assert NUMBER.match(row[4]), f"MLflow's figure of {row[0]} {row[1]} is not a number: {row[4]!r}"


def test_bench_report_names_command_and_machine(
    smoke_run: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    _, output = smoke_run
    report = output.read_text(encoding="utf-8")

    assert f"bash scripts/bench --smoke --output {output}" in report
    assert re.search(r"^\| mlflow \| \d+\.\d+", report, re.MULTILINE)
    assert re.search(r"^\| eventsourcing \| \d+\.\d+", report, re.MULTILINE)
    assert re.search(r"^\| CPU \| \S", report, re.MULTILINE)


def test_bench_marks_targets(smoke_run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    _, output = smoke_run
    rows = report_rows(output.read_text(encoding="utf-8"))

    # Which targets pass depends on the machine; every row with a target has a verdict.
    for row in rows:
        if row[6] != "-":
            assert row[7] in ("PASS", "MISS"), row
