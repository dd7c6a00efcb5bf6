"""Comparing two versions: metric changes, inputs, the recommendation and the renderers."""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson
import pytest

from registry import Comparison, InvalidInput, ModelNotFound, VersionNotFound

NAME = "fraud-detection"
A = f"{NAME}-v3.0.0"
B = f"{NAME}-v3.1.0"


@pytest.fixture
def demo_versions(registry: Any, models: Any) -> None:
    """Register the demo's logistic v3.0.0 on features_v1 and XGBoost v3.1.0 on features_v2."""
    registry.register_model(
        NAME,
        models.logistic,
        version="v3.0.0",
        metadata={"accuracy": 0.95, "inference_latency_p95": 1.0},
        input_example=models.x_test[models.features_v1],
    )
    registry.register_model(
        NAME,
        models.xgboost,
        version="v3.1.0",
        metadata={"accuracy": 0.965, "inference_latency_p95": 1.1},
        input_example=models.x_test[models.features_v2],
    )


def row(rows: Any, name: str) -> Any:
    return next(r for r in rows if r.name == name)


def test_compare_returns_comparison(registry: Any, demo_versions: None) -> None:
    comparison = registry.compare_models(model_a=A, model_b=B)
    assert isinstance(comparison, Comparison)
    assert comparison.model_a == A
    assert comparison.model_b == B


def test_compare_accuracy_change(registry: Any, demo_versions: None) -> None:
    accuracy = row(registry.compare_models(A, B).metrics, "accuracy")
    assert accuracy.a == 0.95
    assert accuracy.b == 0.965
    assert accuracy.change == pytest.approx(0.015)
    assert accuracy.percent == pytest.approx(0.015 / 0.95 * 100)
    assert accuracy.better == "b"
    assert accuracy.direction == "higher"


def test_compare_latency_lower_is_better(registry: Any, demo_versions: None) -> None:
    latency = row(registry.compare_models(A, B).resources, "inference_latency_p95")
    assert latency.change == pytest.approx(0.1)
    assert latency.percent == pytest.approx(10.0)
    assert latency.better == "a"
    assert latency.direction == "lower"


def test_compare_includes_artifact_size(registry: Any, demo_versions: None) -> None:
    comparison = registry.compare_models(A, B)
    size = row(comparison.resources, "artifact_size")
    assert size.a == registry.get_model(NAME, version="v3.0.0").artifact.size
    assert size.b == registry.get_model(NAME, version="v3.1.0").artifact.size
    assert size.direction == "lower"


def test_compare_lists_only_present_metrics(registry: Any, demo_versions: None) -> None:
    comparison = registry.compare_models(A, B)
    assert [r.name for r in comparison.metrics] == ["accuracy"]
    assert [r.name for r in comparison.resources] == ["inference_latency_p95", "artifact_size"]


def test_compare_features_added(registry: Any, demo_versions: None, models: Any) -> None:
    comparison = registry.compare_models(A, B)
    extra = sorted(set(models.features_v2) - set(models.features_v1))
    assert len(extra) == 5
    assert list(comparison.features_added) == extra
    assert comparison.features_removed == ()
    assert comparison.features_changed == ()


def test_compare_recommends_promote_b(registry: Any, demo_versions: None) -> None:
    recommendation = registry.compare_models(A, B).recommendation
    assert recommendation.verdict == "promote b"
    assert any(reason.startswith("accuracy +1.6%") for reason in recommendation.reasons)


def test_removed_input_blocks_promotion(registry: Any, demo_versions: None, models: Any) -> None:
    registry.register_model(
        NAME,
        models.logistic,
        version="v3.2.0",
        metadata={"accuracy": 0.97, "inference_latency_p95": 1.0},
        input_example=models.x_test[models.features_v1],
    )
    comparison = registry.compare_models(B, f"{NAME}-v3.2.0")
    removed = sorted(set(models.features_v2) - set(models.features_v1))
    assert list(comparison.features_removed) == removed
    assert comparison.recommendation.verdict in ("review", "keep a")
    for name in removed:
        assert f"input removed: {name}" in comparison.recommendation.reasons


