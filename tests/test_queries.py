"""Queries: versions by stage and number, listings with filters, history and past states by date."""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Iterator
from typing import Any

import pytest

from registry import ModelNotFound, NoVersionInStage, VersionNotFound

NAME = "fraud-detection"
UTC = dt.timezone.utc


def register(registry: Any, models: Any, version: str, **options: Any) -> Any:
    return registry.register_model(NAME, models.logistic, version=version, **options)


def deploy(registry: Any, version: str) -> None:
    registry.promote_model(NAME, version, "dev", "staging")
    registry.promote_model(NAME, version, "staging", "production")


@pytest.fixture
def deployed(registry: Any, models: Any) -> None:
    """v1.0.0 in production and v1.1.0 in staging."""
    register(
        registry,
        models,
        "v1",
        metadata={"accuracy": 0.91, "owner": "risk-team"},
        tags=["fraud"],
        input_example=models.x_test[models.features_v1],
    )
    deploy(registry, "v1")
    register(registry, models, "v1.1", metadata={"accuracy": 0.93, "features": models.features_v1})
    registry.promote_model(NAME, "v1.1", "dev", "staging")


# --- get_model ------------------------------------------------------------------


def test_get_model_defaults_to_production(registry: Any, deployed: None) -> None:
    assert registry.get_model(NAME).version == "v1.0.0"


def test_get_model_by_stage(registry: Any, deployed: None) -> None:
    model_version = registry.get_model(NAME, stage="staging")

    assert model_version.version == "v1.1.0"
    assert model_version.stage == "staging"


def test_get_model_by_version(registry: Any, deployed: None) -> None:
    model_version = registry.get_model(NAME, version="v1.1.0")

    assert model_version.version == "v1.1.0"
    assert model_version.stage == "staging"


def test_get_model_carries_documented_fields(registry: Any, deployed: None, models: Any) -> None:
    model_version = registry.get_model(NAME, stage="production")

    assert model_version.name == NAME
    assert model_version.metadata["accuracy"] == 0.91
    assert model_version.metadata["owner"] == "risk-team"
    assert model_version.tags == ["fraud"]
    assert model_version.signature.inputs == {feature: "float" for feature in models.features_v1}
    assert model_version.artifact.uri.startswith("file://")
    assert len(model_version.artifact.sha256) == 64
    assert model_version.artifact.size > 0


def test_get_model_from_new_registry(make_registry: Any, deployed: None) -> None:
    assert make_registry().get_model(NAME, stage="staging").version == "v1.1.0"


def test_changed_view_leaves_registry_unchanged(registry: Any, deployed: None) -> None:
    # Reads share the cached aggregate, so each view must copy what a caller can change.
    first = registry.get_model(NAME, version="v1.1")
    first.metadata["features"].append("injected")
    first.signature.inputs.clear()
    first.environment.requirements.clear()
    first.tags.append("injected")

    second = registry.get_model(NAME, version="v1.1")

    assert "injected" not in second.metadata["features"]
    assert second.signature.inputs
    assert second.environment.requirements
    assert "injected" not in second.tags


def test_empty_stage_raises(registry: Any, models: Any) -> None:
    register(registry, models, "v1")

    with pytest.raises(NoVersionInStage) as raised:
        registry.get_model(NAME)

    assert repr(NAME) in str(raised.value)
    assert "'production'" in str(raised.value)


def test_unknown_model_raises(registry: Any, deployed: None) -> None:
    with pytest.raises(ModelNotFound) as raised:
        registry.get_model("fraud-detektion")

    assert "'fraud-detektion'" in str(raised.value)
    assert "list_models()" in str(raised.value)


def test_unknown_version_lists_known(registry: Any, deployed: None) -> None:
    with pytest.raises(VersionNotFound) as raised:
        registry.get_model(NAME, version="v2")

    assert "v2.0.0" in str(raised.value)
    assert "v1.0.0, v1.1.0" in str(raised.value)


