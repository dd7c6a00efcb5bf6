"""The projection runner: catch-up, rebuilds, crashes, concurrent runners and the scheduled jobs.

Read models are compared row by row with a rebuild from the first event into a
separate SQLite file. Crashes and concurrent runners are real processes that
run the product's own code; a crash is a SIGKILL in the middle of a rebuild.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import os
import signal
import sqlite3
import subprocess
import sys
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from hypothesis import given, settings
from hypothesis import strategies as st

from projections.catalog import CatalogProjection
from projections.history import HistoryProjection
from projections.jobs import schedule_jobs
from projections.runner import ProjectionRunner
from registry import ModelDeprecatedWarning, ModelRegistry, RegistryError

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
NAME = "fraud-detection"

# The read-model tables under test, each with its primary key.
TABLE_KEYS = {
    "catalog_models": "name",
    "catalog_versions": "name, version",
    "catalog_metrics": "name, version, metric",
    "catalog_tags": "name, version, tag",
    "history_transitions": "position",
}
CATALOG_TABLES = [table for table in TABLE_KEYS if table.startswith("catalog_")]
PROJECTIONS = ["catalog", "history"]
# The event classes that the history projection writes one row for.
HISTORY_EVENTS = {"Registered", "Promoted", "Approved", "Rejected", "RolledBack", "Deprecated"}

# Seconds a subprocess may take before the test fails.
SUBPROCESS_TIMEOUT = 120


# --- reading read-model files ------------------------------------------------------


def read_tables(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Return every row of the catalog and history tables in ``path``, ordered by primary key."""
    with contextlib.closing(sqlite3.connect(path)) as connection:
        return {
            table: connection.execute(f"SELECT * FROM {table} ORDER BY {key}").fetchall()
            for table, key in TABLE_KEYS.items()
        }


def read_tracking(path: Path) -> dict[str, tuple[int, int]]:
    """Return (position, rebuilding) per projection, or nothing while the file or table is missing."""
    if not path.exists():
        return {}
    try:
        with contextlib.closing(sqlite3.connect(path, timeout=5)) as connection:
            rows = connection.execute("SELECT projection, position, rebuilding FROM tracking").fetchall()
    except sqlite3.OperationalError:
        return {}
    return {projection: (position, rebuilding) for projection, position, rebuilding in rows}


def stages_in(path: Path, name: str = NAME) -> dict[str, str]:
    with contextlib.closing(sqlite3.connect(path)) as connection:
        return dict(connection.execute("SELECT version, stage FROM catalog_versions WHERE name = ?", [name]))


def history_positions_in(path: Path) -> list[int]:
    with contextlib.closing(sqlite3.connect(path)) as connection:
        return [
            row[0] for row in connection.execute("SELECT position FROM history_transitions ORDER BY position")
        ]


def wait_for_tracking(path: Path, position: int, timeout: float) -> dict[str, tuple[int, int]]:
    """Poll ``path`` until catalog and history reach ``position``, and return the last tracking rows."""
    deadline = time.monotonic() + timeout
    while True:
        tracking = read_tracking(path)
        reached = all(tracking.get(projection, (0, 0))[0] >= position for projection in PROJECTIONS)
        if reached or time.monotonic() > deadline:
            return tracking
        time.sleep(0.05)


# --- subprocesses -----------------------------------------------------------------


def subprocess_env(database_url: str | None = None) -> dict[str, str]:
    """Return this environment with the event store set to ``database_url``, or to SQLite when None."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("REGISTRY_DATABASE_URL", "REGISTRY_HOME")
    }
    if database_url is not None:
        env["REGISTRY_DATABASE_URL"] = database_url
    return env


def run_python(code: str, *args: object, database_url: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYTHON, "-c", code, *map(str, args)],
        check=False,
        cwd=ROOT,
        env=subprocess_env(database_url),
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT,
    )


def run_script(
    script: str, *args: object, database_url: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYTHON, str(ROOT / "scripts" / script), *map(str, args)],
        check=False,
        cwd=ROOT,
        env=subprocess_env(database_url),
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT,
    )


def start_python(code: str, *args: object, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as stderr:
        return subprocess.Popen(
            [PYTHON, "-c", code, *map(str, args)],
            cwd=ROOT,
            env=subprocess_env(),
            stdout=subprocess.PIPE,
            stderr=stderr,
        )


def wait_until_ready(process: subprocess.Popen[bytes], ready: Path, log: Path) -> None:
    deadline = time.monotonic() + SUBPROCESS_TIMEOUT
    while not ready.exists():
        assert process.poll() is None, f"runner exited early: {log.read_text()[-2000:]}"
        assert time.monotonic() < deadline, f"runner did not start: {log.read_text()[-2000:]}"
        time.sleep(0.01)


# A rebuild of catalog and history into argv[2], 50 notifications a page, slowed
# down after each page so that the test can kill it in the middle.
SLOW_REBUILD = """
import logging, sys, time
from pathlib import Path
from projections.catalog import CatalogProjection
from projections.history import HistoryProjection
from projections.runner import ProjectionRunner
from registry import ModelRegistry

