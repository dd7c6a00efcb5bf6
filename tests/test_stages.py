"""Stage transitions: declared transitions, from_stage checks and the single production version."""

from __future__ import annotations

from typing import Any

import pytest

from registry import InvalidStage, NoVersionInStage, StageConflict, TransitionNotAllowed

NAME = "churn-model"


def register(registry: Any, models: Any, version: str, stage: str = "dev") -> Any:
    return registry.register_model(
        NAME, models.logistic, version=version, stage=stage, metadata={"features": models.features_v1}
    )


def deploy(registry: Any, version: str) -> None:
    registry.promote_model(NAME, version, "dev", "staging")
    registry.promote_model(NAME, version, "staging", "production")


@pytest.fixture
def v1(registry: Any, models: Any) -> Any:
    return register(registry, models, "v1")


def test_dev_to_staging(registry: Any, v1: Any) -> None:
    promoted = registry.promote_model(NAME, "v1", "dev", "staging")

    assert promoted.stage == "staging"
    assert registry.get_model(NAME, version="v1").stage == "staging"


def test_staging_to_production(registry: Any, v1: Any) -> None:
    deploy(registry, "v1")

    assert registry.get_model(NAME).version == "v1.0.0"


def test_promotion_recorded_in_history(registry: Any, v1: Any, clock: Any) -> None:
    clock.advance(hours=2)
    registry.promote_model(NAME, "v1", "dev", "staging", reason="passed offline evaluation", actor="bob")

    last = registry.history(NAME)[-1]

    assert last.event == "Promoted"
    assert last.version == "v1.0.0"
    assert last.from_stage == "dev"
    assert last.to_stage == "staging"
    assert last.reason == "passed offline evaluation"
    assert last.actor == "bob"
    assert last.recorded_at == clock.now


def test_registering_into_staging_is_allowed(registry: Any, models: Any) -> None:
    assert register(registry, models, "v1", stage="staging").stage == "staging"


def test_from_stage_mismatch_names_actual_stage(registry: Any, v1: Any) -> None:
    with pytest.raises(StageConflict) as raised:
        registry.promote_model(NAME, "v1", "staging", "production")

    assert raised.value.actual == "dev"
    assert "'dev'" in str(raised.value)
    assert "from_stage='dev'" in str(raised.value)


def test_from_stage_mismatch_appends_nothing(registry: Any, v1: Any) -> None:
    before = len(registry.history(NAME))

    with pytest.raises(StageConflict):
        registry.promote_model(NAME, "v1", "staging", "production")

    assert len(registry.history(NAME)) == before
    assert registry.get_model(NAME, version="v1").stage == "dev"


@pytest.mark.parametrize(
    ("setup", "from_stage", "to_stage"),
    [
        ([], "dev", "production"),
        ([("dev", "staging")], "staging", "dev"),
        ([("dev", "staging"), ("staging", "production")], "production", "staging"),
        ([("dev", "archived")], "archived", "dev"),
        ([("dev", "archived")], "archived", "staging"),
        ([("dev", "staging")], "staging", "staging"),
    ],
)
def test_undeclared_transition_is_rejected(
    registry: Any, v1: Any, setup: list[tuple[str, str]], from_stage: str, to_stage: str
) -> None:
    for source, target in setup:
        registry.promote_model(NAME, "v1", source, target)
    before = len(registry.history(NAME))

    with pytest.raises(TransitionNotAllowed) as raised:
        registry.promote_model(NAME, "v1", from_stage, to_stage)

    assert f"{from_stage} -> {to_stage}" in str(raised.value)
    assert len(registry.history(NAME)) == before


def test_rejected_transition_lists_allowed_targets(registry: Any, v1: Any) -> None:
    with pytest.raises(TransitionNotAllowed) as raised:
        registry.promote_model(NAME, "v1", "dev", "production")

    assert raised.value.allowed == ["archived", "staging"]
    assert "archived, staging" in str(raised.value)


@pytest.mark.parametrize("setup", [[], [("dev", "staging")], [("dev", "staging"), ("staging", "production")]])
def test_any_stage_to_archived(registry: Any, v1: Any, setup: list[tuple[str, str]]) -> None:
    for source, target in setup:
        registry.promote_model(NAME, "v1", source, target)
    current = registry.get_model(NAME, version="v1").stage

    archived = registry.promote_model(NAME, "v1", current, "archived")

    assert archived.stage == "archived"


def test_archiving_production_empties_stage(registry: Any, v1: Any) -> None:
    deploy(registry, "v1")
    registry.promote_model(NAME, "v1", "production", "archived")

    with pytest.raises(NoVersionInStage):
        registry.get_model(NAME, stage="production")


# --- one production version -----------------------------------------------------