@pytest.mark.parametrize(
    "query",
    [
        lambda registry: registry.history("no-such-model"),
        lambda registry: registry.list_versions("no-such-model"),
        lambda registry: registry.get_model_by_date("no-such-model", "2024-01-10"),
        lambda registry: registry.promote_model("no-such-model", "v1", "dev", "staging"),
    ],
    ids=["history", "list_versions", "get_model_by_date", "promote_model"],
)
def test_unknown_model_raises_everywhere(registry: Any, deployed: None, query: Any) -> None:
    with pytest.raises(ModelNotFound):
        query(registry)


# --- list_models ----------------------------------------------------------------


def test_list_models_empty(registry: Any) -> None:
    assert registry.list_models() == []


def test_list_models_sorted_with_summary(registry: Any, deployed: None, models: Any) -> None:
    registry.register_model("anomaly-score", models.logistic, version="v2")

    summaries = registry.list_models()

    assert [s.name for s in summaries] == ["anomaly-score", NAME]
    assert summaries[1].latest_version == "v1.1.0"
    assert summaries[1].production_version == "v1.0.0"
    assert summaries[1].version_count == 2
    assert summaries[1].stages == {"production": 1, "staging": 1}
    assert summaries[0].production_version is None


# --- list_versions --------------------------------------------------------------


@pytest.fixture
def catalogue(registry: Any, models: Any) -> None:
    """Four versions with different stages, tags and metrics."""
    register(registry, models, "v2", metadata={"accuracy": 0.90, "inference_latency_p95": 40}, tags=["fraud"])
    register(
        registry, models, "v10", metadata={"accuracy": 0.95, "inference_latency_p95": 80}, tags=["fraud", "gpu"]
    )
    register(registry, models, "v3", metadata={"accuracy": 0.85}, tags=["gpu"])
    register(registry, models, "v4", tags=["fraud", "gpu"])
    registry.promote_model(NAME, "v10", "dev", "staging")


def versions(found: list[Any]) -> list[str]:
    return [model_version.version for model_version in found]


def test_list_versions_in_semver_order(registry: Any, catalogue: None) -> None:
    assert versions(registry.list_versions(NAME)) == ["v2.0.0", "v3.0.0", "v4.0.0", "v10.0.0"]


def test_list_versions_by_stage(registry: Any, catalogue: None) -> None:
    assert versions(registry.list_versions(NAME, stage="staging")) == ["v10.0.0"]


def test_list_versions_by_stage_without_match(registry: Any, catalogue: None) -> None:
    assert registry.list_versions(NAME, stage="production") == []


def test_list_versions_needs_every_tag(registry: Any, catalogue: None) -> None:
    assert versions(registry.list_versions(NAME, tags=["fraud", "gpu"])) == ["v4.0.0", "v10.0.0"]


def test_list_versions_by_one_tag(registry: Any, catalogue: None) -> None:
    assert versions(registry.list_versions(NAME, tags=["fraud"])) == ["v2.0.0", "v4.0.0", "v10.0.0"]


def test_min_metrics_is_inclusive(registry: Any, catalogue: None) -> None:
    assert versions(registry.list_versions(NAME, min_metrics={"accuracy": 0.90})) == ["v2.0.0", "v10.0.0"]


def test_max_metrics_is_inclusive(registry: Any, catalogue: None) -> None:
    found = registry.list_versions(NAME, max_metrics={"inference_latency_p95": 40})

    assert versions(found) == ["v2.0.0"]


def test_metric_filter_skips_unmeasured_versions(registry: Any, catalogue: None) -> None:
    assert "v4.0.0" not in versions(registry.list_versions(NAME, max_metrics={"accuracy": 1.0}))


def test_filters_combine(registry: Any, catalogue: None) -> None:
    found = registry.list_versions(
        NAME, tags=["fraud"], min_metrics={"accuracy": 0.9}, max_metrics={"inference_latency_p95": 100}
    )

    assert versions(found) == ["v2.0.0", "v10.0.0"]


# --- history --------------------------------------------------------------------


def test_history_in_recorded_order(registry: Any, deployed: None) -> None:
    entries = registry.history(NAME)

    assert [(e.event, e.version, e.to_stage) for e in entries] == [
        ("ModelCreated", None, None),
        ("Registered", "v1.0.0", "dev"),
        ("Promoted", "v1.0.0", "staging"),
        ("Promoted", "v1.0.0", "production"),
        ("Registered", "v1.1.0", "dev"),
        ("Promoted", "v1.1.0", "staging"),
    ]
    assert [e.position for e in entries] == [1, 2, 3, 4, 5, 6]