logging.basicConfig(level=logging.INFO)
with ModelRegistry(home=sys.argv[1]) as registry:
    live = registry.projection_runner()
    projections = [CatalogProjection(), HistoryProjection()]
    runner = ProjectionRunner(live.recorder, live.mapper, Path(sys.argv[2]), projections, batch_size=50)
    runner.rebuild(progress=lambda position, stop: time.sleep(0.02))
"""

# A catch-up of catalog and history into argv[2] that opens its runner first,
# creates argv[4] and then waits for argv[3], so that several runners start together.
# With argv[5] == "open-late", the runner opens the read database after the wait.
CATCH_UP_TOGETHER = """
import sys, time
from pathlib import Path
from projections.catalog import CatalogProjection
from projections.history import HistoryProjection
from projections.runner import ProjectionRunner
from registry import ModelRegistry

home, when = sys.argv[1], sys.argv[5]
target, go, ready = Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4])
with ModelRegistry(home=home) as registry:
    live = registry.projection_runner()

    def open_runner():
        return ProjectionRunner(
            live.recorder, live.mapper, target, [CatalogProjection(), HistoryProjection()], batch_size=50
        )

    runner = open_runner() if when == "open-early" else None
    ready.touch()
    while not go.exists():
        time.sleep(0.001)
    runner = runner or open_runner()
    print(runner.catch_up(progress=lambda position, stop: time.sleep(0.002)))
"""

# Prints the peak resident set size, in KiB, of a rebuild of catalog and history.
# It reads VmHWM, because ru_maxrss is preserved across execve (getrusage(2)), so
# a child started from pytest would report at least the pytest process's size.
MEASURED_REBUILD = """
import re, sys
from pathlib import Path
from registry import ModelRegistry

with ModelRegistry(home=sys.argv[1]) as registry:
    registry.rebuild_projections(["catalog", "history"], target=sys.argv[2])
print(re.search(r"VmHWM:\\s+(\\d+) kB", Path("/proc/self/status").read_text()).group(1))
"""

WRITE_VERSIONS = """
import sys
from registry import ModelRegistry

with ModelRegistry(home=sys.argv[1], actor="bob") as registry:
    for version in sys.argv[3:]:
        registry.register_model(sys.argv[2], {"version": version}, version=version)
