"""Rollback to an earlier production version, and deprecation up to and past the end of life."""

from __future__ import annotations

import datetime as dt
import warnings
from typing import Any

import pytest

from registry import (
    EndOfLifeReached,
    InvalidInput,
    ModelDeprecatedWarning,
    NoVersionInStage,
    RollbackNotAllowed,
    VersionDeprecated,
    VersionNotFound,
)

NAME = "fraud-detection"
UTC = dt.timezone.utc


def register(registry: Any, models: Any, version: str) -> Any:
    return registry.register_model(NAME, models.logistic, version=version, metadata={"accuracy": 0.9})


def deploy(registry: Any, version: str) -> None:
    registry.promote_model(NAME, version, "dev", "staging")
    registry.promote_model(NAME, version, "staging", "production")


@pytest.fixture
def replaced(registry: Any, models: Any, clock: Any) -> None:
    """v1 was in production until v2 replaced it a day later; v3 waits in staging."""
    register(registry, models, "v1")
    deploy(registry, "v1")
    clock.advance(days=1)
    register(registry, models, "v2")
    deploy(registry, "v2")
    register(registry, models, "v3")
    registry.promote_model(NAME, "v3", "dev", "staging")
    clock.advance(days=1)


# --- rollback -------------------------------------------------------------------


def test_rollback_restores_earlier_version(registry: Any, replaced: None) -> None:
    restored = registry.rollback(NAME, "v1", "error rate doubled after v2")

    assert restored.stage == "production"
    assert registry.get_model(NAME).version == "v1.0.0"


def test_rollback_archives_replaced_version(registry: Any, replaced: None) -> None:
    registry.rollback(NAME, "v1", "error rate doubled after v2")

    assert registry.get_model(NAME, version="v2").stage == "archived"
    assert [v.version for v in registry.list_versions(NAME, stage="production")] == ["v1.0.0"]


def test_rollback_event_records_who_and_why(registry: Any, replaced: None, clock: Any) -> None:
    registry.rollback(NAME, "v1", "error rate doubled after v2", actor="carol")

    last = registry.history(NAME)[-1]

    assert last.event == "RolledBack"
    assert last.version == "v1.0.0"
    assert last.reason == "error rate doubled after v2"
    assert last.actor == "carol"
    assert last.details["automatic"] is False
    assert last.details["from_version"] == "v2.0.0"
    assert last.recorded_at == clock.now


def test_rollback_actor_defaults_to_registry(registry: Any, replaced: None) -> None:
    registry.rollback(NAME, "v1", "error rate doubled")

    assert registry.history(NAME)[-1].actor == "alice"


def test_automatic_rollback_is_flagged(registry: Any, replaced: None) -> None:
    registry.rollback(NAME, "v1", "error rate above 5%", automatic=True, evidence={"error_rate": 0.09})

    last = registry.history(NAME)[-1]

    assert last.details["automatic"] is True
    assert last.details["evidence"] == {"error_rate": 0.09}


def test_rollback_is_one_event(registry: Any, replaced: None) -> None:
    before = len(registry.history(NAME))

    registry.rollback(NAME, "v1", "error rate doubled")

    assert len(registry.history(NAME)) == before + 1


def test_rollback_survives_reload(make_registry: Any, registry: Any, replaced: None) -> None:
    registry.rollback(NAME, "v1", "error rate doubled")

    assert make_registry().get_model(NAME).version == "v1.0.0"


def test_rollback_when_production_is_empty(registry: Any, replaced: None) -> None:
    registry.promote_model(NAME, "v2", "production", "archived")

    registry.rollback(NAME, "v1", "v2 withdrawn, v1 is the last good version")

    assert registry.get_model(NAME).version == "v1.0.0"
    assert registry.history(NAME)[-1].details["from_version"] is None


def test_rollback_to_missing_version(registry: Any, replaced: None) -> None:
    with pytest.raises(VersionNotFound) as raised:
        registry.rollback(NAME, "v9", "try the newest")

    assert "v9.0.0" in str(raised.value)


def test_rollback_to_never_deployed_version(registry: Any, replaced: None) -> None:
    with pytest.raises(RollbackNotAllowed) as raised:
        registry.rollback(NAME, "v3", "try the candidate")

    assert "v3.0.0" in str(raised.value)
    assert "never been in production" in str(raised.value)


def test_rollback_to_current_production(registry: Any, replaced: None) -> None:
    with pytest.raises(RollbackNotAllowed) as raised:
        registry.rollback(NAME, "v2", "reload it")

    assert "already in production" in str(raised.value)


