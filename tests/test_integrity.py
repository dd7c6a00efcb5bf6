"""The hash chain: clean stores verify, and each kind of tampering is named by verify."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import orjson
import pytest

from registry import ModelGovernance, ModelRegistry
from registry.integrity import content_hash

NAME = "fraud-detection"


@pytest.fixture
def store(tmp_path: Path, models: Any, clock: Any) -> Path:
    """A SQLite home with one model: created, three versions, a promotion and a deprecation."""
    home = tmp_path / "home"
    with ModelRegistry(home=home, clock=clock, actor="alice") as registry:
        for accuracy in (0.91, 0.92, 0.93):
            registry.register_model(
                name=NAME, model=models.logistic, metadata={"accuracy": accuracy}, stage="staging",
                input_example=models.x_test[models.features_v1].head(),
            )  # fmt: skip
            clock.advance(minutes=1)
        registry.promote_model(name=NAME, version="1.0.0", from_stage="staging", to_stage="production")
        registry.deprecate_model(name=NAME, version="1.1.0", reason="superseded")
    return home


def verify(home: Path) -> Any:
    with ModelRegistry(home=home) as registry:
        return ModelGovernance(registry=registry).verify()


def rows(home: Path) -> list[tuple[int, str, bytes]]:
    with sqlite3.connect(home / "events.sqlite3") as db:
        return db.execute(
            "SELECT originator_version, topic, state FROM stored_events ORDER BY rowid"
        ).fetchall()


def update_state(home: Path, position: int, state: bytes) -> None:
    with sqlite3.connect(home / "events.sqlite3") as db:
        db.execute("UPDATE stored_events SET state = ? WHERE originator_version = ?", (state, position))


def test_clean_store_verifies(store: Path) -> None:
    result = verify(store)

    assert result.ok, result.problems
    assert result.events_checked == 6
    assert result.streams_checked == 1
    assert result.artifacts_checked == len({orjson.loads(state)["artifact"]["sha256"]
                                            for _, topic, state in rows(store) if topic.endswith("Registered")})  # fmt: skip
    assert result.summary().startswith("verified 6 events in 1 stream and ")
    assert list(result.heads) == [NAME]
    assert result.heads[NAME] == orjson.loads(rows(store)[-1][2])["event_hash"]


def test_every_event_chains_to_the_one_before(store: Path) -> None:
    previous = None
    for position, topic, raw in rows(store):
        state = orjson.loads(raw)
        assert state["previous_hash"] == previous
        with ModelRegistry(home=store) as registry:
            stream_id = registry.events(NAME)[0].originator_id
        assert content_hash(topic, stream_id, position, state) == state["event_hash"]
        previous = state["event_hash"]


def test_altered_byte_is_named(store: Path) -> None:
    position, _, state = rows(store)[3]  # the third Registered event, accuracy 0.93
    assert b'"accuracy":0.93' in state
    update_state(store, position, state.replace(b'"accuracy":0.93', b'"accuracy":0.99'))

    result = verify(store)

    assert not result.ok
    problem = result.first_problem
    assert (problem.kind, problem.stream, problem.position, problem.event, problem.version) == (
        "altered", NAME, 4, "Registered", "v1.2.0"
    )
    assert problem.event_id == f"{NAME}#4"
    assert problem.message.startswith(f"event {NAME}#4 (Registered, version v1.2.0): its content does not match its hash")


def test_reencoded_bytes_are_altered(store: Path) -> None:
    position, _, state = rows(store)[2]
    update_state(store, position, state.replace(b'"actor":"alice"', b'"actor": "alice"'))

    problem = verify(store).first_problem

    assert problem is not None
    assert (problem.kind, problem.position) == ("altered", 3)
    assert "stored bytes differ from the registry's encoding" in problem.message


def test_invalid_json_is_named(store: Path) -> None:
    position, _, state = rows(store)[1]
    update_state(store, position, state[:-1])

    problem = verify(store).first_problem

    assert problem is not None
    assert (problem.kind, problem.position) == ("altered", 2)
    assert "not valid JSON" in problem.message


def test_removed_event_is_named(store: Path) -> None:
    with sqlite3.connect(store / "events.sqlite3") as db:
        db.execute("DELETE FROM stored_events WHERE originator_version = 3")

    result = verify(store)

    assert [(p.kind, p.position) for p in result.problems] == [("removed", 4)]
    assert "the event at position 3 before it is missing; events were removed" in result.problems[0].message
    assert result.events_checked == 5


def test_swapped_events_are_named(store: Path) -> None:
    with sqlite3.connect(store / "events.sqlite3") as db:
        db.execute("UPDATE stored_events SET originator_version = -1 WHERE originator_version = 2")
        db.execute("UPDATE stored_events SET originator_version = 2 WHERE originator_version = 3")
        db.execute("UPDATE stored_events SET originator_version = 3 WHERE originator_version = -1")

    problem = verify(store).first_problem

    assert problem is not None
    assert (problem.kind, problem.position, problem.version) == ("out_of_order", 3, "v1.0.0")
    assert "it holds the event recorded at position 2; the events are out of order" in problem.message


def test_recomputed_hash_breaks_next_link(store: Path) -> None:
    # An event altered together with its own hash no longer matches the next event's previous_hash.
    position, topic, raw = rows(store)[2]
    state = orjson.loads(raw)
    state["metadata"]["accuracy"] = 0.99
    with ModelRegistry(home=store) as registry:
        stream_id = registry.events(NAME)[0].originator_id
    state["event_hash"] = content_hash(topic, stream_id, position, state)
    update_state(store, position, orjson.dumps(state))

    problem = verify(store).first_problem

    assert problem is not None
    assert (problem.kind, problem.position) == ("altered", 4)
    assert "previous_hash does not match the hash of the event before it" in problem.message


def test_rewritten_last_event_changes_the_head(store: Path) -> None:
    # The chain misses a change to the newest event when its hash is recomputed too, but the head changes.
    before = verify(store).heads[NAME]
    position, topic, raw = rows(store)[-1]
    state = orjson.loads(raw)
    state["reason"] = "no reason"
    with ModelRegistry(home=store) as registry:
        stream_id = registry.events(NAME)[0].originator_id
    state["event_hash"] = content_hash(topic, stream_id, position, state)
    update_state(store, position, orjson.dumps(state))

    after = verify(store)

    assert after.ok
    assert after.heads[NAME] != before


def test_stripped_hash_is_named(store: Path) -> None:
    position, _, raw = rows(store)[4]
    state = orjson.loads(raw)
    del state["event_hash"]
    update_state(store, position, orjson.dumps(state))

    problem = verify(store).first_problem

    assert problem is not None
    assert (problem.kind, problem.position, problem.event) == ("unhashed", 5, "Promoted")


def test_changed_artifact_is_named(store: Path) -> None:
    with ModelRegistry(home=store) as registry:
        ref = registry.get_model(NAME, version="1.2.0").artifact
        blob = registry.artifacts.path_of(ref.sha256)
    blob.chmod(0o644)
    blob.write_bytes(blob.read_bytes() + b"\0")

    result = verify(store)

    assert [(p.kind, p.version, p.position) for p in result.problems] == [("artifact_altered", "v1.2.0", 4)]
    assert result.problems[0].message.startswith(f"artifact sha256:{ref.sha256[:12]}… of {NAME} v1.2.0")


def test_missing_artifact_is_named(store: Path) -> None:
    with ModelRegistry(home=store) as registry:
        ref = registry.get_model(NAME, version="1.0.0").artifact
        blob = registry.artifacts.path_of(ref.sha256)
    blob.unlink()

    result = verify(store)

    assert [(p.kind, p.version) for p in result.problems] == [("artifact_missing", "v1.0.0")]
    assert f"missing, no file at {blob}" in result.problems[0].message


def test_settings_and_experiment_streams_verify(registry: ModelRegistry, models: Any) -> None:
    from registry import track_experiment

    registry.set_approval_required(stage="production", approvers=["bob"])
    with track_experiment("xgb", registry=registry) as run:
        run.log_metrics(accuracy=0.9)

    result = ModelGovernance(registry=registry).verify()

    assert result.ok, result.problems
    assert set(result.heads) == {"registry settings", f"experiment xgb run {str(run.id)[:8]}"}
    assert result.events_checked == 2 + 3


def test_every_altered_event_is_reported_once(store: Path) -> None:
    for position, _, state in rows(store):
        if position in (2, 5):
            update_state(store, position, state.replace(b'"actor":"alice"', b'"actor":"mallory"'))

    result = verify(store)

    assert [(p.kind, p.position) for p in result.problems] == [("altered", 2), ("altered", 5)]
    assert result.summary().startswith("verification failed after checking 6 events in 1 stream and ")
    assert "2 problems; first: event fraud-detection#2" in result.summary()


def test_artifacts_of_broken_stream_are_checked(store: Path) -> None:
    position, _, state = rows(store)[1]
    update_state(store, position, state.replace(b'"actor":"alice"', b'"actor":"mallory"'))
    with ModelRegistry(home=store) as registry:
        blob = registry.artifacts.path_of(registry.get_model(NAME, version="1.0.0").artifact.sha256)
    blob.unlink()

    result = verify(store)

    assert [(p.kind, p.position) for p in result.problems] == [("altered", 2), ("artifact_missing", 2)]


def test_removed_newest_event_is_named_by_catalog(store: Path) -> None:
    with ModelRegistry(home=store) as registry:
        registry.list_models()  # brings the catalog read model up to date
    with sqlite3.connect(store / "events.sqlite3") as db:
        db.execute("DELETE FROM stored_events WHERE originator_version = 6")

    problems = verify(store).problems

    assert [(p.kind, p.stream, p.position) for p in problems] == [("removed", NAME, 6)]
    assert problems[0].message.startswith(
        f"stream {NAME}: the log ends at position 5, but the catalog read model applied events up to position 6"
    )


def test_removed_stream_is_named_by_catalog(store: Path) -> None:
    with ModelRegistry(home=store) as registry:
        registry.list_models()
    with sqlite3.connect(store / "events.sqlite3") as db:
        db.execute("DELETE FROM stored_events")

    problems = verify(store).problems

    assert [(p.kind, p.stream) for p in problems] == [("removed", NAME)]
    assert "missing from the log, but the catalog read model applied 6 of its events" in problems[0].message


def test_removed_newest_event_is_named_by_heads(store: Path) -> None:
    heads = verify(store).heads
    (store / "read_models.sqlite3").unlink(missing_ok=True)
    with sqlite3.connect(store / "events.sqlite3") as db:
        db.execute("DELETE FROM stored_events WHERE originator_version = 6")

    with ModelRegistry(home=store) as registry:
        without_heads = ModelGovernance(registry=registry).verify()
        with_heads = ModelGovernance(registry=registry).verify(expected_heads=heads)

    assert without_heads.ok
    assert [(p.kind, p.stream) for p in with_heads.problems] == [("removed", NAME)]
    assert "is no longer in the stream, which now ends at position 5" in with_heads.problems[0].message


def test_heads_of_grown_stream_still_match(store: Path, models: Any) -> None:
    heads = verify(store).heads
    with ModelRegistry(home=store, actor="alice") as registry:
        registry.register_model(name=NAME, model=models.logistic, metadata={"accuracy": 0.94})

        result = ModelGovernance(registry=registry).verify(expected_heads=heads)

    assert result.ok, result.problems
    assert result.heads[NAME] != heads[NAME]