"""


# --- event stores shared by the slow tests --------------------------------------------


@dataclass(frozen=True)
class Store:
    """A SQLite registry home full of events, and what a clean rebuild of it contains."""

    home: Path
    max_position: int
    # Notification ids by event class name.
    positions: dict[str, list[int]]
    # Events with a history row, counted from registry.events() of every model.
    history_event_count: int
    clean: dict[str, list[tuple[Any, ...]]]

    def positions_up_to(self, position: int, events: Sequence[str]) -> list[int]:
        return sorted(p for event in events for p in self.positions.get(event, []) if p <= position)


def populate(home: Path, models: int, notes_size: int) -> Store:
    """Write 14 events per model through the API and rebuild them once into ``clean.sqlite3``.

    Each version carries ``notes_size`` characters of notes, so that a runner
    that kept whole event payloads in memory would show in its peak RSS.
    """
    notes = "n" * notes_size
    with ModelRegistry(home=home, actor="alice") as registry:
        names = [f"model-{number:03d}" for number in range(models)]
        for name in names:
            for minor in range(1, 7):
                registry.register_model(
                    name,
                    {"minor": minor},
                    version=f"1.{minor}.0",
                    metadata={"accuracy": 0.8 + minor / 100, "notes": notes},
                    tags=["bulk", f"minor-{minor}"],
                )
            registry.promote_model(name, "1.1.0", "dev", "staging")
            registry.promote_model(name, "1.1.0", "staging", "production")
            registry.promote_model(name, "1.2.0", "dev", "staging")
            registry.promote_model(name, "1.2.0", "staging", "production")
            registry.deprecate_model(name, "1.3.0", "superseded")
            registry.rollback(name, "1.1.0", "regression in 1.2.0")

        # Opening the live runner once creates home/read_models.sqlite3 before any
        # subprocess opens it.
        recorder = registry.projection_runner().recorder
        max_position = recorder.max_notification_id() or 0
        positions: dict[str, list[int]] = {}
        for notification in recorder.select_notifications(start=1, limit=max_position):
            positions.setdefault(notification.topic.rsplit(":", 1)[-1], []).append(notification.id)
        history_event_count = sum(
            type(event).__name__ in HISTORY_EVENTS for name in names for event in registry.events(name)
        )
        clean = read_tables(registry.rebuild_projections(PROJECTIONS, target=home.parent / "clean.sqlite3"))
    return Store(home, max_position, positions, history_event_count, clean)


@pytest.fixture(scope="module")
def large_store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    """About 3,000 events: 215 models with 6 versions each."""
    return populate(tmp_path_factory.mktemp("large") / "home", models=215, notes_size=16_000)


@pytest.fixture(scope="module")
def small_store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    """About 300 events, a tenth of the large store."""
    return populate(tmp_path_factory.mktemp("small") / "home", models=22, notes_size=16_000)


def test_large_store_has_expected_events(large_store: Store) -> None:
    assert large_store.max_position == 215 * 14
    assert large_store.history_event_count == 215 * 13
    assert len(large_store.clean["history_transitions"]) == large_store.history_event_count


# --- incremental catch-up equals a rebuild --------------------------------------------


# Commands mostly get valid arguments; about one draw in six picks an invalid one.
KINDS = [
    "promote",
    "promote",
    "promote",
    "register",
    "register",
    "approve",
    "reject",
    "rollback",
    "deprecate",
]
SLOTS = [0, 0, 0, 0, 1, 1, 2]  # slot 2 is an invalid model name
VERSIONS = ["v1.0.0", "v1.1.0", "v2.0.0-rc.1", "v3.0.0"]
INVALID_VERSION = "not-a-version"
STAGES = ["dev", "staging", "production", "archived", "prod"]
NEXT_STAGE = {"dev": "staging", "staging": "production", "production": "archived", "archived": "archived"}
APPROVERS = ["bob", "carol", "bob", "carol", "alice", "mallory"]  # alice registers, mallory is not listed
ENDS_OF_LIFE = [None, None, "2030-06-01", "2024-01-01"]


def current_views(registry: ModelRegistry, name: str) -> dict[str, Any]:
    try:
        return {view.version: view for view in registry.list_versions(name)}
    except RegistryError:
        return {}


def draw_command(data: st.DataObject, registry: ModelRegistry, names: list[str]) -> tuple[Any, ...]:
    """Draw a command, mostly on versions that exist and from the stage they are in."""

    def rarely() -> bool:
        return data.draw(st.integers(0, 5)) == 0

    slot = data.draw(st.sampled_from(SLOTS))
    views = current_views(registry, names[slot])
    stages = {version: view.stage for version, view in views.items()}
    kind = "register" if not stages and not rarely() else data.draw(st.sampled_from(KINDS))
    reason = " " if rarely() else "regression"

    if kind == "register":
        unused = [version for version in VERSIONS if version not in stages]
        version = data.draw(st.sampled_from(unused)) if unused and not rarely() else INVALID_VERSION
        stage = "prod" if rarely() else data.draw(st.sampled_from(["dev", "dev", "staging"]))
        return (kind, slot, version, stage)

    if kind == "rollback":
        # Rollback targets are versions that were in production before.
        earlier = {
            version: view.stage
            for version, view in views.items()
            if view.deployed_at is not None and view.stage != "production"
        }
        stages = earlier or stages
    if stages and not rarely():
        version = data.draw(st.sampled_from(sorted(stages)))
    else:
        version = data.draw(st.sampled_from([*VERSIONS, INVALID_VERSION]))

    if kind == "promote":
        if version in stages and not rarely():
            from_stage = stages[version]
            to_stage = NEXT_STAGE[from_stage]
        else:
            from_stage = data.draw(st.sampled_from(STAGES))
            to_stage = data.draw(st.sampled_from(STAGES))
        # A promotion to production is approved first, by an approver who may not be allowed.
        approver = data.draw(st.sampled_from(APPROVERS)) if to_stage == "production" else None
        return (kind, slot, version, from_stage, to_stage, approver)
    if kind == "approve":
        return (kind, slot, version, data.draw(st.sampled_from(APPROVERS)))
    if kind == "reject":
        return (kind, slot, version, data.draw(st.sampled_from(APPROVERS)), reason)
    if kind == "rollback":
        return (kind, slot, version, reason)
    return (kind, slot, version, reason, data.draw(st.sampled_from(ENDS_OF_LIFE)))


def run_command(registry: ModelRegistry, names: list[str], command: tuple[Any, ...]) -> None:
    """Run ``command`` through the API. Any of its calls may raise a RegistryError."""
    kind, slot, version, *arguments = command
    name = names[slot]
    if kind == "register":
        registry.register_model(
            name,
            {"version": version},
            version=version,
            stage=arguments[0],
            metadata={"accuracy": 0.8 + slot / 10},
            tags=["fraud", f"slot-{slot}"],
        )
    elif kind == "promote":
        from_stage, to_stage, approver = arguments
        if approver is not None:
            with contextlib.suppress(RegistryError):
                registry.approve_model(name, version, approver, "looks good")
        registry.promote_model(name, version, from_stage, to_stage)
    elif kind == "approve":
        registry.approve_model(name, version, arguments[0], "looks good")
    elif kind == "reject":
        registry.reject_model(name, version, arguments[0], arguments[1])
    elif kind == "rollback":
        registry.rollback(name, version, arguments[0])
    elif kind == "deprecate":
        registry.deprecate_model(name, version, arguments[0], end_of_life=arguments[1])
    else:
        raise AssertionError(kind)


def test_incremental_read_models_equal_rebuild(registry: ModelRegistry, clock: Any, tmp_path: Path) -> None:
    registry.set_approval_required(stage="production", approvers=["bob", "carol"], min_approvals=1)
    example_numbers = itertools.count()

    @settings(max_examples=25, deadline=None)
    @given(data=st.data(), length=st.integers(5, 25))
    def check(data: st.DataObject, length: int) -> None:
        # Every example gets new model names, because the store keeps the events of earlier examples.
        number = next(example_numbers)
        names = [f"example-{number}-a", f"example-{number}-b", "Not A Valid Name"]
        sequence = []
        for _ in range(length):
            command = draw_command(data, registry, names)
            sequence.append(command)
            clock.advance(hours=1)
            # A rollback to a deprecated version warns, and such rollbacks are among the commands drawn.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ModelDeprecatedWarning)
                try:
                    run_command(registry, names, command)
                except RegistryError:
                    pass
            # Each read catches the live read models up with the new events.
            registry.list_models()

        fresh = registry.rebuild_projections(PROJECTIONS, target=tmp_path / f"fresh-{number}.sqlite3")

        incremental = read_tables(registry.read_models_path)
        rebuilt = read_tables(fresh)
        for table in TABLE_KEYS:
            assert incremental[table] == rebuilt[table], f"{table} after {sequence}"

    check()


class FailingOnceCatalog(CatalogProjection):
    """A catalog that raises while applying the event at one position, the first time only."""

    def __init__(self, position: int) -> None:
        super().__init__()
        self.fail_at: int | None = position

    def apply(self, db: Any, event: Any, position: int) -> None:
        if position == self.fail_at:
            self.fail_at = None
            raise RuntimeError(f"injected failure at {position}")
        super().apply(db, event, position)


def test_failed_page_leaves_no_cached_state(small_store: Store, tmp_path: Path) -> None:
    # The catalog keeps a page's changes in memory until the page ends.
    # A failed page must leave none of them for the retry to write.
    target = tmp_path / "retried.sqlite3"
    with ModelRegistry(home=small_store.home) as registry:
        live = registry.projection_runner()
        catalog = FailingOnceCatalog(position=75)
        runner = ProjectionRunner(live.recorder, live.mapper, target, [catalog, HistoryProjection()], batch_size=50)
        try:
            with pytest.raises(RuntimeError, match="injected failure at 75"):
                runner.catch_up()
            position_after_failure = read_tracking(target)["catalog"][0]
            runner.catch_up()
        finally:
            runner.close()

    assert position_after_failure == 50
    tables = read_tables(target)
    for table in CATALOG_TABLES:
        assert tables[table] == small_store.clean[table], table


class CountingMapper:
    """Wraps the registry's mapper and counts the notifications it decodes."""

    def __init__(self, mapper: Any) -> None:
        self.mapper = mapper
        self.decoded = 0

    def to_domain_event(self, notification: Any) -> Any:
        self.decoded += 1
        return self.mapper.to_domain_event(notification)


