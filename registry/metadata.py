"""Checks on the caller's metadata, in the shape ML teams already keep."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from registry.errors import InvalidMetadata

# Metrics given as fractions between 0 and 1.
FRACTION_METRICS = ("accuracy", "precision", "recall", "roc_auc", "f1_score")

# Numbers that cannot be negative; latencies are in milliseconds, sizes in bytes.
NON_NEGATIVE = (
    "training_duration",
    "training_data_size",
    "inference_latency_p50",
    "inference_latency_p95",
    "model_size",
    "cpu_usage",
    "memory_usage",
)

TEXT_FIELDS = (
    "algorithm",
    "framework",
    "python_version",
    "experiment",
    "training_data_version",
    "feature_engineering_version",
    "parent_model",
    "owner",
    "approver",
    "description",
)

# Fields the registry sets itself; a caller's value for them must agree or is rejected.
REGISTRY_FIELDS = ("name", "version", "stage", "created_at", "updated_at")

LINEAGE_FIELDS = ("increment", "experiment", "training_data_version", "feature_engineering_version", "parent_model")


def check_metadata(metadata: object) -> dict[str, Any]:
    """Validate ``metadata`` and return a copy; unknown keys are kept as they are."""
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise InvalidMetadata(
            f"invalid metadata {metadata!r}: expected a dict such as {{'accuracy': 0.95}}",
            value=metadata,
        )
    checked = dict(metadata)
    for key in checked:
        if not isinstance(key, str):
            raise InvalidMetadata(f"invalid metadata key {key!r}: keys must be strings", value=key)

    for key in FRACTION_METRICS:
        if key in checked:
            value = _number(key, checked[key])
            if not 0.0 <= value <= 1.0:
                raise InvalidMetadata(
                    f"invalid metadata[{key!r}] = {value!r}: expected a fraction between 0 and 1 "
                    "(write 95% as 0.95)",
                    value=value,
                )
    for key in NON_NEGATIVE:
        if key in checked and _number(key, checked[key]) < 0:
            raise InvalidMetadata(
                f"invalid metadata[{key!r}] = {checked[key]!r}: expected a number of zero or more",
                value=checked[key],
            )
    for key in TEXT_FIELDS:
        if key in checked and checked[key] is not None and not isinstance(checked[key], str):
            raise InvalidMetadata(
                f"invalid metadata[{key!r}] = {checked[key]!r}: expected a string",
                value=checked[key],
            )
    if "features" in checked:
        checked["features"] = _features(checked["features"])
        count = len(checked["features"])
        given = checked.get("num_features", count)
        if given != count:
            raise InvalidMetadata(
                f"metadata['num_features'] is {given!r} but metadata['features'] lists {count}; "
                "remove num_features or make the two agree",
                value=given,
            )
        checked["num_features"] = count
    return _as_json_values(checked)


def check_tags(tags: object) -> list[str]:
    """Validate a list of tags and return it without duplicates, in the given order."""
    if tags is None:
        return []
    if isinstance(tags, str) or not isinstance(tags, Sequence):
        raise InvalidMetadata(
            f"invalid tags {tags!r}: expected a list of strings such as ['fraud', 'xgboost']",
            value=tags,
        )
    unique: list[str] = []
    for tag in tags:
        if not isinstance(tag, str) or not tag.strip():
            raise InvalidMetadata(f"invalid tag {tag!r}: expected a non-empty string", value=tag)
        if tag not in unique:
            unique.append(tag)
    return unique


def metrics_of(metadata: Mapping[str, Any]) -> dict[str, float]:
    """Return the numeric metrics and deployment figures in ``metadata``."""
    return {
        key: float(metadata[key])
        for key in FRACTION_METRICS + NON_NEGATIVE
        if isinstance(metadata.get(key), (int, float)) and not isinstance(metadata.get(key), bool)
    }


def _as_json_values(metadata: dict[str, Any]) -> dict[str, Any]:
    """Return ``metadata`` as the JSON values that the event store keeps.

    A replay rebuilds metadata from stored JSON, so the live state must hold the
    same values: tuples become lists, datetimes ISO 8601 text, numpy scalars numbers.
    """
    try:
        return orjson.loads(orjson.dumps(metadata, option=orjson.OPT_SERIALIZE_NUMPY))  # type: ignore[no-any-return]
    except orjson.JSONEncodeError as error:
        raise InvalidMetadata(
            f"invalid metadata: {error}; expected JSON values (text, numbers, booleans, None, lists and dicts)",
            value=metadata,
        ) from None


def _number(key: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise InvalidMetadata(
            f"invalid metadata[{key!r}] = {value!r}: expected a number",
            value=value,
        )
    return float(value)


def _features(features: object) -> list[str] | dict[str, str]:
    if isinstance(features, Mapping):
        return {str(k): str(v) for k, v in features.items()}
    if isinstance(features, str) or not isinstance(features, Sequence):
        raise InvalidMetadata(
            f"invalid metadata['features'] = {features!r}: expected a list of feature names "
            "or a dict of name to type",
            value=features,
        )
    names = [str(name) for name in features]
    if len(set(names)) != len(names):
        duplicates = sorted({n for n in names if names.count(n) > 1})
        raise InvalidMetadata(
            f"metadata['features'] repeats {', '.join(duplicates)}; each feature must be listed once",
            value=duplicates,
        )
    return names
