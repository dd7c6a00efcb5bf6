"""Concurrent writers: real processes register versions of one model at the same moment.

The workers are started with the 'spawn' method and wait on a shared event, so
that their first registrations race. Each worker returns what every call
returned or raised, and how many times the registry logged a retry.
"""

from __future__ import annotations

import logging
import multiprocessing
import queue
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from registry import ConcurrencyConflict, InvalidStage, ModelRegistry, VersionAlreadyExists

NAME = "fraud-detection"
WORKERS = 4
CALLS_PER_WORKER = 10
SAME_VERSION_MODELS = 5
# The call number under which a worker reports an error while opening the registry.
OPENING = -1
# Seconds to wait for all workers to start, and then for them to finish.
START_TIMEOUT = 60
FINISH_TIMEOUT = 120

SPAWN = multiprocessing.get_context("spawn")


@dataclass
class WorkerReport:
    """The outcome of one worker's calls: versions it got, errors it saw, retries logged."""

    worker: int
    versions: list[tuple[int, str]] = field(default_factory=list)  # (call number, version)
    errors: list[tuple[int, str, str]] = field(default_factory=list)  # (call number, class name, message)
    retries: int = 0
    seconds: float = 0.0


class RetryCounter(logging.Handler):
    """Counts the registry's "retrying" log records in a worker."""

    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "retrying" in record.getMessage():
            self.count += 1


def register_in_worker(
    worker: int,
    home: str,
    database_url: str | None,
    version: str | None,
    calls: int,
    open_after_start: bool,
    ready: Any,
    start: Any,
    results: Any,
) -> None:
    """Open a registry, wait for the start signal, then make ``calls`` registrations.

    With ``version`` None every call registers a new version of NAME and lets the
    registry choose its number. Otherwise call N registers ``version`` of model
    NAME-N, so the workers race once per call. With ``open_after_start`` the
    workers also race to open (and create) the store. An error while opening is
    reported as call number OPENING.
    """
    retry_counter = RetryCounter()
    api_logger = logging.getLogger("registry.api")
    api_logger.addHandler(retry_counter)
    api_logger.setLevel(logging.INFO)
    report = WorkerReport(worker)

    def open_registry() -> ModelRegistry | None:
        try:
            return ModelRegistry(home, database_url=database_url, actor=f"worker-{worker}")
        except Exception as error:  # noqa: BLE001 - the parent asserts on every error's class
            report.errors.append((OPENING, type(error).__name__, str(error)))
            return None

    registry = None if open_after_start else open_registry()
    ready.put(worker)
    start.wait()
    began = time.perf_counter()
    if open_after_start:
        registry = open_registry()
    for call in range(calls if registry is not None else 0):
        model = {"worker": worker, "call": call}
        try:
            if version is None:
                registered = registry.register_model(NAME, model, auto_version=True)
            else:
                registered = registry.register_model(f"{NAME}-{call}", model, version=version)
        except Exception as error:  # noqa: BLE001 - the parent asserts on every error's class
            report.errors.append((call, type(error).__name__, str(error)))
        else:
            report.versions.append((call, registered.version))
    report.seconds = time.perf_counter() - began
    report.retries = retry_counter.count
    if registry is not None:
        registry.close()
    results.put(report)


def race(
    home: Path,
    database_url: str | None,
    workers: int,
    calls: int,
    *,
    version: str | None,
    open_after_start: bool = False,
) -> list[WorkerReport]:
    """Run ``workers`` processes that start registering at the same moment; return their reports."""
    ready = SPAWN.Queue()
    results = SPAWN.Queue()
    start = SPAWN.Event()
    processes = [
        SPAWN.Process(
            target=register_in_worker,
            args=(worker, str(home), database_url, version, calls, open_after_start, ready, start, results),
        )
        for worker in range(workers)
    ]
    for process in processes:
        process.start()
    try:
        for _ in processes:
            ready.get(timeout=START_TIMEOUT)
        start.set()
        reports = [results.get(timeout=FINISH_TIMEOUT) for _ in processes]
    except queue.Empty:
        pytest.fail(f"a worker did not report within {START_TIMEOUT + FINISH_TIMEOUT} s")
    finally:
        # Release workers that still wait, so that none outlives the test.
        start.set()
        for process in processes:
            process.join(timeout=FINISH_TIMEOUT)
            if process.is_alive():
                process.kill()
    exit_codes = [process.exitcode for process in processes]
    assert exit_codes == [0] * workers, f"worker exit codes {exit_codes}"
    return sorted(reports, key=lambda report: report.worker)


def prepare_store(home: Path, database_url: str | None) -> None:
    """Create the event store's tables before the race, as an existing registry would have them."""
    ModelRegistry(home, database_url=database_url, actor="setup").close()