def test_rebuild_decodes_each_notification_once(small_store: Store, tmp_path: Path) -> None:
    with ModelRegistry(home=small_store.home) as registry:
        live = registry.projection_runner()
        mapper = CountingMapper(live.mapper)
        target = tmp_path / "together.sqlite3"
        runner = ProjectionRunner(live.recorder, mapper, target, [CatalogProjection(), HistoryProjection()])
        try:
            applied = runner.rebuild()
        finally:
            runner.close()

    # Both projections apply every notification, from one read and one decode of each.
    assert applied == 2 * small_store.max_position
    assert mapper.decoded == small_store.max_position
    assert read_tables(target) == small_store.clean


def test_uneven_positions_catch_up_together(small_store: Store, tmp_path: Path) -> None:
    target = tmp_path / "uneven.sqlite3"
    with ModelRegistry(home=small_store.home) as registry:
        live = registry.projection_runner()
        mapper = CountingMapper(live.mapper)
        runner = ProjectionRunner(
            live.recorder, mapper, target, [CatalogProjection(), HistoryProjection()], batch_size=40
        )
        try:
            caught_up_catalog = runner.catch_up(["catalog"])
            mapper.decoded = 0
            applied = runner.catch_up()
            positions = runner.positions()
        finally:
            runner.close()

    # The second catch-up reads the log from history's position, and applies nothing twice to the catalog.
    assert caught_up_catalog == small_store.max_position
    assert applied == small_store.max_position
    assert mapper.decoded == small_store.max_position
    assert positions == {"catalog": small_store.max_position, "history": small_store.max_position}
    assert read_tables(target) == small_store.clean