def test_history_records_actor(registry: Any, models: Any) -> None:
    register(registry, models, "v1")
    registry.promote_model(NAME, "v1", "dev", "staging", actor="release-bot")

    assert [e.actor for e in registry.history(NAME)] == ["alice", "alice", "release-bot"]


def test_history_records_increment(make_registry: Any, models: Any) -> None:
    register(make_registry(increment="0042"), models, "v1")
    make_registry(increment="0043").promote_model(NAME, "v1", "dev", "staging")

    assert [e.increment for e in make_registry().history(NAME)] == ["0042", "0042", "0043"]


def test_history_times_are_utc(registry: Any, deployed: None) -> None:
    entry = registry.history(NAME)[1]

    assert entry.recorded_at.utcoffset() == dt.timedelta(0)
    assert entry.effective_at.utcoffset() == dt.timedelta(0)


def test_history_times_follow_clock(registry: Any, models: Any, clock: Any) -> None:
    register(registry, models, "v1")
    clock.advance(days=3)
    registry.promote_model(NAME, "v1", "dev", "staging")

    last = registry.history(NAME)[-1]

    assert last.recorded_at == dt.datetime(2024, 1, 13, 9, 0, tzinfo=UTC)
    assert last.effective_at == last.recorded_at


def test_backfill_keeps_both_times(registry: Any, models: Any, clock: Any) -> None:
    imported = dt.datetime(2023, 6, 1, 12, 0, tzinfo=UTC)

    register(registry, models, "v1", effective_at=imported)

    registered = registry.history(NAME)[-1]
    assert registered.effective_at == imported
    assert registered.recorded_at == clock.now


def test_backfill_sets_created_at(registry: Any, models: Any) -> None:
    imported = dt.datetime(2023, 6, 1, 12, 0, tzinfo=UTC)

    model_version = register(registry, models, "v1", effective_at=imported)

    assert model_version.created_at == imported


def test_naive_effective_at_is_utc(registry: Any, models: Any) -> None:
    register(registry, models, "v1", effective_at=dt.datetime(2023, 6, 1, 12, 0))

    assert registry.history(NAME)[-1].effective_at == dt.datetime(2023, 6, 1, 12, 0, tzinfo=UTC)


def test_effective_at_offset_converted_to_utc(registry: Any, models: Any) -> None:
    register(registry, models, "v1", effective_at="2023-06-01T14:00:00+02:00")

    assert registry.history(NAME)[-1].effective_at == dt.datetime(2023, 6, 1, 12, 0, tzinfo=UTC)


# --- get_model_by_date ----------------------------------------------------------


@pytest.fixture
def timeline(registry: Any, models: Any, clock: Any) -> None:
    """v1 registered 2024-01-10 09:00 UTC and deployed at 10:00; v2 deployed 2024-01-12 09:00; rollback to v1 2024-01-14 09:00."""
    register(registry, models, "v1")
    clock.advance(hours=1)
    deploy(registry, "v1")
    clock.now = dt.datetime(2024, 1, 12, 9, 0, tzinfo=UTC)
    register(registry, models, "v2")
    deploy(registry, "v2")
    clock.now = dt.datetime(2024, 1, 14, 9, 0, tzinfo=UTC)
    registry.rollback(NAME, "v1", "v2 raised the false positive rate")
    clock.advance(days=1)


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (dt.datetime(2024, 1, 10, 10, 0, tzinfo=UTC), "v1.0.0"),
        (dt.datetime(2024, 1, 11, 12, 0, tzinfo=UTC), "v1.0.0"),
        (dt.datetime(2024, 1, 12, 8, 59, 59, tzinfo=UTC), "v1.0.0"),
        (dt.datetime(2024, 1, 12, 9, 0, tzinfo=UTC), "v2.0.0"),
        (dt.datetime(2024, 1, 13, 0, 0, tzinfo=UTC), "v2.0.0"),
        (dt.datetime(2024, 1, 14, 9, 0, tzinfo=UTC), "v1.0.0"),
        (dt.datetime(2024, 1, 20, 0, 0, tzinfo=UTC), "v1.0.0"),
    ],
)
def test_production_at_moment(registry: Any, timeline: None, moment: dt.datetime, expected: str) -> None:
    assert registry.get_model_by_date(NAME, moment).version == expected