def print_throughput(reports: list[WorkerReport], backend: str | None) -> None:
    """Print the race's throughput and retries; pytest shows them with -s."""
    calls = sum(len(report.versions) + len(report.errors) for report in reports)
    slowest = max(report.seconds for report in reports)
    retries = [report.retries for report in reports]
    print(
        f"\n{'postgres' if backend else 'sqlite'}: {calls} registrations by {len(reports)} processes in "
        f"{slowest:.2f} s ({calls / slowest:.0f} per s); retries per worker {retries}"
    )


def successes(reports: list[WorkerReport]) -> list[tuple[int, int, str]]:
    """Return (worker, call number, version) for every successful call."""
    return [(report.worker, call, version) for report in reports for call, version in report.versions]


def registered_events(reader: ModelRegistry, name: str) -> list[Any]:
    return [event for event in reader.events(name) if type(event).__name__ == "Registered"]


def test_racing_auto_versions_lose_nothing(tmp_path: Path, backend: str | None) -> None:
    home = tmp_path / "home"
    prepare_store(home, backend)

    reports = race(home, backend, WORKERS, CALLS_PER_WORKER, version=None)

    print_throughput(reports, backend)
    won = successes(reports)
    versions = [version for _, _, version in won]
    errors = [(report.worker, *error) for report in reports for error in report.errors]
    with ModelRegistry(home, database_url=backend, actor="reader") as reader:
        registered = registered_events(reader, NAME)
        listed = {view.version for view in reader.list_versions(NAME)}
        loaded = {version: reader.get_model(NAME, version=version).model for version in versions}

    assert {version: count for version, count in Counter(versions).items() if count > 1} == {}
    assert [error for error in errors if error[2] != ConcurrencyConflict.__name__] == []
    assert len(registered) == len(won)
    assert sorted(event.version for event in registered) == sorted(versions)
    assert set(versions) <= listed
    for worker, call, version in won:
        assert loaded[version] == {"worker": worker, "call": call}, f"{version} holds another call's model"
    # A call fails only after all of the registry's attempts lost the race, which should be rare.
    assert len(won) >= WORKERS * CALLS_PER_WORKER // 2


def test_racing_same_version_has_one_winner(tmp_path: Path, backend: str | None) -> None:
    home = tmp_path / "home"

    # Each call registers v1 of its own model, so every call number is a separate race.
    # The store does not exist yet, so the workers also race to create its tables.
    reports = race(home, backend, workers=2, calls=SAME_VERSION_MODELS, version="v1", open_after_start=True)

    opening_errors = [error for report in reports for error in report.errors if error[0] == OPENING]
    assert opening_errors == []
    with ModelRegistry(home, database_url=backend, actor="reader") as reader:
        for call in range(SAME_VERSION_MODELS):
            name = f"{NAME}-{call}"
            winners = [report.worker for report in reports if (call, "v1.0.0") in report.versions]
            losers = [error for report in reports for number, error, _ in report.errors if number == call]
            assert len(winners) == 1, f"{name}: winners {winners}"
            assert losers == [VersionAlreadyExists.__name__], f"{name}: errors {losers}"
            assert [event.version for event in registered_events(reader, name)] == ["v1.0.0"]
            stored = reader.get_model(name, version="v1")
            assert stored.model == {"worker": winners[0], "call": call}, f"{name}: the loser's artifact"
            assert stored.registered_by == f"worker-{winners[0]}"


def test_two_registries_on_one_home_see_each_other(tmp_path: Path, backend: str | None) -> None:
    # Each registry keeps the aggregate its last command saved, and the settings it found missing.
    # Neither may hide what the other registry wrote since.
    home = tmp_path / "home"
    with ModelRegistry(home, database_url=backend, actor="alice") as first, ModelRegistry(
        home, database_url=backend, actor="bob"
    ) as second:
        first.register_model(NAME, {"rule": 1}, version="v1", stage="staging")
        second.register_model(NAME, {"rule": 2}, version="v1.1")
        seen_by_first = first.get_model(NAME, version="v1.1").model
        third = first.register_model(NAME, {"rule": 3})
        second.set_approval_required(stage="staging", approvers=["carol"], min_approvals=1)

        with pytest.raises(InvalidStage, match="which needs approvals by policy"):
            first.register_model(NAME, {"rule": 4}, stage="staging")
        first.promote_model(NAME, "v1.1.0", from_stage="dev", to_stage="archived")
        stages = {view.version: view.stage for view in second.list_versions(NAME)}

    assert seen_by_first == {"rule": 2}
    # Same inputs, so the automatic version is a patch after v1.1.0.
    assert third.version == "v1.1.1"
    assert stages == {"v1.0.0": "staging", "v1.1.0": "archived", "v1.1.1": "dev"}
