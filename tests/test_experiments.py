"""Experiment tracking: runs that complete, runs that fail, and the rules on a run's events."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sklearn.metrics import accuracy_score, roc_auc_score

from registry import (
    ExperimentAlreadyEnded,
    ExperimentRun,
    InvalidInput,
    ModelNotFound,
    ModelRegistry,
    RegistryError,
    VersionAlreadyExists,
    track_experiment,
)

NAME = "fraud-detection"


def evaluate(models: Any) -> dict[str, float]:
    x_test = models.x_test[models.features_v1]
    return {
        "accuracy": float(accuracy_score(models.y_test, models.logistic.predict(x_test))),
        "roc_auc": float(roc_auc_score(models.y_test, models.logistic.predict_proba(x_test)[:, 1])),
    }


def test_completed_run_links_version(registry: ModelRegistry, models: Any) -> None:
    metrics = evaluate(models)
    with registry.track_experiment("logistic-v1", increment="0042", parameters={"max_iter": 1000}) as run:
        run.log_params(scaler="standard")
        run.log_metrics(**metrics)
        version = run.register_model(
            models.logistic, NAME, input_example=models.x_test[models.features_v1].head(5)
        )

    assert version.version == "v1.0.0"
    stored = registry.get_model(NAME, version="v1.0.0")
    assert stored.metadata["experiment"] == "logistic-v1"
    assert stored.metadata["increment"] == "0042"
    assert stored.metadata["accuracy"] == metrics["accuracy"]
    assert stored.metadata["roc_auc"] == metrics["roc_auc"]
    assert "logistic-v1" in registry.get_lineage(NAME, "v1.0.0").experiments()

    [recorded] = registry.experiment_history("logistic-v1")
    assert recorded["status"] == "completed"
    assert recorded["error"] is None
    assert recorded["parameters"] == {"max_iter": 1000, "scaler": "standard"}
    assert recorded["metrics"] == metrics
    assert recorded["versions"] == [f"{NAME}-v1.0.0"]
    assert recorded["increment"] == "0042"
    assert recorded["actor"] == "alice"
    assert recorded["ended_at"] >= recorded["started_at"]


def test_caller_metadata_overrides_logged_metrics(registry: ModelRegistry, models: Any) -> None:
    with registry.track_experiment("logistic-v1") as run:
        run.log_metrics(accuracy=0.5, f1_score=0.4)
        run.register_model(models.logistic, NAME, metadata={"accuracy": 0.9})

    stored = registry.get_model(NAME, version="v1.0.0")
    assert stored.metadata["accuracy"] == 0.9
    assert stored.metadata["f1_score"] == 0.4


def test_second_run_auto_versions_after_first(registry: ModelRegistry, models: Any) -> None:
    for accuracy in (0.80, 0.90):
        with registry.track_experiment("logistic-v1") as run:
            run.log_metrics(accuracy=accuracy)
            run.register_model(models.logistic, NAME, input_example=models.x_test[models.features_v1].head(5))

    history = registry.experiment_history("logistic-v1")
    assert [run["versions"] for run in history] == [[f"{NAME}-v1.0.0"], [f"{NAME}-v1.1.0"]]
    assert history[0]["run_id"] != history[1]["run_id"]


def test_block_that_raises_records_failed_run(registry: ModelRegistry, models: Any) -> None:
    with pytest.raises(RuntimeError, match="training diverged"):
        with registry.track_experiment("logistic-v1") as run:
            run.log_params(learning_rate=10.0)
            raise RuntimeError("training diverged")
            run.register_model(models.logistic, NAME)  # never reached

    [recorded] = registry.experiment_history("logistic-v1")
    assert recorded["status"] == "failed"
    assert recorded["error"] == "RuntimeError: training diverged"
    assert recorded["versions"] == []
    with pytest.raises(ModelNotFound):
        registry.list_versions(NAME)


def test_failed_registration_records_failed_run(registry: ModelRegistry, models: Any) -> None:
    registry.register_model(NAME, models.logistic, version="v1.0.0")

    with pytest.raises(VersionAlreadyExists):
        with registry.track_experiment("logistic-v1") as run:
            run.register_model(models.logistic, NAME, version="v1.0.0")

    [recorded] = registry.experiment_history("logistic-v1")
    assert recorded["status"] == "failed"
    assert recorded["error"] is not None
    assert recorded["error"].startswith("VersionAlreadyExists: ")
    assert recorded["versions"] == []
    assert [v.version for v in registry.list_versions(NAME)] == ["v1.0.0"]


def test_version_before_failure_kept(registry: ModelRegistry, models: Any) -> None:
    with pytest.raises(ValueError, match="evaluation failed"):
        with registry.track_experiment("logistic-v1") as run:
            run.register_model(models.logistic, NAME)
            raise ValueError("evaluation failed")

    [recorded] = registry.experiment_history("logistic-v1")
    assert recorded["status"] == "failed"
    assert recorded["versions"] == [f"{NAME}-v1.0.0"]
    assert registry.get_model(NAME, version="v1.0.0").metadata["experiment"] == "logistic-v1"


def test_logging_after_end_raises(registry: ModelRegistry, models: Any) -> None:
    with registry.track_experiment("logistic-v1") as run:
        run.log_metrics(accuracy=0.9)

    with pytest.raises(ExperimentAlreadyEnded) as raised:
        run.log_metrics(accuracy=0.95)
    assert isinstance(raised.value, RegistryError)
    with pytest.raises(ExperimentAlreadyEnded):
        run.log_params(max_iter=10)
    with pytest.raises(ExperimentAlreadyEnded):
        run.end()
    with pytest.raises(ExperimentAlreadyEnded):
        run.register_model(models.logistic, NAME)

    with pytest.raises(ModelNotFound):
        registry.list_versions(NAME)
    [recorded] = registry.experiment_history("logistic-v1")
    assert recorded["metrics"] == {"accuracy": 0.9}


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf"), "0.9", True, None])
def test_non_finite_metric_rejected(registry: ModelRegistry, value: Any) -> None:
    with registry.track_experiment("logistic-v1") as run:
        with pytest.raises(InvalidInput):
            run.log_metrics(accuracy=value)

    [recorded] = registry.experiment_history("logistic-v1")
    assert recorded["status"] == "completed"
    assert recorded["metrics"] == {}


def test_parameters_must_be_json_values(registry: ModelRegistry) -> None:
    with registry.track_experiment("logistic-v1") as run:
        with pytest.raises(InvalidInput):
            run.log_params(callback=object())


@pytest.mark.parametrize("name", ["", "  padded ", "x" * 129, 42])
def test_invalid_experiment_name_rejected(registry: ModelRegistry, name: Any) -> None:
    with pytest.raises(InvalidInput):
        registry.track_experiment(name)


def test_history_separates_experiments(registry: ModelRegistry) -> None:
    with registry.track_experiment("logistic-v1"):
        pass
    with registry.track_experiment("xgboost-v1"):
        pass

    assert len(registry.experiment_history("logistic-v1")) == 1
    assert len(registry.experiment_history("xgboost-v1")) == 1
    assert registry.experiment_history("never-run") == []


def test_history_survives_reopening(make_registry: Any) -> None:
    with make_registry().track_experiment("logistic-v1", parameters={"c": 1.0}) as run:
        run.log_metrics(accuracy=0.9)

    [recorded] = make_registry().experiment_history("logistic-v1")
    assert recorded["status"] == "completed"
    assert recorded["parameters"] == {"c": 1.0}
    assert recorded["metrics"] == {"accuracy": 0.9}


def test_module_function_opens_registry(tmp_path: Path, models: Any) -> None:
    home = tmp_path / "home"
    with track_experiment("logistic-v1", increment="0042", home=home) as run:
        assert isinstance(run, ExperimentRun)
        run.log_metrics(accuracy=0.9)
        run.register_model(models.logistic, NAME)

    with ModelRegistry(home=home) as reopened:
        [recorded] = reopened.experiment_history("logistic-v1")
        assert recorded["status"] == "completed"
        assert recorded["increment"] == "0042"
        stored = reopened.get_model(NAME, version="v1.0.0")
        assert stored.metadata["increment"] == "0042"
        assert stored.increment == "0042"


def test_module_function_uses_given_registry(registry: ModelRegistry) -> None:
    with track_experiment("logistic-v1", registry=registry) as run:
        run.log_params(c=1.0)

    assert registry.experiment_history("logistic-v1")[0]["parameters"] == {"c": 1.0}
