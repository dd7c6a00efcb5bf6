"""Sizes, result rows, statistics and profiling shared by the benchmark modules."""

from __future__ import annotations

import cProfile
import dataclasses
import io
import math
import pstats
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def _size(default: int, help: str) -> Any:
    return dataclasses.field(default=default, metadata={"help": help})


@dataclasses.dataclass(frozen=True)
class Sizes:
    """How much work each workload does; the defaults are the full benchmark."""

    repeats: int = _size(3, "repeats of each workload; the median is reported")
    register_versions: int = _size(300, "W1: versions registered per repeat, metadata only")
    register_artifacts: int = _size(30, "W1: versions registered per repeat with a scikit-learn artifact")
    promotions: int = _size(200, "W2: promotions to production per repeat")
    read_versions: int = _size(100, "W3: versions of the model that is read")
    reads: int = _size(1000, "W3: reads of the production version per repeat")
    history_versions: int = _size(10_000, "W4 and W5: versions of the model with a long history")
    history_events: int = _size(100_000, "W5: events of that model, at most 10 per version")
    searches: int = _size(5, "W4: runs of each query per repeat")
    point_queries: int = _size(50, "W5: get_model_by_date queries per repeat")
    replays: int = _size(1, "W5: naive full replays per repeat")
    rebuild_events: int = _size(1_000_000, "W6: events in the store that is rebuilt")
    rebuild_models: int = _size(1_000, "W6: models those events are spread over")
    writers: int = _size(8, "W7: processes that register at the same time")
    writer_registrations: int = _size(50, "W7: registrations per process")

    @classmethod
    def smoke(cls) -> Sizes:
        """Return sizes small enough for a run of well under a minute."""
        return cls(
            repeats=1,
            register_versions=5,
            register_artifacts=2,
            promotions=5,
            read_versions=5,
            reads=20,
            history_versions=100,
            history_events=1000,
            searches=1,
            point_queries=5,
            replays=1,
            rebuild_events=2000,
            rebuild_models=10,
            writers=2,
            writer_registrations=3,
        )

    def scaled(self, factor: float) -> Sizes:
        """Return these sizes with every count multiplied by ``factor``, except repeats, writers and replays."""
        fixed = {"repeats", "writers", "replays"}
        changes = {
            field.name: max(1, round(getattr(self, field.name) * factor))
            for field in dataclasses.fields(self)
            if field.name not in fixed
        }
        return dataclasses.replace(self, **changes)


@dataclasses.dataclass
class Row:
    """One figure of the results table: our value, MLflow's, and the target.

    ``better`` is "higher" for rates, "lower" for times and sizes, and "none"
    for counts that must be zero; it decides how the speed-up is computed.
    """

    workload: str
    case: str
    unit: str
    ours: float
    mlflow: float | None = None
    mlflow_note: str = ""
    better: str = "higher"
    target: str = ""
    passed: bool | None = None
    note: str = ""
    # The key in ``Bench.profilers`` of the profiler for our side of this figure.
    profile_key: str = ""

    @property
    def speedup(self) -> float | None:
        """How many times faster (or smaller) our figure is than MLflow's; None without a comparison."""
        if self.mlflow is None or self.better == "none":
            return None
        if self.better == "higher":
            return self.ours / self.mlflow if self.mlflow else None
        return self.mlflow / self.ours if self.ours else None


def ratio_target(row: Row, factor: float) -> Row:
    """Set ``row``'s target to "at least ``factor`` times better than MLflow" and check it."""
    row.target = f"≥ {factor:g}× MLflow" if row.better == "higher" else f"≤ 1/{factor:g} of MLflow"
    speedup = row.speedup
    row.passed = speedup is not None and speedup >= factor
    return row


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else math.nan


def percentile(values: Sequence[float], fraction: float) -> float:
    """Return the ``fraction`` quantile of ``values`` by linear interpolation between ranks."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * fraction
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def timed(operation: Callable[[], Any]) -> float:
    """Run ``operation`` and return the seconds it took."""
    start = time.perf_counter()
    operation()
    return time.perf_counter() - start


def peak_rss_megabytes() -> float:
    """Return this process's peak resident set size in MB (10**6 bytes), from /proc/self/status.

    VmHWM is the peak of this process's own memory map. On Linux, ``getrusage``'s
    ru_maxrss can instead include the peak of the memory map that the process
    had before it called exec, which for a child is a copy of its parent's.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024 / 1e6
    raise RuntimeError("no VmHWM line in /proc/self/status; peak RSS is read on Linux only")


# --- profiles -------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ProfileEntry:
    """One function of a cProfile run, with its cumulative time as a share of the whole run."""

    function: str
    location: str
    cumulative_seconds: float
    share: float


def profile_with_cprofile(operation: Callable[[], Any], path: Path) -> list[ProfileEntry]:
    """Run ``operation`` under cProfile, write the stats to ``path`` and return the top entries."""
    profiler = cProfile.Profile()
    profiler.runcall(operation)
    profiler.dump_stats(str(path.with_suffix(".prof")))
    return summarise_profile(pstats.Stats(profiler), path)


def summarise_profile(stats: pstats.Stats, path: Path, limit: int = 25) -> list[ProfileEntry]:
    """Write the top ``limit`` functions by cumulative time to ``path`` as text and return them.

    Functions of the benchmark scripts and of the profiler are left out, so the
    list starts at the package's and the libraries' code.
    """
    # pstats keeps (file, line, function) -> (calls, primitive calls, own time, cumulative time, callers).
    raw: dict[tuple[str, int, str], tuple[int, int, float, float, Any]] = stats.stats  # type: ignore
    total: float = stats.total_tt  # type: ignore[attr-defined]
    entries = []
    for (filename, line, function), (_, _, _, cumulative, _) in raw.items():
        if "/scripts/bench" in filename or filename.endswith(("cProfile.py", "profile.py")):
            continue
        if function in (
            "<built-in method builtins.exec>",
            "<method 'disable' of '_lsprof.Profiler' objects>",
        ):
            continue
        entries.append(
            ProfileEntry(function, f"{_short_path(filename)}:{line}", cumulative, cumulative / total)
        )
    entries.sort(key=lambda entry: entry.cumulative_seconds, reverse=True)
    top = entries[:limit]
    text = io.StringIO()
    text.write(f"total {total:.3f} s\n")
    for entry in top:
        text.write(
            f"{entry.share:7.1%} {entry.cumulative_seconds:9.3f} s  {entry.function}  {entry.location}\n"
        )
    path.write_text(text.getvalue())
    return top


def profile_with_pyinstrument(operation: Callable[[], Any], path: Path) -> None:
    """Run ``operation`` under pyinstrument's sampling profiler and write its call tree to ``path``."""
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.001)
    profiler.start()
    try:
        operation()
    finally:
        profiler.stop()
    path.write_text(profiler.output_text(unicode=False, color=False, show_all=False))


def _short_path(filename: str) -> str:
    """Return ``filename`` relative to site-packages or the repository, whichever contains it."""
    for marker in ("site-packages/", "lib/python3."):
        if marker in filename:
            tail = filename.split(marker, 1)[1]
            return tail.split("/", 1)[1] if marker == "lib/python3." else tail
    try:
        return str(Path(filename).resolve().relative_to(ROOT))
    except ValueError:
        return filename
