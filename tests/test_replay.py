"""Replay equivalence: the state the registry serves equals a replay of its stored events.

A replay here starts from None and applies ``event.mutate`` to every event that
``registry.events(name)`` returns, so it ignores snapshots and caches.
"""

from __future__ import annotations

import datetime as dt
import itertools
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from registry import (
    ApprovalMissing,
    InvalidStage,
    ModelDeprecatedWarning,
    ModelNotFound,
    ModelRegistry,
    ModelVersion,
    NoVersionInStage,
    RegistryError,
    RollbackNotAllowed,
)
from registry.aggregate import ModelAggregate
from registry.naming import model_id
from registry.persistence import snapshot_interval

NAME = "fraud-detection"
FEATURES = ["amount", "merchant_risk"]


def replay(events: list[Any]) -> ModelAggregate:
    """Rebuild a model aggregate from ``events`` alone, starting from nothing."""
    aggregate = None
    for event in events:
        aggregate = event.mutate(aggregate)
    assert aggregate is not None, "replay needs at least the ModelCreated event"
    return aggregate


def served_state(registry: ModelRegistry, name: str) -> ModelAggregate:
    """Return the aggregate that ``registry`` serves queries from.

    ModelRegistry has no public accessor for it, so this reads the one its
    repository returns (cache, then the latest snapshot, then newer events).
    """
    return registry._load(name)


def views_of(aggregate: ModelAggregate, registry: ModelRegistry) -> dict[str, dict[str, Any]]:
    """Return every version of ``aggregate`` as the dict that ``ModelVersion.to_dict`` gives."""
    return {
        version: ModelVersion(aggregate.name, state, registry.artifacts.load, utc_now).to_dict()
        for version, state in aggregate.versions.items()
    }


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def listed_views(registry: ModelRegistry, name: str) -> dict[str, dict[str, Any]]:
    return {view.version: view.to_dict() for view in registry.list_versions(name)}


def stored_event_count(registry: ModelRegistry, name: str) -> int:
    try:
        return len(registry.events(name))
    except ModelNotFound:
        return 0


def run_lifecycle(
    registry: ModelRegistry, clock: Any, check: Callable[[ModelVersion], None] = lambda result: None
) -> None:
    """Drive NAME through registrations, approvals, a rejection, promotions, a rollback,
    a deprecation and a signature change, and pass each command's result to ``check``."""
    registry.set_approval_required(stage="production", approvers=["bob", "carol"], min_approvals=1)

    check(
        registry.register_model(
            NAME,
            {"weights": [0.2, 0.8]},
            version="v1",
            metadata={"accuracy": 0.90, "features": FEATURES, "owner": "fraud-team"},
            tags=["baseline"],
        )
    )
    clock.advance(hours=1)
    check(registry.promote_model(NAME, "v1", "dev", "staging"))
    check(registry.approve_model(NAME, "v1", "bob", "meets the accuracy bar"))
    check(registry.promote_model(NAME, "v1", "staging", "production"))

    clock.advance(days=1)
    check(
        registry.register_model(
            NAME,
            {"weights": [0.3, 0.7]},
            version="1.1",
            metadata={"accuracy": 0.93, "features": FEATURES},
            tags=["candidate"],
        )
    )
    check(registry.promote_model(NAME, "v1.1.0", "dev", "staging"))
    check(registry.reject_model(NAME, "v1.1.0", "carol", "needs a fairness review"))
    check(registry.approve_model(NAME, "v1.1.0", "bob", "looks good"))
    with pytest.raises(ApprovalMissing):
        registry.promote_model(NAME, "v1.1.0", "staging", "production")
    check(registry.approve_model(NAME, "v1.1.0", "carol", "review done"))
    clock.advance(hours=2)
    check(registry.promote_model(NAME, "v1.1.0", "staging", "production"))

    clock.advance(hours=3)
    check(registry.rollback(NAME, "v1", "p95 latency doubled"))
    check(registry.deprecate_model(NAME, "v1.1.0", "superseded by v2", end_of_life="2024-06-01"))
    check(
        registry.set_model_signature(
            model=f"{NAME}-v1.0.0",
            inputs={"amount": "float", "merchant_risk": "float"},
            outputs={"fraud": "int"},
        )
    )
    clock.advance(days=2)
    check(
        registry.register_model(
            NAME,
            {"weights": [0.1, 0.9]},
            version="v2",
            metadata={"accuracy": 0.95, "features": FEATURES + ["country"]},
            stage="staging",
        )
    )


