"""W7: several processes register versions of one model at once, on one SQLite store.

Each worker registers its versions one after another and reports the versions
that the registry acknowledged. Afterwards the store is read back: a duplicate is
a version number stored twice, or one worker's registration stored under two
versions. A lost registration is one that the registry acknowledged but that
the store does not have. A registration that raised is counted as failed, not lost.
"""

from __future__ import annotations

import collections
import dataclasses
import multiprocessing
import queue
import threading
import time
import traceback
from pathlib import Path
from typing import Any

# Seconds to wait for every worker to import its libraries and open the store.
START_TIMEOUT_SECONDS = 300

# Seconds to wait for all workers to finish before the run counts as hung.
FINISH_TIMEOUT_SECONDS = 3600

MODEL = "concurrent-model"


@dataclasses.dataclass
class Outcome:
    """The counts and duration of one concurrent run, summed over its workers."""

    registered: int
    failed: int
    duplicates: int
    lost: int
    seconds: float
    errors: list[str]

    @property
    def throughput(self) -> float:
        return self.registered / self.seconds if self.seconds else 0.0


def run_concurrently(side: str, folder: Path, writers: int, registrations: int) -> Outcome:
    """Run ``writers`` processes that each register ``registrations`` versions on ``side``.

    ``side`` is "ours" or "mlflow".
    """
    seed(side, folder)
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(writers)
    results: Any = context.Queue()
    processes = [
        context.Process(target=_worker, args=(side, folder, writer, registrations, barrier, results))
        for writer in range(writers)
    ]
    for process in processes:
        process.start()
    reports = []
    try:
        for _ in processes:
            reports.append(results.get(timeout=START_TIMEOUT_SECONDS + FINISH_TIMEOUT_SECONDS))
    except queue.Empty:
        for process in processes:
            process.kill()
        raise RuntimeError(f"the {side} workers did not finish within {FINISH_TIMEOUT_SECONDS} s") from None
    for process in processes:
        process.join()

    acknowledged = {
        (r["writer"], sequence): version for r in reports for sequence, version in r["acknowledged"]
    }
    stored = read_back(side, folder)
    return _outcome(reports, acknowledged, stored)


def seed(side: str, folder: Path) -> None:
    """Create the model with one version before the workers start, because MLflow needs the model to exist."""
    if side == "ours":
        from bench_data import TINY_MODEL

        from registry import ModelRegistry

        with ModelRegistry(home=folder, actor="seed") as registry:
            registry.register_model(MODEL, TINY_MODEL, metadata={"writer": -1, "sequence": 0})
        return
    from bench_mlflow import MlflowRegistry

    mlflow_registry = MlflowRegistry(folder)
    mlflow_registry.client.create_registered_model(MODEL)
    mlflow_registry.client.create_model_version(
        MODEL, source=_mlflow_source(folder), tags={"writer": "-1", "sequence": "0"}
    )


def read_back(side: str, folder: Path) -> list[tuple[str, int, int]]:
    """Return every stored version of the model as (version, writer, sequence), the seed included."""
    if side == "ours":
        from registry import ModelRegistry
        from registry.events import Registered

        with ModelRegistry(home=folder, actor="check") as registry:
            return [
                (event.version, int(event.metadata["writer"]), int(event.metadata["sequence"]))
                for event in registry.events(MODEL)
                if isinstance(event, Registered)
            ]
    from bench_mlflow import MlflowRegistry

    mlflow_registry = MlflowRegistry(folder)
    return [
        (str(version.version), int(version.tags["writer"]), int(version.tags["sequence"]))
        for version in mlflow_registry.search(f"name='{MODEL}'")
    ]


def _outcome(
    reports: list[dict[str, Any]],
    acknowledged: dict[tuple[int, int], str],
    stored: list[tuple[str, int, int]],
) -> Outcome:
    version_counts = collections.Counter(version for version, _, _ in stored)
    registration_counts = collections.Counter((writer, sequence) for _, writer, sequence in stored)
    duplicates = sum(count - 1 for count in version_counts.values() if count > 1)
    duplicates += sum(count - 1 for count in registration_counts.values() if count > 1)
    stored_set = set(stored)
    lost = sum(
        1
        for (writer, sequence), version in acknowledged.items()
        if (version, writer, sequence) not in stored_set
    )
    start = min(r["started"] for r in reports)
    end = max(r["ended"] for r in reports)
    errors = [error for r in reports for error in r["errors"]]
    return Outcome(
        registered=len(acknowledged),
        failed=len(errors),
        duplicates=duplicates,
        lost=lost,
        seconds=end - start,
        errors=errors,
    )


def _worker(side: str, folder: Path, writer: int, registrations: int, barrier: Any, results: Any) -> None:
    """Register ``registrations`` versions and put a report of them on ``results``."""
    acknowledged: list[tuple[int, str]] = []
    errors: list[str] = []
    try:
        register = _ours_registrar(folder, writer) if side == "ours" else _mlflow_registrar(folder)
    except Exception:  # noqa: BLE001 - a worker that cannot open its store reports why and registers nothing
        errors.append(traceback.format_exc(limit=3))
        register = None
    # Every worker waits here, so the registrations of all of them overlap.
    try:
        barrier.wait(timeout=START_TIMEOUT_SECONDS)
    except threading.BrokenBarrierError:
        errors.append(f"writer {writer}: the other workers did not start within {START_TIMEOUT_SECONDS} s")
        register = None
    started = time.monotonic()
    for sequence in range(registrations if register else 0):
        try:
            acknowledged.append((sequence, register(writer, sequence)))
        except Exception as error:  # noqa: BLE001 - every failure is counted and reported, of either registry
            errors.append(f"{type(error).__name__}: {error}")
    ended = time.monotonic()
    results.put(
        {"writer": writer, "acknowledged": acknowledged, "errors": errors, "started": started, "ended": ended}
    )


def _ours_registrar(folder: Path, writer: int) -> Any:
    from bench_data import TINY_MODEL

    from registry import ModelRegistry

    registry = ModelRegistry(home=folder, actor=f"writer-{writer}")

    def register(writer: int, sequence: int) -> str:
        version = registry.register_model(
            MODEL, TINY_MODEL, metadata={"writer": writer, "sequence": sequence}
        )
        return version.version

    return register


def _mlflow_registrar(folder: Path) -> Any:
    from bench_mlflow import MlflowRegistry, configure_offline

    configure_offline()
    client = MlflowRegistry(folder).client
    source = _mlflow_source(folder)

    def register(writer: int, sequence: int) -> str:
        version = client.create_model_version(
            MODEL, source=source, tags={"writer": str(writer), "sequence": str(sequence)}
        )
        return str(version.version)

    return register


def _mlflow_source(folder: Path) -> str:
    # The versions refer to one artifact folder; registering by reference copies nothing.
    source = folder / "artifacts" / "model"
    source.mkdir(parents=True, exist_ok=True)
    return source.as_uri()