def test_moment_with_other_offset(registry: Any, timeline: None) -> None:
    moment = dt.datetime(2024, 1, 12, 11, 30, tzinfo=dt.timezone(dt.timedelta(hours=2)))

    assert registry.get_model_by_date(NAME, moment).version == "v2.0.0"


def test_past_version_shows_past_stage(registry: Any, timeline: None) -> None:
    past = registry.get_model_by_date(NAME, dt.datetime(2024, 1, 13, tzinfo=UTC))

    assert past.version == "v2.0.0"
    assert past.stage == "production"


@pytest.mark.parametrize(
    ("day", "expected"),
    [("2024-01-11", "v1.0.0"), ("2024-01-12", "v2.0.0"), ("2024-01-14", "v1.0.0")],
)
def test_bare_date_means_end_of_day(registry: Any, timeline: None, day: str, expected: str) -> None:
    assert registry.get_model_by_date(NAME, day).version == expected


def test_date_object_means_end_of_day(registry: Any, timeline: None) -> None:
    assert registry.get_model_by_date(NAME, dt.date(2024, 1, 12)).version == "v2.0.0"


@pytest.fixture
def tokyo_local_time() -> Iterator[None]:
    """Set the process's local time zone to UTC+9, so a naive time read as local time lands 9 hours early."""
    previous = os.environ.get("TZ")
    os.environ["TZ"] = "Asia/Tokyo"
    time.tzset()
    assert time.localtime().tm_gmtoff == 9 * 3600
    yield
    if previous is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = previous
    time.tzset()


def test_naive_datetime_means_utc(registry: Any, timeline: None, tokyo_local_time: None) -> None:
    assert registry.get_model_by_date(NAME, dt.datetime(2024, 1, 12, 9, 30)).version == "v2.0.0"


def test_naive_text_means_utc(registry: Any, timeline: None, tokyo_local_time: None) -> None:
    assert registry.get_model_by_date(NAME, "2024-01-12T09:30:00").version == "v2.0.0"


def test_before_model_existed(registry: Any, timeline: None) -> None:
    with pytest.raises(NoVersionInStage) as raised:
        registry.get_model_by_date(NAME, "2024-01-01")

    assert "2024-01-01T23:59:59.999999+00:00" in str(raised.value)


def test_before_first_deployment(registry: Any, timeline: None) -> None:
    with pytest.raises(NoVersionInStage):
        registry.get_model_by_date(NAME, dt.datetime(2024, 1, 10, 9, 30, tzinfo=UTC))


def test_past_staging_version(registry: Any, timeline: None) -> None:
    past = registry.get_model_by_date(NAME, dt.datetime(2024, 1, 10, 9, 30, tzinfo=UTC), stage="dev")

    assert past.version == "v1.0.0"


def test_by_date_view_loads_model(registry: Any, timeline: None, models: Any) -> None:
    features = models.x_test[models.features_v1]

    loaded = registry.get_model_by_date(NAME, "2024-01-12").model

    assert (loaded.predict(features) == models.logistic.predict(features)).all()


def test_by_date_from_new_registry(make_registry: Any, timeline: None) -> None:
    assert make_registry().get_model_by_date(NAME, "2024-01-12").version == "v2.0.0"


def test_by_date_follows_effective_time(registry: Any, models: Any) -> None:
    register(registry, models, "v1", effective_at="2023-06-01T09:00:00+00:00")
    registry.promote_model(NAME, "v1", "dev", "staging", effective_at="2023-06-02T09:00:00+00:00")
    registry.promote_model(NAME, "v1", "staging", "production", effective_at="2023-06-03T09:00:00+00:00")

    assert registry.get_model_by_date(NAME, "2023-07-01").version == "v1.0.0"
    with pytest.raises(NoVersionInStage):
        registry.get_model_by_date(NAME, "2023-06-02")