# --- a full lifecycle -----------------------------------------------------------


def test_replay_matches_served_versions(registry: ModelRegistry, clock: Any) -> None:
    run_lifecycle(registry, clock)

    replayed = replay(registry.events(NAME))

    assert replayed.versions == served_state(registry, NAME).versions


def test_replay_matches_served_production(registry: ModelRegistry, clock: Any) -> None:
    run_lifecycle(registry, clock)

    replayed = replay(registry.events(NAME))

    assert replayed.production == "v1.0.0"
    assert served_state(registry, NAME).production == replayed.production


def test_replay_matches_served_position(registry: ModelRegistry, clock: Any) -> None:
    run_lifecycle(registry, clock)

    replayed = replay(registry.events(NAME))
    served = served_state(registry, NAME)

    assert replayed.version == served.version
    assert replayed.modified_on == served.modified_on
    assert replayed.last_effective_at == served.last_effective_at


def test_reopened_registry_lists_replayed_versions(
    registry: ModelRegistry, make_registry: Any, clock: Any
) -> None:
    run_lifecycle(registry, clock)
    replayed = replay(registry.events(NAME))

    reopened = make_registry(actor="dave")

    assert listed_views(reopened, NAME) == views_of(replayed, reopened)


def test_reopened_registry_serves_replayed_production(
    registry: ModelRegistry, make_registry: Any, clock: Any
) -> None:
    run_lifecycle(registry, clock)
    replayed = replay(registry.events(NAME))

    reopened = make_registry(actor="dave")

    assert reopened.get_model(NAME).version == replayed.production
    assert reopened.get_model(NAME, stage="staging").version == "v2.0.0"


def test_command_results_match_reopened_reads(
    registry: ModelRegistry, make_registry: Any, clock: Any
) -> None:
    reader = make_registry(actor="dave")
    checked = []

    def compare_with_reader(returned: ModelVersion) -> None:
        stored = listed_views(reader, NAME)[returned.version]
        assert returned.to_dict() == stored, f"{returned.version} after {registry.history(NAME)[-1].event}"
        checked.append(returned.version)

    run_lifecycle(registry, clock, compare_with_reader)

    assert len(checked) == 14


def test_non_json_metadata_survives_reload(registry: ModelRegistry, make_registry: Any) -> None:
    returned = registry.register_model(
        NAME,
        {"weights": [1.0]},
        version="v1",
        metadata={
            "window": (3, 4),
            "trained_at": dt.datetime(2024, 1, 9, 18, 30, tzinfo=dt.timezone.utc),
            "n_estimators": np.int64(30),
            "learning_rate": np.float32(0.25),
        },
    )

    reopened = make_registry(actor="dave").get_model(NAME, version="v1")

    assert returned.metadata == reopened.metadata


# --- snapshots ------------------------------------------------------------------


def run_rollback_drill(registry: ModelRegistry, clock: Any) -> list[tuple[dt.datetime, str]]:
    """Write 103 events of NAME: v1 and v2 reach production, 92 rollbacks switch between
    them, and three signature changes follow.

    The last rollback is event 100, where a snapshot is taken, so a registry that
    loads the model afterwards gets its production version from that snapshot.
    Returns the times at which each rollback took effect, with the version it restored.
    """
    for version in ("v1", "v2"):
        registry.register_model(NAME, {"release": version}, version=version)
    for version in ("v1", "v2"):
        registry.promote_model(NAME, version, "dev", "staging")
        registry.promote_model(NAME, version, "staging", "production")

    restored = []
    for index in range(92):
        target = "v1.0.0" if index % 2 == 0 else "v2.0.0"
        registry.rollback(NAME, target, f"rollback drill {index}")
        restored.append((clock.now, target))
        clock.advance(minutes=1)
    for outputs in ({"fraud": "int"}, {"fraud": "bool"}, {"fraud": "int", "score": "float"}):
        registry.set_model_signature(model=f"{NAME}-v2.0.0", inputs={"amount": "float"}, outputs=outputs)
    return restored