# --- crashes -----------------------------------------------------------------------


def wait_for_position(process: subprocess.Popen[bytes], target: Path, projection: str, minimum: int) -> None:
    deadline = time.monotonic() + SUBPROCESS_TIMEOUT
    while read_tracking(target).get(projection, (0, 0))[0] < minimum:
        assert process.poll() is None, (
            f"the rebuild exited with {process.returncode} before {projection} reached {minimum}"
        )
        assert time.monotonic() < deadline, f"{projection} did not reach {minimum}"
        time.sleep(0.005)


def kill(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=SUBPROCESS_TIMEOUT)


def test_killed_rebuild_resumes_exactly_once(large_store: Store, tmp_path: Path) -> None:
    target = tmp_path / "rebuild.sqlite3"
    last = large_store.max_position

    # First run: killed part of the way through the log. Catalog and history are rebuilt
    # in one pass, so each committed page moves both positions together.
    first_log = tmp_path / "first.log"
    first = start_python(SLOW_REBUILD, large_store.home, target, log=first_log)
    wait_for_position(first, target, "history", 500)
    kill(first)

    tracking = read_tracking(target)
    first_position = tracking["catalog"][0]
    assert 0 < first_position < last
    assert tracking == {"catalog": (first_position, 1), "history": (first_position, 1)}
    registered = large_store.positions_up_to(first_position, ["Registered"])
    assert len(read_tables(target)["catalog_versions"]) == len(registered)
    assert history_positions_in(target) == large_store.positions_up_to(first_position, sorted(HISTORY_EVENTS))

    # Second run: resumes both where they stopped, and is killed again further on.
    second_log = tmp_path / "second.log"
    second = start_python(SLOW_REBUILD, large_store.home, target, log=second_log)
    wait_for_position(second, target, "history", first_position + 500)
    kill(second)

    second_output = second_log.read_text()
    for projection in ("catalog", "history"):
        assert f"resuming the rebuild of projection {projection} at {first_position}" in second_output
    tracking = read_tracking(target)
    second_position = tracking["history"][0]
    assert first_position < second_position < last
    assert tracking == {"catalog": (second_position, 1), "history": (second_position, 1)}
    assert history_positions_in(target) == large_store.positions_up_to(
        second_position, sorted(HISTORY_EVENTS)
    )

    # Third run: the rebuild script resumes both and finishes. Without --quiet it logs to stderr.
    finished = run_script(
        "rebuild.py",
        "--home",
        large_store.home,
        "--target",
        target,
        "--projection",
        "catalog",
        "--projection",
        "history",
    )

    assert finished.returncode == 0, finished.stderr
    assert f"resuming the rebuild of projection history at {second_position}" in finished.stderr
    assert read_tracking(target) == {"catalog": (last, 0), "history": (last, 0)}
    tables = read_tables(target)
    for table in TABLE_KEYS:
        assert tables[table] == large_store.clean[table], table
    assert len(tables["history_transitions"]) == large_store.history_event_count