def test_rollback_past_end_of_life(registry: Any, replaced: None, clock: Any) -> None:
    registry.deprecate_model(NAME, "v1", "trained on data we may no longer use", end_of_life="2024-01-15")
    clock.advance(days=10)

    with pytest.raises(RollbackNotAllowed) as raised:
        registry.rollback(NAME, "v1", "v2 misbehaves")

    assert "end of life" in str(raised.value)
    assert "2024-01-15" in str(raised.value)


def test_rollback_before_end_of_life(registry: Any, replaced: None) -> None:
    registry.deprecate_model(NAME, "v1", "superseded", end_of_life="2024-03-01")

    with pytest.warns(ModelDeprecatedWarning):
        restored = registry.rollback(NAME, "v1", "v2 misbehaves")

    assert restored.stage == "production"


@pytest.mark.parametrize("reason", ["", "   ", None])
def test_rollback_needs_reason(registry: Any, replaced: None, reason: Any) -> None:
    with pytest.raises(InvalidInput) as raised:
        registry.rollback(NAME, "v1", reason)

    assert "reason" in str(raised.value)


@pytest.mark.parametrize(
    ("target", "error"),
    [("v9", VersionNotFound), ("v3", RollbackNotAllowed), ("v2", RollbackNotAllowed)],
)
def test_failed_rollback_changes_nothing(registry: Any, replaced: None, target: str, error: type) -> None:
    before = len(registry.history(NAME))

    with pytest.raises(error):
        registry.rollback(NAME, target, "try it")

    assert len(registry.history(NAME)) == before
    assert registry.get_model(NAME).version == "v2.0.0"


# --- deprecation ----------------------------------------------------------------


@pytest.fixture
def deprecated_v1(registry: Any, models: Any) -> Any:
    """v1 in staging, deprecated with an end of life of 2024-02-01."""
    register(registry, models, "v1")
    registry.promote_model(NAME, "v1", "dev", "staging")
    return registry.deprecate_model(NAME, "v1", "trained before the schema change", end_of_life="2024-02-01")


def test_deprecation_is_recorded(registry: Any, deprecated_v1: Any) -> None:
    last = registry.history(NAME)[-1]

    assert last.event == "Deprecated"
    assert last.version == "v1.0.0"
    assert last.reason == "trained before the schema change"
    assert last.actor == "alice"
    assert last.details["end_of_life"] == "2024-02-01T23:59:59.999999+00:00"


def test_deprecation_visible_on_version(deprecated_v1: Any) -> None:
    assert deprecated_v1.is_deprecated
    assert deprecated_v1.deprecation.reason == "trained before the schema change"


def test_deprecated_version_cannot_be_promoted(registry: Any, deprecated_v1: Any) -> None:
    before = len(registry.history(NAME))

    with pytest.raises(VersionDeprecated) as raised:
        registry.promote_model(NAME, "v1", "staging", "production")

    assert "trained before the schema change" in str(raised.value)
    assert len(registry.history(NAME)) == before


def test_deprecated_version_can_be_archived(registry: Any, deprecated_v1: Any) -> None:
    assert registry.promote_model(NAME, "v1", "staging", "archived").stage == "archived"


def test_reading_deprecated_version_warns(registry: Any, deprecated_v1: Any) -> None:
    with pytest.warns(ModelDeprecatedWarning, match="trained before the schema change"):
        model_version = registry.get_model(NAME, version="v1")

    assert model_version.version == "v1.0.0"


def test_reading_by_stage_warns(registry: Any, deprecated_v1: Any) -> None:
    with pytest.warns(ModelDeprecatedWarning):
        registry.get_model(NAME, stage="staging")


def test_reading_current_version_does_not_warn(registry: Any, deprecated_v1: Any, models: Any) -> None:
    register(registry, models, "v2")

    with warnings.catch_warnings():
        warnings.simplefilter("error", ModelDeprecatedWarning)
        registry.get_model(NAME, version="v2")


def test_end_of_life_day_still_readable(registry: Any, deprecated_v1: Any, clock: Any) -> None:
    clock.now = dt.datetime(2024, 2, 1, 23, 0, tzinfo=UTC)

    with pytest.warns(ModelDeprecatedWarning):
        registry.get_model(NAME, version="v1")