def stored_snapshots(registry: ModelRegistry, name: str) -> list[Any]:
    """Return the snapshots stored for model ``name``, oldest first.

    ModelRegistry has no public accessor for them, so this reads its event store's snapshot store.
    """
    return list(registry._store.snapshots.get(model_id(name)))


def test_long_history_is_snapshotted(registry: ModelRegistry, clock: Any) -> None:
    run_rollback_drill(registry, clock)

    events = registry.events(NAME)
    snapshots = stored_snapshots(registry, NAME)

    assert len(events) == 103
    assert [snapshot.originator_version for snapshot in snapshots] == [50, 100]


@pytest.mark.parametrize(
    ("version_count", "interval"), [(0, 50), (50, 50), (51, 100), (100, 100), (101, 200), (10_000, 12_800)]
)
def test_snapshot_interval_grows_with_model(version_count: int, interval: int) -> None:
    assert snapshot_interval(version_count) == interval


def test_large_model_snapshots_less_often(registry: ModelRegistry, make_registry: Any) -> None:
    # Event 1 creates the model and event N registers version N - 1. At event 100 the model has
    # 99 versions, so the interval is 100 and a snapshot is due. At event 150 the interval is 200.
    for index in range(150):
        registry.register_model(NAME, {"index": index}, version=f"v1.{index}.0")

    snapshots = stored_snapshots(registry, NAME)
    reopened = make_registry(actor="dave")
    loaded = served_state(reopened, NAME)

    assert [snapshot.originator_version for snapshot in snapshots] == [50, 100]
    assert loaded.versions == replay(registry.events(NAME)).versions
    assert len(loaded.versions) == 150


def test_snapshot_equals_replay_at_position(registry: ModelRegistry, clock: Any) -> None:
    run_rollback_drill(registry, clock)
    events = registry.events(NAME)

    for snapshot in stored_snapshots(registry, NAME):
        from_snapshot = snapshot.mutate(None)
        replayed = replay(events[: snapshot.originator_version])
        assert from_snapshot.versions == replayed.versions, f"snapshot at {snapshot.originator_version}"
        assert from_snapshot.production == replayed.production, f"snapshot at {snapshot.originator_version}"
        assert from_snapshot.version == replayed.version


def test_snapshot_load_equals_full_replay(registry: ModelRegistry, make_registry: Any, clock: Any) -> None:
    run_rollback_drill(registry, clock)
    replayed = replay(registry.events(NAME))

    reopened = make_registry(actor="dave")
    loaded = served_state(reopened, NAME)

    assert loaded.versions == replayed.versions
    assert loaded.production == replayed.production
    assert loaded.version == replayed.version
    assert loaded.created_on == replayed.created_on
    assert loaded.modified_on == replayed.modified_on
    assert loaded.last_effective_at == replayed.last_effective_at


def test_snapshot_load_lists_replayed_versions(
    registry: ModelRegistry, make_registry: Any, clock: Any
) -> None:
    run_rollback_drill(registry, clock)
    replayed = replay(registry.events(NAME))

    reopened = make_registry(actor="dave")

    assert listed_views(reopened, NAME) == views_of(replayed, reopened)


def test_dated_reads_across_snapshots(registry: ModelRegistry, make_registry: Any, clock: Any) -> None:
    restored = run_rollback_drill(registry, clock)
    events = registry.events(NAME)
    reopened = make_registry(actor="dave")

    for when, target in restored:
        expected = replay([event for event in events if event.effective_at <= when]).production
        assert expected == target
        assert reopened.get_model_by_date(NAME, when).version == target, f"at {when.isoformat()}"


