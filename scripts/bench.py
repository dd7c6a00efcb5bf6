"""Benchmark the registry against MLflow's model registry on this machine.

Run it through scripts/bench, which installs MLflow into ./.bench-venv first.
It prints a table and writes docs/benchmarks.md (or --output) with the figures,
the speed-ups, the command and the machine.

Examples:
    bash scripts/bench                                   # the full sizes
    bash scripts/bench --smoke --output /tmp/benchmarks.md
    bash scripts/bench --only W5 --workdir /tmp/bench --profile /tmp/bench-profiles
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import re
import shlex
import shutil
import sys
import tempfile
import time
from pathlib import Path

from bench_mlflow import configure_offline

# MLflow must see its offline settings before anything imports it, here or in a child process.
configure_offline()

from bench_common import ROOT, ProfileEntry, Row, Sizes
from bench_report import Report, describe_machine, print_table, write_markdown
from bench_workloads import WORKLOADS, Bench
from rich.console import Console


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Benchmark the registry against MLflow's model registry.")
    parser.add_argument("--smoke", action="store_true", help="run tiny sizes, in well under a minute")
    parser.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="multiply every size except repeats, writers and replays by this factor (default 1)",
    )
    smoke = Sizes.smoke()
    for field in dataclasses.fields(Sizes):
        option = "--" + field.name.replace("_", "-")
        defaults = f"default {field.default:,}, {getattr(smoke, field.name):,} with --smoke"
        parser.add_argument(option, type=int, default=None, help=f"{field.metadata['help']} ({defaults})")
    parser.add_argument(
        "--only", action="append", choices=sorted(WORKLOADS), help="run only this workload (repeatable)"
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=ROOT / "docs" / "benchmarks.md",
        help="Markdown report to write (default docs/benchmarks.md)",
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="folder for the stores; it is kept, and generated histories in it are reused "
        "(default: a temporary folder, deleted at the end)",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        metavar="FOLDER",
        help="profile one more repeat of our side of each workload that misses a target, "
        "and write the profiles to FOLDER",
    )
    return parser.parse_args(argv)


def sizes_from(args: argparse.Namespace) -> Sizes:
    sizes = Sizes.smoke() if args.smoke else Sizes()
    sizes = sizes.scaled(args.scale) if args.scale != 1.0 else sizes
    overrides = {
        field.name: getattr(args, field.name)
        for field in dataclasses.fields(Sizes)
        if getattr(args, field.name, None) is not None
    }
    for name, value in overrides.items():
        if value < 1:
            raise SystemExit(f"error: --{name.replace('_', '-')} must be 1 or more, got {value}")
    return dataclasses.replace(sizes, **overrides)


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)
    sizes = sizes_from(args)
    console = Console(log_path=False)
    if not console.is_terminal:
        # Rich wraps output that is not a terminal at 80 columns, too narrow for the table.
        console = Console(log_path=False, width=140)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")

    # The benchmark compares SQLite stores; a configured PostgreSQL URL would move our events elsewhere.
    if os.environ.pop("REGISTRY_DATABASE_URL", None):
        console.print("REGISTRY_DATABASE_URL is ignored: the benchmark runs both registries on SQLite files")

    started = time.perf_counter()
    workdir = args.workdir.absolute() if args.workdir else Path(tempfile.mkdtemp(prefix="registry-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    bench = Bench(workdir, sizes, say=lambda text: console.log(text, highlight=False))
    rows: list[Row] = []
    try:
        for workload in args.only or sorted(WORKLOADS):
            bench.say(f"[bold]{workload}[/bold]")
            rows += WORKLOADS[workload](bench)
        profiles = profile_misses(bench, rows, args.profile)
        machine = describe_machine(workdir)
    finally:
        bench.close()
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)

    print_table(rows, console)
    report = Report(
        command=" ".join(["bash scripts/bench", *map(shlex.quote, sys.argv[1:] if argv is None else argv)]),
        rows=rows,
        machine=machine,
        sizes=sizes,
        notes=bench.notes,
        profiles=profiles,
        profile_folder=args.profile,
        seconds=time.perf_counter() - started,
        workdir=f"`{args.workdir}`" if args.workdir else "a temporary folder",
    )
    write_markdown(report, args.output)
    console.print(f"wrote {args.output} ({report.seconds / 60:.1f} minutes)")
    return 0


def profile_misses(bench: Bench, rows: list[Row], folder: Path | None) -> dict[str, list[ProfileEntry]]:
    """Profile our side of every workload case with a missed target; return the top entries by case."""
    if folder is None:
        return {}
    folder.mkdir(parents=True, exist_ok=True)
    missed = sorted({row.profile_key for row in rows if row.passed is False and row.profile_key})
    profiles = {}
    for key in missed:
        bench.say(f"profiling {key}")
        stem = folder / re.sub(r"[^A-Za-z0-9]+", "-", key).strip("-")
        profiles[key] = bench.profilers[key](stem)
    return profiles


if __name__ == "__main__":
    sys.exit(main())
