"""The machine description, the results table on the terminal and the Markdown report."""

from __future__ import annotations

import dataclasses
import importlib.metadata
import math
import os
import platform
import shutil
import sqlite3
import subprocess
from collections.abc import Sequence
from pathlib import Path

from bench_common import ROOT, ProfileEntry, Row, Sizes
from bench_data import EVENTS_PER_SAVE, VERSIONS_PER_INCREMENT
from rich.console import Console
from rich.table import Table

PACKAGES = (
    "event-model-registry",
    "eventsourcing",
    "mlflow",
    "scikit-learn",
    "skops",
    "pydantic",
    "orjson",
    "sqlite-utils",
    "SQLAlchemy",
    "numpy",
)


def describe_machine(workdir: Path) -> dict[str, str]:
    """Return the CPU, memory, disk, operating system, Python and package versions of this run."""
    machine = {
        "CPU": _cpu_model(),
        "cores": f"{os.cpu_count()} logical (os.cpu_count)",
        "RAM": _memory_total(),
        "disk": _disk_of(workdir),
        "OS": f"{platform.system()} {platform.release()}",
        "Python": f"{platform.python_implementation()} {platform.python_version()}",
        "SQLite": sqlite3.sqlite_version,
        "synchronous": _default_synchronous(workdir),
        "commit": _git_commit(),
    }
    for package in PACKAGES:
        try:
            machine[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            machine[package] = "not installed"
    return machine


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_total() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024**2:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def _disk_of(path: Path) -> str:
    """Return the file system type, device and size of the mount that contains ``path``."""
    resolved = str(path.resolve())
    best = ("", "unknown device", "unknown file system")
    try:
        for line in Path("/proc/mounts").read_text().splitlines():
            device, mount, fstype = line.split()[:3]
            inside = resolved == mount or resolved.startswith(mount.rstrip("/") + "/")
            if inside and len(mount) > len(best[0]):
                best = (mount, device, fstype)
    except OSError:
        pass
    usage = shutil.disk_usage(resolved)
    kind = ""
    device_name = Path(best[1]).name
    rotational = Path(f"/sys/block/{device_name}/queue/rotational")
    if rotational.is_file():
        kind = ", rotational" if rotational.read_text().strip() == "1" else ", non-rotational"
    return f"{best[2]} on {best[1]} mounted at {best[0]} ({usage.total / 1e9:.0f} GB{kind})"


def _default_synchronous(workdir: Path) -> str:
    """Return SQLite's default synchronous setting on a new connection; neither registry changes it."""
    probe = workdir / "synchronous-probe.sqlite3"
    connection = sqlite3.connect(probe)
    try:
        level = connection.execute("PRAGMA synchronous").fetchone()[0]
    finally:
        connection.close()
        probe.unlink(missing_ok=True)
    names = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}
    return f"{names.get(level, level)} ({level}), the default of a new connection"


def _git_commit() -> str:
    try:
        commit = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        changed = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--", "registry", "projections"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{commit} with uncommitted changes in registry/ or projections/" if changed else commit


# --- formatting ---------------------------------------------------------------------