# --- random command sequences ---------------------------------------------------

APPROVERS = ["bob", "carol"]
# Repeated entries make some choices more likely than others. Hypothesis also
# tries the first entry of a list most often, so the lists start with choices
# that move a version toward production.
KINDS = ["promote"] * 4 + ["approve"] * 3 + ["register"] * 2 + ["rollback"] * 2 + ["reject", "deprecate"]
NEW_VERSIONS = [None, None, "v1", "v2", "2.1", "v3.0.0-rc.1", "not-a-version"]
UNKNOWN_VERSIONS = ["v9", "not-a-version"]
REGISTER_STAGES = ["dev", "dev", "staging", "production", "qa"]
# "next" is the stage after the version's current one: dev to staging, staging to production.
TO_STAGES = ["next"] * 4 + ["production", "archived", "qa"]
PEOPLE = ["bob", "carol"] * 2 + ["alice", "mallory"]
REASONS = ["accuracy dropped", "accuracy dropped", ""]
# Days from the clock's reading to the end of life; None means no end of life.
END_OF_LIFE_DAYS = [30, None, 1, -1]

_example_numbers = itertools.count()


def draw_command(data: st.DataObject, stages: dict[str, str]) -> tuple[Any, ...]:
    """Draw one command whose arguments are valid or invalid at random.

    ``stages`` maps the model's existing versions to their stages; most drawn
    versions are existing ones, so that most commands act on real state.
    """
    kind = data.draw(st.sampled_from(KINDS), label="kind")
    if kind == "register" or not stages:
        version = data.draw(st.sampled_from(NEW_VERSIONS + list(stages)), label="version")
        return ("register", version, data.draw(st.sampled_from(REGISTER_STAGES), label="stage"))

    # Approvals matter most for staging versions, and rollbacks can only reach archived ones.
    favoured_stage = {"approve": "staging", "reject": "staging", "rollback": "archived"}.get(kind)
    favoured = [version for version, stage in stages.items() if stage == favoured_stage]
    pool = favoured * 6 + list(stages) * 3 + UNKNOWN_VERSIONS
    version = data.draw(st.sampled_from(pool), label="version")
    if kind == "promote":
        current = stages.get(version, "dev")
        from_stage = data.draw(st.sampled_from([current] * 4 + ["dev", "staging"]), label="from")
        to_stage = data.draw(st.sampled_from(TO_STAGES), label="to")
        if to_stage == "next":
            to_stage = {"dev": "staging", "staging": "production"}.get(from_stage, "archived")
        return ("promote", version, from_stage, to_stage)
    if kind in ("approve", "reject"):
        return (kind, version, data.draw(st.sampled_from(PEOPLE), label="approver"))
    if kind == "rollback":
        return ("rollback", version, data.draw(st.sampled_from(REASONS), label="reason"))
    return ("deprecate", version, data.draw(st.sampled_from(END_OF_LIFE_DAYS), label="end of life"))


def apply_command(registry: ModelRegistry, clock: Any, name: str, command: tuple[Any, ...]) -> ModelVersion:
    """Run one drawn command; RegistryError propagates to the caller."""
    kind, *arguments = command
    if kind == "register":
        version, stage = arguments
        return registry.register_model(name, {"command": list(command)}, version=version, stage=stage)
    if kind == "promote":
        version, from_stage, to_stage = arguments
        return registry.promote_model(name, version, from_stage, to_stage)
    if kind == "approve":
        version, approver = arguments
        return registry.approve_model(name, version, approver, "ok")
    if kind == "reject":
        version, approver = arguments
        return registry.reject_model(name, version, approver, "not yet")
    if kind == "rollback":
        version, reason = arguments
        return registry.rollback(name, version, reason)
    version, days = arguments
    end_of_life = None if days is None else clock.now + dt.timedelta(days=days)
    return registry.deprecate_model(name, version, "replaced", end_of_life=end_of_life)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_random_commands_replay_exactly(registry: ModelRegistry, clock: Any, data: st.DataObject) -> None:
    # Each example works on its own model, because the registry fixture is shared by all examples.
    name = f"random-{next(_example_numbers)}"
    registry.set_approval_required(stage="production", approvers=APPROVERS, min_approvals=1)
    # A second registry on the same store, closed at the end of each example.
    with ModelRegistry(registry.home, database_url=registry.database_url, actor="dave", clock=clock) as reader:
        check_commands(registry, reader, clock, name, data)