def test_lower_accuracy_keeps_a(registry: Any, demo_versions: None, models: Any) -> None:
    registry.register_model(
        NAME,
        models.xgboost,
        version="v3.2.0",
        metadata={"accuracy": 0.94, "inference_latency_p95": 1.1},
        input_example=models.x_test[models.features_v2],
    )
    recommendation = registry.compare_models(B, f"{NAME}-v3.2.0").recommendation
    assert recommendation.verdict == "keep a"
    assert recommendation.reasons[0].startswith("primary metric accuracy -2.6%")


def test_latency_growth_needs_review(registry: Any, demo_versions: None, models: Any) -> None:
    registry.register_model(
        NAME,
        models.xgboost,
        version="v3.2.0",
        metadata={"accuracy": 0.97, "inference_latency_p95": 1.5},
        input_example=models.x_test[models.features_v2],
    )
    recommendation = registry.compare_models(B, f"{NAME}-v3.2.0").recommendation
    assert recommendation.verdict == "review"
    assert any(reason.startswith("inference_latency_p95 +36.4%") for reason in recommendation.reasons)


def test_compare_across_models(registry: Any, demo_versions: None, models: Any) -> None:
    registry.register_model(
        "churn",
        models.logistic,
        version="v1",
        metadata={"accuracy": 0.9},
        input_example=models.x_test[models.features_v1],
    )
    comparison = registry.compare_models("churn-v1", B)
    assert comparison.model_a == "churn-v1.0.0"
    assert comparison.model_b == B


def test_missing_metric_has_no_change(registry: Any, demo_versions: None, models: Any) -> None:
    registry.register_model(
        NAME,
        models.xgboost,
        version="v3.2.0",
        metadata={"roc_auc": 0.99},
        input_example=models.x_test[models.features_v2],
    )
    comparison = registry.compare_models(B, f"{NAME}-v3.2.0")
    accuracy = row(comparison.metrics, "accuracy")
    roc_auc = row(comparison.metrics, "roc_auc")
    assert accuracy.b is None
    assert accuracy.change is None
    assert accuracy.percent is None
    assert accuracy.better is None
    assert roc_auc.a is None
    assert roc_auc.better is None


def test_to_json_has_keys(registry: Any, demo_versions: None) -> None:
    parsed = orjson.loads(registry.compare_models(A, B).to_json())
    assert list(parsed) == [
        "model_a",
        "model_b",
        "metrics",
        "resources",
        "features_added",
        "features_removed",
        "features_changed",
        "recommendation",
    ]
    assert parsed["recommendation"]["verdict"] == "promote b"
    assert parsed["metrics"][0]["name"] == "accuracy"


def test_to_markdown_has_tables(registry: Any, demo_versions: None) -> None:
    markdown = registry.compare_models(A, B).to_markdown()
    assert markdown.startswith(f"# {A} vs {B}")
    assert "| metric | a | b | change | % | better |" in markdown
    assert "| accuracy | 0.950 | 0.965 | +0.015 | +1.6% | b |" in markdown
    assert "## Recommendation: promote b" in markdown


def test_to_text_names_both_versions(registry: Any, demo_versions: None) -> None:
    text = registry.compare_models(A, B).to_text()
    assert A in text
    assert B in text
    assert "recommendation: promote b" in text


@pytest.mark.parametrize("reference", ["nope", f"{NAME}-vX", ""])
def test_bad_reference_is_invalid_input(registry: Any, demo_versions: None, reference: str) -> None:
    with pytest.raises(InvalidInput):
        registry.compare_models(reference, B)
    with pytest.raises(InvalidInput):
        registry.compare_models(A, reference)


def test_unknown_model_not_found(registry: Any, demo_versions: None) -> None:
    with pytest.raises(ModelNotFound):
        registry.compare_models(A, "unknown-model-v1.0.0")


def test_unknown_version_not_found(registry: Any, demo_versions: None) -> None:
    with pytest.raises(VersionNotFound):
        registry.compare_models(A, f"{NAME}-v9.0.0")


def test_compare_past_end_of_life_version(registry: Any, clock: Any) -> None:
    registry.register_model("churn", {"rule": 1}, version="v1", metadata={"accuracy": 0.9})
    registry.register_model("churn", {"rule": 2}, version="v2", metadata={"accuracy": 0.8})
    registry.deprecate_model("churn", "v1", "superseded", end_of_life=clock.now + dt.timedelta(days=1))
    clock.advance(days=2)

    comparison = registry.compare_models(model_a="churn-v1.0.0", model_b="churn-v2.0.0")

    assert comparison.recommendation.verdict == "keep a"