@pytest.fixture
def two_in_line(registry: Any, models: Any, clock: Any) -> None:
    """v1 in production and v2 in staging, each command an hour after the last."""
    register(registry, models, "v1")
    clock.advance(hours=1)
    deploy(registry, "v1")
    clock.advance(hours=1)
    register(registry, models, "v2")
    registry.promote_model(NAME, "v2", "dev", "staging")
    clock.advance(hours=1)


def test_new_production_archives_previous(registry: Any, two_in_line: None) -> None:
    registry.promote_model(NAME, "v2", "staging", "production")

    assert registry.get_model(NAME, version="v1").stage == "archived"
    assert registry.get_model(NAME).version == "v2.0.0"


def test_only_one_production_version(registry: Any, two_in_line: None) -> None:
    registry.promote_model(NAME, "v2", "staging", "production")

    assert [v.version for v in registry.list_versions(NAME, stage="production")] == ["v2.0.0"]


def test_replacement_archived_in_same_command(registry: Any, two_in_line: None, clock: Any) -> None:
    before = len(registry.history(NAME))

    registry.promote_model(NAME, "v2", "staging", "production")

    added = registry.history(NAME)[before:]
    assert [(e.event, e.version, e.from_stage, e.to_stage) for e in added] == [
        ("Promoted", "v1.0.0", "production", "archived"),
        ("Promoted", "v2.0.0", "staging", "production"),
    ]
    assert [e.recorded_at for e in added] == [clock.now, clock.now]
    assert [e.position for e in added] == [before + 1, before + 2]
    assert "v2.0.0" in added[0].reason


def test_replacement_survives_reload(make_registry: Any, registry: Any, two_in_line: None) -> None:
    registry.promote_model(NAME, "v2", "staging", "production")

    fresh = make_registry()

    assert fresh.get_model(NAME, version="v1").stage == "archived"
    assert fresh.get_model(NAME).version == "v2.0.0"


# --- declared transitions -------------------------------------------------------


def test_declared_transition_allows_shortcut(registry: Any, v1: Any) -> None:
    registry.set_allowed_transitions([("dev", "production"), ("*", "archived")])

    promoted = registry.promote_model(NAME, "v1", "dev", "production")

    assert promoted.stage == "production"


def test_declared_transitions_replace_defaults(registry: Any, v1: Any) -> None:
    registry.set_allowed_transitions([("dev", "production"), ("*", "archived")])

    with pytest.raises(TransitionNotAllowed):
        registry.promote_model(NAME, "v1", "dev", "staging")


def test_wildcard_source_allows_any_stage(registry: Any, v1: Any) -> None:
    registry.set_allowed_transitions([("dev", "staging"), ("*", "dev")])
    registry.promote_model(NAME, "v1", "dev", "staging")

    assert registry.promote_model(NAME, "v1", "staging", "dev").stage == "dev"


def test_declared_transitions_persist(make_registry: Any, registry: Any, v1: Any) -> None:
    registry.set_allowed_transitions([("dev", "production")])

    promoted = make_registry().promote_model(NAME, "v1", "dev", "production")

    assert promoted.stage == "production"


def test_set_allowed_transitions_returns_pairs(registry: Any) -> None:
    declared = registry.set_allowed_transitions([["dev", "staging"], ("staging", "production")])

    assert declared == [("dev", "staging"), ("staging", "production")]


def test_shortcut_to_production_archives_previous(registry: Any, models: Any) -> None:
    registry.set_allowed_transitions([("dev", "production"), ("*", "archived")])
    register(registry, models, "v1")
    registry.promote_model(NAME, "v1", "dev", "production")
    register(registry, models, "v2")

    registry.promote_model(NAME, "v2", "dev", "production")

    assert registry.get_model(NAME, version="v1").stage == "archived"


# --- registration stage ---------------------------------------------------------


@pytest.mark.parametrize("stage", ["production", "archived"])
def test_registering_into_later_stage_is_rejected(registry: Any, models: Any, stage: str) -> None:
    with pytest.raises(InvalidStage) as raised:
        register(registry, models, "v1", stage=stage)

    assert repr(stage) in str(raised.value)
    assert "promote_model()" in str(raised.value)


def test_rejected_registration_leaves_no_version(registry: Any, v1: Any, models: Any) -> None:
    before = len(registry.history(NAME))

    with pytest.raises(InvalidStage):
        register(registry, models, "v2", stage="production")

    assert len(registry.history(NAME)) == before
    assert [v.version for v in registry.list_versions(NAME)] == ["v1.0.0"]
    assert not (registry.files_root / NAME / "v2.0.0").exists()


def test_rejected_first_registration_creates_nothing(registry: Any, models: Any) -> None:
    with pytest.raises(InvalidStage):
        register(registry, models, "v1", stage="production")

    assert registry.list_models() == []
    assert not (registry.files_root / NAME).exists()