class Interrupted(Exception):
    """Raised from a progress callback to stop a rebuild between two pages, as Ctrl-C would."""


def interrupt_at(position: int) -> Any:
    def progress(reached: int, stop: int) -> None:
        if reached >= position:
            raise Interrupted(reached)

    return progress


def test_interrupted_as_of_rebuild_resumes(large_store: Store, tmp_path: Path) -> None:
    target = tmp_path / "past.sqlite3"
    with ModelRegistry(home=large_store.home) as registry:
        # Every event after this one belongs to a later model, so most of the log is past it.
        as_of = registry.events("model-020")[-1].effective_at
        with pytest.raises(Interrupted):
            registry.rebuild_projections(PROJECTIONS, as_of=as_of, target=target, progress=interrupt_at(1500))
        interrupted_at = read_tracking(target)["catalog"]

        registry.rebuild_projections(PROJECTIONS, as_of=as_of, target=target)
        clean = read_tables(
            registry.rebuild_projections(PROJECTIONS, as_of=as_of, target=tmp_path / "clean.sqlite3")
        )

    assert interrupted_at == (1500, 1)
    tables = read_tables(target)
    for table in TABLE_KEYS:
        assert tables[table] == clean[table], table


def test_resume_with_other_limit_restarts(large_store: Store, tmp_path: Path) -> None:
    target = tmp_path / "rebuild.sqlite3"
    with ModelRegistry(home=large_store.home) as registry:
        as_of = registry.events("model-020")[-1].effective_at
        with pytest.raises(Interrupted):
            registry.rebuild_projections(PROJECTIONS, as_of=as_of, target=target, progress=interrupt_at(1500))

        # The same target again, now without as_of, so the result must contain every event.
        registry.rebuild_projections(PROJECTIONS, target=target)

    tables = read_tables(target)
    for table in TABLE_KEYS:
        assert tables[table] == large_store.clean[table], table


# --- rebuilds as of a time or a position -----------------------------------------------


def register(registry: ModelRegistry, version: str) -> None:
    registry.register_model(NAME, {"version": version}, version=version, metadata={"accuracy": 0.9})


def deploy(registry: ModelRegistry, version: str) -> None:
    registry.promote_model(NAME, version, "dev", "staging")
    registry.promote_model(NAME, version, "staging", "production")


def listed_stages(registry: ModelRegistry) -> dict[str, str]:
    return {view.version: view.stage for view in registry.list_versions(NAME)}


def replayed_stages(events: Sequence[Any]) -> dict[str, str]:
    aggregate = None
    for event in events:
        aggregate = event.mutate(aggregate)
    assert aggregate is not None
    return {version: state.stage for version, state in aggregate.versions.items()}


@pytest.fixture
def two_deployments(registry: ModelRegistry, clock: Any) -> dict[str, Any]:
    """v1 deployed at the start, v2 ten days later, then a rollback and v4 ten days after that."""
    started = clock.now
    for version in ("v1", "v2", "v3"):
        register(registry, version)
    deploy(registry, "v1")
    first = {"stages": listed_stages(registry)}
    clock.advance(days=10)
    deploy(registry, "v2")
    second = {
        "stages": listed_stages(registry),
        "position": registry.projection_runner().recorder.max_notification_id(),
        "event_count": len(registry.events(NAME)),
    }
    clock.advance(days=10)
    registry.rollback(NAME, "v1", "error rate doubled")
    registry.deprecate_model(NAME, "v2", "unstable")
    register(registry, "v4")
    return {"started": started, "first": first, "second": second}