def format_value(value: float | None, unit: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if unit == "count":
        return f"{int(value):,}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def format_speedup(row: Row) -> str:
    speedup = row.speedup
    if speedup is None:
        return "-"
    return f"{speedup:.2f}×" if speedup < 10 else f"{speedup:,.0f}×"


def format_result(row: Row) -> str:
    if row.passed is None:
        return "-"
    return "PASS" if row.passed else "MISS"


def _mlflow_cell(row: Row) -> str:
    if row.mlflow is None:
        return row.mlflow_note or "-"
    return format_value(row.mlflow, row.unit)


# --- terminal ---------------------------------------------------------------------


def print_table(rows: Sequence[Row], console: Console) -> None:
    table = Table(title="Our registry against MLflow")
    for column in ("id", "workload", "unit", "ours", "MLflow", "speed-up", "target", "result"):
        table.add_column(column, justify="right" if column in ("ours", "MLflow", "speed-up") else "left")
    for row in rows:
        result = format_result(row)
        style = {"PASS": "green", "MISS": "red"}.get(result, "")
        table.add_row(
            row.workload,
            row.case,
            row.unit,
            format_value(row.ours, row.unit),
            _mlflow_cell(row),
            format_speedup(row),
            row.target or "-",
            f"[{style}]{result}[/]" if style else result,
        )
    console.print(table)


# --- Markdown ---------------------------------------------------------------------


@dataclasses.dataclass
class Report:
    """Everything the Markdown report shows."""

    command: str
    rows: list[Row]
    machine: dict[str, str]
    sizes: Sizes
    notes: dict[str, list[str]]
    profiles: dict[str, list[ProfileEntry]]
    profile_folder: Path | None
    seconds: float
    workdir: str  # as Markdown, such as "`/tmp/bench`" or "a temporary folder"


def write_markdown(report: Report, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_markdown(report))


def _repeats(count: int) -> str:
    return "1 repeat" if count == 1 else f"{count} repeats"


def render_markdown(report: Report) -> str:
    sizes = report.sizes
    summary = (
        f"The run took {report.seconds / 60:.1f} minutes, including the generation of the large histories, "
        f"in {report.workdir}. Each figure is the median of {_repeats(sizes.repeats)}. The speed-up is how "
        "many times faster (or smaller) our figure is than MLflow's in the same run: MLflow's time divided by "
        "ours, or our rate divided by MLflow's."
    )
    lines = [
        "# Benchmarks: event-model-registry against MLflow",
        "",
        "This page is written by `scripts/bench`; run it again to replace the figures.",
        "",
        "```bash",
        report.command,
        "```",
        "",
        summary,
        "",
        "| id | workload | unit | ours | MLflow | speed-up | target | result |",
        "| --- | --- | --- | ---: | ---: | ---: | --- | --- |",
    ]
    for row in report.rows:
        cells = [
            row.workload,
            row.case,
            row.unit,
            format_value(row.ours, row.unit),
            _mlflow_cell(row),
            format_speedup(row),
            row.target or "-",
            format_result(row),
        ]
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    extra = [f"- {row.workload} {row.case}: {row.note}" for row in report.rows if row.note]
    if extra:
        lines += ["", *extra]

    lines += ["", "## Machine", "", "| | |", "| --- | --- |"]
    lines += [f"| {key} | {value} |" for key, value in report.machine.items()]

    lines += ["", "## Method", ""]
    lines += [f"- {paragraph}" for paragraph in _method(sizes)]
    for workload in sorted(report.notes):
        for note in report.notes[workload]:
            lines.append(f"- {workload}: {note}")

    if report.profiles:
        lines += _profile_sections(report)
    lines.append("")
    return "\n".join(lines)


def _method(sizes: Sizes) -> list[str]:
    """Return the paragraphs that describe how both registries were set up and how the data was made."""
    storage = (
        "Both registries use SQLite files on the same disk: ours its event store (WAL journal), MLflow "
        "`sqlite:///.../mlflow.db` with a local artifact folder. Neither changes `PRAGMA synchronous`, so every "
        "commit is synced to disk as SQLite's default requires."
    )
    offline = (
        "MLflow runs with telemetry off (`MLFLOW_DISABLE_TELEMETRY`, `DO_NOT_TRACK`), its logging at ERROR and "
        "its Python warnings hidden, and contacts no server. It is installed only in `.bench-venv/`."
    )
    generated = (
        "W4, W5 and W6 need large histories. Their events are made by the model aggregate's own command methods "
        "(register, set_signature, decide, promote, deprecate), with backfilled effective times 30 s apart, and "
        f"saved through the registry's event store {EVENTS_PER_SAVE} events per transaction. Snapshots are stored "
        "where the event store takes them (`snapshot_due`: every 50 events of a small model, less often as it "
        "grows, every 12,800 events at 10,000 versions), with the same bytes (checked against the "
        "package's `ModelSnapshot.take`). What this skips is per-command overhead: reloading the aggregate, "
        "serialising a model and writing the per-version files. All versions share one artifact blob, and each "
        f"increment contains {VERSIONS_PER_INCREMENT} consecutive versions of one model. A version's cycle of 10 "
        "events is: registered, signature set, approved for staging, promoted to staging, rejected and approved "
        "twice for production, promoted to production (archiving the previous version) and the previous version "
        f"deprecated. MLflow's {sizes.history_versions:,} versions for W4 are made with `create_model_version`, "
        "with the same accuracies and tags."
    )
    listed = ", ".join(f"{field.name}={getattr(sizes, field.name):,}" for field in dataclasses.fields(sizes))
    return [storage, offline, generated, f"Sizes of this run: {listed}."]


def _profile_sections(report: Report) -> list[str]:
    where = f" The full profiles are in `{report.profile_folder}`." if report.profile_folder else ""
    lines = [
        "",
        "## Profiles of the missed targets",
        "",
        (
            "One extra repeat of our side of each missed workload ran under cProfile. The share is the function's "
            f"cumulative time over the whole profiled run, which cProfile itself slows down.{where}"
        ),
    ]
    for case, entries in report.profiles.items():
        lines += [
            "",
            f"### {case}",
            "",
            "| share | cumulative | function | file:line |",
            "| ---: | ---: | --- | --- |",
        ]
        for entry in entries[:15]:
            cells = [
                f"{entry.share:.1%}",
                f"{entry.cumulative_seconds:.3f} s",
                f"`{entry.function}`",
                f"`{entry.location}`",
            ]
            lines.append("| " + " | ".join(cells) + " |")
    return lines
