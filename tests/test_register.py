"""Registering versions: artifacts, per-version files, signatures, version numbers and model loading."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import platform
from pathlib import Path
from typing import Any
from urllib.parse import urlparse
from urllib.request import url2pathname

import numpy as np
import pytest
import yaml

from registry import SignatureMismatch, VersionAlreadyExists

NAME = "fraud-detection"


class ThresholdRule:
    """A plain picklable model: predicts 1 when a column exceeds a threshold."""

    def __init__(self, column: str, threshold: float) -> None:
        self.column = column
        self.threshold = threshold

    def predict(self, frame: Any) -> np.ndarray:
        return (frame[self.column].to_numpy() > self.threshold).astype(int)


def artifact_path(model_version: Any) -> Path:
    return Path(url2pathname(urlparse(model_version.artifact.uri).path))


def version_files(registry: Any, version: str) -> Path:
    return registry.files_root / NAME / version


def visible_paths(root: Path) -> set[Path]:
    """Return the paths under ``root`` whose parts do not start with a dot."""
    paths = set()
    for path in root.rglob("*"):
        relative = path.relative_to(root)
        if not any(part.startswith(".") for part in relative.parts):
            paths.add(relative)
    return paths


@pytest.fixture
def registered(registry: Any, models: Any) -> Any:
    """Version v3.0.0 of the scikit-learn pipeline, registered with a DataFrame example."""
    return registry.register_model(
        NAME,
        models.logistic,
        version="v3",
        metadata={"accuracy": 0.93, "algorithm": "logistic_regression", "team_channel": "#fraud-ml"},
        tags=["fraud", "baseline"],
        input_example=models.x_test[models.features_v1],
    )


# --- artifact -------------------------------------------------------------------


def test_artifact_digest_matches_stored_bytes(registered: Any) -> None:
    data = artifact_path(registered).read_bytes()

    assert hashlib.sha256(data).hexdigest() == registered.artifact.sha256


def test_artifact_size_matches_stored_bytes(registered: Any) -> None:
    data = artifact_path(registered).read_bytes()

    assert registered.artifact.size == len(data)


def test_artifact_is_named_by_digest(registered: Any) -> None:
    assert artifact_path(registered).name == registered.artifact.sha256


# --- per-version files ----------------------------------------------------------


def test_metadata_json_has_all_fields(make_registry: Any, models: Any) -> None:
    registry = make_registry(increment="0042")
    model_version = registry.register_model(
        NAME, models.logistic, version="v3", metadata={"accuracy": 0.93}, input_example=models.x_test[models.features_v1]
    )

    written = json.loads((version_files(registry, "v3.0.0") / "metadata.json").read_text())

    assert written["accuracy"] == 0.93
    assert written["name"] == NAME
    assert written["version"] == "v3.0.0"
    assert written["stage"] == "dev"
    assert written["created_at"] == "2024-01-10T09:00:00+00:00"
    assert written["actor"] == "alice"
    assert written["increment"] == "0042"
    assert written["artifact_sha256"] == model_version.artifact.sha256
    assert written["artifact_size"] == model_version.artifact.size


def test_metadata_json_follows_promotion(registry: Any, registered: Any) -> None:
    registry.promote_model(NAME, "v3.0.0", "dev", "staging")

    written = json.loads((version_files(registry, "v3.0.0") / "metadata.json").read_text())

    assert written["stage"] == "staging"


def test_requirements_pin_installed_scikit_learn(registry: Any, registered: Any) -> None:
    lines = (version_files(registry, "v3.0.0") / "requirements.txt").read_text().splitlines()

    assert f"scikit-learn=={importlib.metadata.version('scikit-learn')}" in lines
    assert f"numpy=={importlib.metadata.version('numpy')}" in lines


def test_requirements_record_python_version(registry: Any, registered: Any) -> None:
    text = (version_files(registry, "v3.0.0") / "requirements.txt").read_text()

    assert platform.python_version() in text


def test_features_yaml_lists_features(registry: Any, registered: Any, models: Any) -> None:
    document = yaml.safe_load((version_files(registry, "v3.0.0") / "features.yaml").read_text())

    assert [feature["name"] for feature in document["features"]] == models.features_v1
    assert {feature["type"] for feature in document["features"]} == {"float"}
    assert document["num_features"] == len(models.features_v1)


# --- signature ------------------------------------------------------------------


def test_signature_inputs_from_dataframe(registered: Any, models: Any) -> None:
    assert registered.signature.inputs == {name: "float" for name in models.features_v1}


def test_signature_outputs_from_prediction(registered: Any) -> None:
    assert registered.signature.outputs == {"prediction": "int"}


def test_signature_from_feature_list(registry: Any, models: Any) -> None:
    model_version = registry.register_model(
        NAME, models.logistic, version="1", metadata={"features": models.features_v1}
    )

    assert model_version.signature.inputs == {name: "float" for name in models.features_v1}


def test_signature_from_feature_types(registry: Any, models: Any) -> None:
    model_version = registry.register_model(
        NAME,
        models.logistic,
        version="1",
        metadata={"features": {"amount": "float64", "country": "string", "is_new": "boolean"}},
    )

    assert model_version.signature.inputs == {"amount": "float", "country": "str", "is_new": "bool"}


def test_num_features_counted_from_features(registry: Any, models: Any) -> None:
    model_version = registry.register_model(
        NAME, models.logistic, version="1", metadata={"features": models.features_v1}
    )

    assert model_version.metadata["num_features"] == len(models.features_v1)


# --- metadata -------------------------------------------------------------------


def test_unknown_metadata_keys_are_kept(registry: Any, registered: Any) -> None:
    loaded = registry.get_model(NAME, version="v3.0.0")

    assert loaded.metadata["team_channel"] == "#fraud-ml"


def test_metadata_json_keeps_unknown_keys(registry: Any, registered: Any) -> None:
    written = json.loads((version_files(registry, "v3.0.0") / "metadata.json").read_text())

    assert written["team_channel"] == "#fraud-ml"


def test_nested_unknown_metadata_survives_reload(make_registry: Any, models: Any) -> None:
    make_registry().register_model(
        NAME, models.logistic, version="1", metadata={"review": {"ticket": "ML-7", "scores": [1, 2]}}
    )

    loaded = make_registry().get_model(NAME, version="1")

    assert loaded.metadata["review"] == {"ticket": "ML-7", "scores": [1, 2]}


def test_tags_are_stored(registered: Any) -> None:
    assert registered.tags == ["fraud", "baseline"]


# --- version numbers ------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "shown"),
    [
        ("v3", "v3.0.0"),
        ("3", "v3.0.0"),
        (3, "v3.0.0"),
        ("3.1", "v3.1.0"),
        ("v3.1.0", "v3.1.0"),
        ("1.0.0-rc.1+build.5", "v1.0.0-rc.1+build.5"),
    ],
)
def test_version_forms_shown_as_v_form(registry: Any, models: Any, given: Any, shown: str) -> None:
    model_version = registry.register_model(NAME, models.logistic, version=given)

    assert model_version.version == shown
    assert registry.get_model(NAME, version=given).version == shown
    assert (version_files(registry, shown) / "metadata.json").is_file()


def test_prerelease_case_makes_distinct_versions(registry: Any, models: Any) -> None:
    registry.register_model(NAME, models.logistic, version="1.0.0-A")
    registry.register_model(NAME, models.logistic, version="1.0.0-a")

    assert [v.version for v in registry.list_versions(NAME)] == ["v1.0.0-A", "v1.0.0-a"]


def test_existing_version_is_rejected(registry: Any, registered: Any, models: Any) -> None:
    with pytest.raises(VersionAlreadyExists) as raised:
        registry.register_model(NAME, models.xgboost, version="3.0.0")

    assert "v3.0.0" in str(raised.value)
    assert raised.value.latest == "v3.0.0"


def test_existing_version_keeps_first_artifact(registry: Any, registered: Any, models: Any) -> None:
    events_before = len(registry.history(NAME))
    paths_before = visible_paths(registry.home)

    with pytest.raises(VersionAlreadyExists):
        registry.register_model(NAME, models.xgboost, version="v3.0.0", metadata={"accuracy": 0.99})

    kept = registry.get_model(NAME, version="v3")
    assert kept.artifact.sha256 == registered.artifact.sha256
    assert hashlib.sha256(artifact_path(kept).read_bytes()).hexdigest() == registered.artifact.sha256
    assert kept.metadata["accuracy"] == 0.93
    assert len(registry.history(NAME)) == events_before
    assert visible_paths(registry.home) == paths_before


# --- semantic versioning --------------------------------------------------------


@pytest.mark.parametrize(
    ("version_type", "expected"),
    [("major", "v4.0.0"), ("minor", "v3.1.0"), ("patch", "v3.0.1")],
)
def test_version_model_bumps_part(registry: Any, registered: Any, version_type: str, expected: str) -> None:
    assert registry.version_model(NAME, version_type=version_type) == expected


def test_version_model_bumps_highest_version(registry: Any, registered: Any, models: Any) -> None:
    registry.register_model(NAME, models.logistic, version="v2.9.0")

    assert registry.version_model(NAME, "minor") == "v3.1.0"


def test_version_model_starts_at_one(registry: Any) -> None:
    assert registry.version_model("new-model", "minor") == "v1.0.0"


@pytest.fixture
def baseline(registry: Any, models: Any) -> Any:
    """Version v3.0.0 with the ten v1 features and accuracy 0.90, described by metadata."""
    return registry.register_model(
        NAME, models.logistic, version="v3", metadata={"features": models.features_v1, "accuracy": 0.90}
    )


def test_removed_input_is_major(registry: Any, baseline: Any, models: Any) -> None:
    candidate = {"features": models.features_v1[:-1], "accuracy": 0.95}

    assert registry.version_model(NAME, metadata=candidate) == "v4.0.0"


def test_renamed_input_is_major(registry: Any, baseline: Any, models: Any) -> None:
    candidate = {"features": models.features_v1[:-1] + ["renamed_feature"], "accuracy": 0.90}

    assert registry.version_model(NAME, metadata=candidate) == "v4.0.0"


def test_changed_input_type_is_major(registry: Any, baseline: Any, models: Any) -> None:
    typed = {name: "float" for name in models.features_v1}
    typed[models.features_v1[0]] = "int"

    assert registry.version_model(NAME, metadata={"features": typed}) == "v4.0.0"


def test_added_feature_is_minor(registry: Any, baseline: Any, models: Any) -> None:
    candidate = {"features": models.features_v1 + ["merchant_risk"], "accuracy": 0.90}

    assert registry.version_model(NAME, metadata=candidate) == "v3.1.0"


def test_xgboost_candidate_is_minor(registry: Any, models: Any) -> None:
    registry.register_model(NAME, models.logistic, version="v3", input_example=models.x_test[models.features_v1])

    proposed = registry.version_model(
        NAME, model=models.xgboost, input_example=models.x_test[models.features_v2]
    )

    assert proposed == "v3.1.0"


def test_better_metric_is_minor(registry: Any, baseline: Any, models: Any) -> None:
    candidate = {"features": models.features_v1, "accuracy": 0.95}

    assert registry.version_model(NAME, metadata=candidate) == "v3.1.0"


@pytest.mark.parametrize("accuracy", [0.90, 0.85])
def test_same_features_is_patch(registry: Any, baseline: Any, models: Any, accuracy: float) -> None:
    candidate = {"features": models.features_v1, "accuracy": accuracy}

    assert registry.version_model(NAME, metadata=candidate) == "v3.0.1"


def test_auto_version_starts_at_one(registry: Any, models: Any) -> None:
    model_version = registry.register_model(NAME, models.logistic, auto_version=True)

    assert model_version.version == "v1.0.0"


def test_auto_version_classifies_added_features(registry: Any, models: Any) -> None:
    registry.register_model(
        NAME, models.logistic, auto_version=True, input_example=models.x_test[models.features_v1]
    )

    second = registry.register_model(
        NAME, models.xgboost, auto_version=True, input_example=models.x_test[models.features_v2]
    )

    assert second.version == "v1.1.0"
    assert second.version_bump == "minor"


def test_missing_version_classifies_retraining(registry: Any, baseline: Any, models: Any) -> None:
    second = registry.register_model(
        NAME, models.logistic, metadata={"features": models.features_v1, "accuracy": 0.90}
    )

    assert second.version == "v3.0.1"
    assert second.version_bump == "patch"


def test_auto_version_recorded_in_history(registry: Any, baseline: Any, models: Any) -> None:
    registry.register_model(
        NAME, models.logistic, auto_version=True, metadata={"features": models.features_v1, "accuracy": 0.96}
    )

    last = registry.history(NAME)[-1]

    assert last.event == "Registered"
    assert last.version == "v3.1.0"
    assert last.details["version_bump"] == "minor"


# --- supported models -----------------------------------------------------------


def test_pipeline_loads_and_predicts_same(make_registry: Any, registered: Any, models: Any) -> None:
    features = models.x_test[models.features_v1]

    loaded = make_registry().get_model(NAME, version="v3.0.0").model

    assert np.array_equal(loaded.predict(features), models.logistic.predict(features))


def test_xgboost_loads_and_predicts_same(make_registry: Any, models: Any) -> None:
    features = models.x_test[models.features_v2]
    make_registry().register_model(NAME, models.xgboost, version="v4", input_example=features)

    loaded = make_registry().get_model(NAME, version="v4").model

    assert type(loaded) is type(models.xgboost)
    assert np.array_equal(loaded.predict(features), models.xgboost.predict(features))


def test_xgboost_uses_native_format(registry: Any, models: Any) -> None:
    model_version = registry.register_model(NAME, models.xgboost, version="v4")

    assert model_version.artifact.format == "xgboost-ubj"


def test_plain_object_loads_and_predicts_same(make_registry: Any, models: Any) -> None:
    rule = ThresholdRule("mean_radius", 14.0)
    make_registry().register_model(NAME, rule, version="v1", input_example=models.x_test)

    loaded = make_registry().get_model(NAME, version="v1").model

    assert isinstance(loaded, ThresholdRule)
    assert np.array_equal(loaded.predict(models.x_test), rule.predict(models.x_test))


def test_version_type_ignores_case(registry: Any, registered: Any) -> None:
    assert registry.version_model(NAME, "Minor") == "v3.1.0"


def test_signature_break_without_inputs_hints(registry: Any, models: Any) -> None:
    registry.register_model(NAME, models.logistic, version="v3", input_example=models.x_train[models.features_v1])
    registry.promote_model(NAME, "v3", "dev", "staging")
    registry.promote_model(NAME, "v3", "staging", "production")

    with pytest.raises(SignatureMismatch) as raised:
        registry.register_model(NAME, {"rule": "no known inputs"}, version="v3.1")

    assert "pass input_example= or metadata['features']" in str(raised.value)


def test_signature_read_from_fitted_model(registry: Any, models: Any) -> None:
    registered = registry.register_model(NAME, models.xgboost, version="v1")

    assert list(registered.signature.inputs) == models.features_v2