def test_as_of_rebuild_matches_past_state(
    registry: ModelRegistry, two_deployments: dict[str, Any], tmp_path: Path
) -> None:
    as_of = two_deployments["started"] + dt.timedelta(days=5)

    past = registry.rebuild_projections(PROJECTIONS, as_of=as_of, target=tmp_path / "as-of.sqlite3")

    stages = stages_in(past)
    assert stages == two_deployments["first"]["stages"]
    assert [v for v, stage in stages.items() if stage == "production"] == [
        registry.get_model_by_date(NAME, as_of).version
    ]


def test_as_of_rebuild_keeps_earlier_history(
    registry: ModelRegistry, two_deployments: dict[str, Any], tmp_path: Path
) -> None:
    as_of = two_deployments["started"] + dt.timedelta(days=5)
    expected = [
        event
        for event in registry.events(NAME)
        if type(event).__name__ in HISTORY_EVENTS and event.effective_at <= as_of
    ]

    past = registry.rebuild_projections(PROJECTIONS, as_of=as_of, target=tmp_path / "as-of.sqlite3")

    rows = read_tables(past)["history_transitions"]
    assert len(rows) == len(expected)


def test_position_rebuild_matches_replay(
    registry: ModelRegistry, two_deployments: dict[str, Any], tmp_path: Path
) -> None:
    second = two_deployments["second"]

    past = registry.rebuild_projections(
        PROJECTIONS, position=second["position"], target=tmp_path / "position.sqlite3"
    )

    assert stages_in(past) == replayed_stages(registry.events(NAME)[: second["event_count"]])
    assert stages_in(past) == second["stages"]
    assert read_tracking(past) == {"catalog": (second["position"], 0), "history": (second["position"], 0)}


# --- other processes -------------------------------------------------------------------


def test_catch_up_reads_other_process_events(registry: ModelRegistry) -> None:
    register(registry, "v1")
    assert list(listed_stages(registry)) == ["v1.0.0"]

    written = run_python(
        WRITE_VERSIONS, registry.home, NAME, "v1.1.0", "v2.0.0", database_url=registry.database_url
    )
    assert written.returncode == 0, written.stderr

    # Two new events, applied to each of the two projections.
    assert registry.catch_up_projections(PROJECTIONS) == 4
    assert list(listed_stages(registry)) == ["v1.0.0", "v1.1.0", "v2.0.0"]
    assert registry.list_versions(NAME)[-1].registered_by == "bob"


def test_concurrent_runners_apply_events_once(large_store: Store, tmp_path: Path) -> None:
    target = tmp_path / "shared.sqlite3"
    go = tmp_path / "go"
    with ModelRegistry(home=large_store.home) as registry:
        live = registry.projection_runner()
        # Create the read database here, so the two runners below only share its pages.
        ProjectionRunner(
            live.recorder, live.mapper, target, [CatalogProjection(), HistoryProjection()]
        ).close()

    runners = []
    for number in range(2):
        log = tmp_path / f"runner-{number}.log"
        ready = tmp_path / f"ready-{number}"
        process = start_python(CATCH_UP_TOGETHER, large_store.home, target, go, ready, "open-early", log=log)
        wait_until_ready(process, ready, log)
        runners.append((process, log))
    go.touch()

    applied = 0
    for process, log in runners:
        output, _ = process.communicate(timeout=SUBPROCESS_TIMEOUT)
        assert process.returncode == 0, log.read_text()[-2000:]
        applied += int(output.decode().strip())

    # Every notification is applied once to catalog and once to history, by one runner or the other.
    assert applied == 2 * large_store.max_position
    tables = read_tables(target)
    assert len(tables["history_transitions"]) == large_store.history_event_count
    for table in TABLE_KEYS:
        assert tables[table] == large_store.clean[table], table