def test_reading_after_end_of_life_fails(registry: Any, deprecated_v1: Any, clock: Any) -> None:
    clock.now = dt.datetime(2024, 2, 2, 0, 0, 1, tzinfo=UTC)

    with pytest.raises(EndOfLifeReached) as raised:
        registry.get_model(NAME, version="v1")

    assert "v1.0.0" in str(raised.value)
    assert "2024-02-01" in str(raised.value)


def test_stage_read_after_end_of_life_fails(registry: Any, deprecated_v1: Any, clock: Any) -> None:
    clock.advance(days=30)

    with pytest.raises(EndOfLifeReached):
        registry.get_model(NAME, stage="staging")


def test_loading_after_end_of_life_fails(registry: Any, deprecated_v1: Any, clock: Any) -> None:
    with pytest.warns(ModelDeprecatedWarning):
        model_version = registry.get_model(NAME, version="v1")
    clock.advance(days=30)

    with pytest.raises(EndOfLifeReached):
        model_version.model


def test_deprecation_without_end_of_life_warns(registry: Any, models: Any, clock: Any) -> None:
    register(registry, models, "v1")
    registry.deprecate_model(NAME, "v1", "prefer v2")
    clock.advance(days=3650)

    with pytest.warns(ModelDeprecatedWarning):
        registry.get_model(NAME, version="v1")


def test_enforce_end_of_life_archives_expired(registry: Any, deprecated_v1: Any, clock: Any) -> None:
    clock.advance(days=30)

    archived = registry.enforce_end_of_life()

    assert archived == {NAME: ["v1.0.0"]}
    assert [v.version for v in registry.list_versions(NAME, stage="archived")] == ["v1.0.0"]


def test_enforce_end_of_life_records_archival(registry: Any, deprecated_v1: Any, clock: Any) -> None:
    clock.advance(days=30)
    registry.enforce_end_of_life()

    last = registry.history(NAME)[-1]

    assert last.event == "Promoted"
    assert last.version == "v1.0.0"
    assert (last.from_stage, last.to_stage) == ("staging", "archived")
    assert last.actor == "registry-end-of-life"
    assert "end of life" in last.reason


def test_early_enforcement_does_nothing(registry: Any, deprecated_v1: Any) -> None:
    before = len(registry.history(NAME))

    assert registry.enforce_end_of_life() == {}
    assert len(registry.history(NAME)) == before
    assert registry.list_versions(NAME, stage="staging")[0].version == "v1.0.0"


def test_enforce_twice_archives_once(registry: Any, deprecated_v1: Any, clock: Any) -> None:
    clock.advance(days=30)
    registry.enforce_end_of_life()
    before = len(registry.history(NAME))

    assert registry.enforce_end_of_life() == {}
    assert len(registry.history(NAME)) == before


def test_enforce_end_of_life_empties_production(registry: Any, models: Any, clock: Any) -> None:
    register(registry, models, "v1")
    deploy(registry, "v1")
    registry.deprecate_model(NAME, "v1", "licence of the training data ends", end_of_life="2024-01-20")
    clock.advance(days=15)

    registry.enforce_end_of_life(actor="scheduler")

    assert registry.history(NAME)[-1].actor == "scheduler"
    with pytest.raises(NoVersionInStage):
        registry.get_model(NAME, stage="production")


def test_past_view_refuses_expired_model(registry: Any, models: Any, clock: Any) -> None:
    register(registry, models, "v1")
    deploy(registry, "v1")
    clock.advance(days=1)
    registry.deprecate_model(NAME, "v1", "licence of the training data ends", end_of_life="2024-01-20")
    clock.advance(days=15)

    past = registry.get_model_by_date(NAME, "2024-01-10")

    assert past.version == "v1.0.0"
    with pytest.raises(EndOfLifeReached):
        past.model


def test_deprecated_archived_version_not_restaged(registry: Any, replaced: None) -> None:
    registry.deprecate_model(NAME, "v2", "superseded", end_of_life="2030-01-01")
    registry.rollback(NAME, "v1", "error rate doubled after v2")

    # The deprecation is the reason to give, even where the transition is not declared either.
    with pytest.raises(VersionDeprecated, match="superseded"):
        registry.promote_model(NAME, "v2", "archived", "staging")


def test_rollback_to_deprecated_version_warns(registry: Any, replaced: None) -> None:
    registry.deprecate_model(NAME, "v1", "kept only as a fallback", end_of_life="2030-01-01")

    with pytest.warns(ModelDeprecatedWarning, match="kept only as a fallback"):
        restored = registry.rollback(NAME, "v1", "error rate doubled after v2")

    assert restored.stage == "production"