def check_commands(
    registry: ModelRegistry, reader: ModelRegistry, clock: Any, name: str, data: st.DataObject
) -> None:
    """Run drawn commands, checking that each failure appends nothing and that the end state replays."""
    stages: dict[str, str] = {}
    for _ in range(data.draw(st.integers(min_value=8, max_value=24), label="number of commands")):
        command = draw_command(data, stages)
        clock.advance(hours=1)
        before = stored_event_count(registry, name)
        try:
            returned = apply_command(registry, clock, name, command)
        except RegistryError as error:
            after = stored_event_count(registry, name)
            assert after == before, f"{command} failed with {error!r} but appended {after - before} event(s)"
            continue
        assert stored_event_count(registry, name) > before, f"{command} succeeded without an event"
        stored = listed_views(reader, name)
        assert returned.to_dict() == stored[returned.version], f"{command} returned a state that differs"
        stages = {version: view["stage"] for version, view in stored.items()}

    if stored_event_count(registry, name) == 0:
        with pytest.raises(ModelNotFound):
            reader.get_model(name)
        return
    replayed = replay(registry.events(name))
    served = served_state(registry, name)
    assert served.versions == replayed.versions
    assert served.production == replayed.production
    assert listed_views(reader, name) == views_of(replayed, reader)


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_dated_production_matches_replay(registry: ModelRegistry, clock: Any, data: st.DataObject) -> None:
    # get_model_by_date replays only the production version's events; a full replay must agree.
    name = f"dated-{next(_example_numbers)}"
    registry.set_approval_required(stage="production", approvers=APPROVERS, min_approvals=1)
    start = clock.now
    stages: dict[str, str] = {}
    for _ in range(data.draw(st.integers(min_value=8, max_value=24), label="number of commands")):
        command = draw_command(data, stages)
        clock.advance(hours=1)
        # A rollback to a deprecated version warns, and such rollbacks are among the commands drawn.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ModelDeprecatedWarning)
            try:
                apply_command(registry, clock, name, command)
            except RegistryError:
                continue
        stages = {version: view["stage"] for version, view in listed_views(registry, name).items()}
    if stored_event_count(registry, name) == 0:
        return
    events = registry.events(name)

    for hours in range(int((clock.now - start) / dt.timedelta(hours=1)) + 1):
        when = start + dt.timedelta(hours=hours, minutes=30)
        before = [event for event in events if event.effective_at <= when]
        past = replay(before) if before else None
        if past is None or past.production is None:
            with pytest.raises(NoVersionInStage):
                registry.get_model_by_date(name, when)
            continue
        served = registry.get_model_by_date(name, when).to_dict()
        assert served == views_of(past, registry)[past.production], f"at {when.isoformat()}"


def test_failed_rollback_appends_nothing(registry: ModelRegistry, clock: Any) -> None:
    registry.register_model(NAME, {"release": 1}, version="v1")
    before = registry.events(NAME)

    with pytest.raises(RollbackNotAllowed):
        registry.rollback(NAME, "v1", "never deployed")

    assert registry.events(NAME) == before


def test_failed_first_registration_creates_nothing(registry: ModelRegistry) -> None:
    with pytest.raises(InvalidStage):
        registry.register_model(NAME, {"release": 1}, version="v1", stage="production")

    assert stored_event_count(registry, NAME) == 0
    assert [summary.name for summary in registry.list_models()] == []