def test_runners_opening_new_database_together(small_store: Store, tmp_path: Path) -> None:
    target = tmp_path / "new.sqlite3"
    go = tmp_path / "go"
    runners = []
    for number in range(3):
        log = tmp_path / f"runner-{number}.log"
        ready = tmp_path / f"ready-{number}"
        runners.append(
            (
                start_python(CATCH_UP_TOGETHER, small_store.home, target, go, ready, "open-late", log=log),
                ready,
                log,
            )
        )
    for process, ready, log in runners:
        wait_until_ready(process, ready, log)
    go.touch()

    for process, _, log in runners:
        process.communicate(timeout=SUBPROCESS_TIMEOUT)
        assert process.returncode == 0, log.read_text()[-2000:]
    assert read_tables(target) == small_store.clean


@pytest.mark.parametrize(
    "module", ["projections.runner", "projections.catalog", "projections.history", "projections.jobs"]
)
def test_module_imports_before_registry(module: str) -> None:
    imported = run_python(f"import {module}")

    assert imported.returncode == 0, imported.stderr[-2000:]


# --- memory ------------------------------------------------------------------------


def peak_rss_of_rebuild(store: Store, target: Path) -> int:
    """Return the peak RSS, in KiB, of a process that rebuilds catalog and history of ``store``."""
    measured = run_python(MEASURED_REBUILD, store.home, target)
    assert measured.returncode == 0, measured.stderr
    return int(measured.stdout.strip().splitlines()[-1])


def test_rebuild_memory_stays_flat(small_store: Store, large_store: Store, tmp_path: Path) -> None:
    # NOTE: the stores contain about 300 and 3,000 events, not 20,000, because writing an event
    # through the API takes milliseconds. The 16 kB of notes per version make up for it.
    small = peak_rss_of_rebuild(small_store, tmp_path / "small.sqlite3")
    large = peak_rss_of_rebuild(large_store, tmp_path / "large.sqlite3")

    # The large store contains about 20 MB of version notes, so a runner that kept
    # every notification of a rebuild in memory would exceed this bound.
    assert large - small < 10 * 1024, f"peak RSS {small} KiB for 300 events, {large} KiB for 3,000"


# --- scheduled jobs and scripts ------------------------------------------------------


def test_scheduled_catch_up_updates_read_models(registry: ModelRegistry) -> None:
    for version in ("v1", "v2", "v3"):
        register(registry, version)
    registry.promote_model(NAME, "v1", "dev", "staging")
    # A new store numbers its notifications from 1, so the last one is the event count.
    last = len(registry.events(NAME))

    scheduler = BackgroundScheduler(timezone="UTC")
    schedule_jobs(scheduler, registry.home, registry.database_url, catch_up_seconds=0.2)
    scheduler.start()
    try:
        tracking = wait_for_tracking(registry.read_models_path, last, timeout=15)
    finally:
        scheduler.shutdown(wait=True)

    assert tracking["catalog"][0] == last
    assert tracking["history"][0] == last
    assert stages_in(registry.read_models_path) == {"v1.0.0": "staging", "v2.0.0": "dev", "v3.0.0": "dev"}


def test_follow_once_applies_pending_events(registry: ModelRegistry) -> None:
    for version in ("v1", "v2"):
        register(registry, version)
    registry.promote_model(NAME, "v2", "dev", "staging")
    last = len(registry.events(NAME))

    followed = run_script("follow.py", "--home", registry.home, "--once", database_url=registry.database_url)

    assert followed.returncode == 0, followed.stderr
    assert "applied" in followed.stdout
    tracking = read_tracking(registry.read_models_path)
    assert tracking["catalog"][0] == last
    assert tracking["history"][0] == last
    assert stages_in(registry.read_models_path) == {"v1.0.0": "dev", "v2.0.0": "staging"}


def test_rebuild_script_rejects_bad_as_of(tmp_path: Path) -> None:
    with ModelRegistry(home=tmp_path / "home", actor="alice") as registry:
        register(registry, "v1")

    rebuilt = run_script("rebuild.py", "--home", tmp_path / "home", "--as-of", "next tuesday", "--quiet")

    assert rebuilt.returncode == 1
    assert len(rebuilt.stderr.strip().splitlines()) == 1, rebuilt.stderr
    assert rebuilt.stderr.startswith("error: invalid as_of 'next tuesday'")
    assert "rebuilt" not in rebuilt.stdout
