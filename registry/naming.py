"""Model names, stages and references such as ``fraud-detection-v3.1.0``."""

from __future__ import annotations

import functools
import re
import uuid

from registry.errors import InvalidInput, InvalidModelName, InvalidStage

NAME_RULE = (
    "a model name is 1 to 128 characters of lowercase letters, digits, '-', '_' and '.', "
    "starting with a letter or a digit"
)
_NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]{0,127}")

# The namespace of the deterministic aggregate ids: one aggregate per model name.
_MODEL_NAMESPACE = uuid.UUID("5b3f7a52-2f0e-4d1c-9a77-0c1f1f3c9e10")

STAGES = ("dev", "staging", "production", "archived")

_VERSION_TEXT = re.compile(r"v?\d[0-9A-Za-z.+-]*")


def check_name(name: object) -> str:
    """Return ``name`` if it follows the naming rule, else raise ``InvalidModelName``."""
    if not isinstance(name, str):
        raise InvalidModelName(
            f"model name must be a string, got {type(name).__name__} {name!r}; {NAME_RULE}",
            value=name,
        )
    if _NAME_PATTERN.fullmatch(name) is None:
        raise InvalidModelName(f"invalid model name {name!r}: {NAME_RULE}", value=name)
    return name


def model_id(name: str) -> uuid.UUID:
    """Return the id of the aggregate that stores the events of model ``name``."""
    return _model_id(check_name(name))


@functools.lru_cache(maxsize=1024)
def _model_id(name: str) -> uuid.UUID:
    return uuid.uuid5(_MODEL_NAMESPACE, name)


def check_stage(stage: object, *, argument: str = "stage") -> str:
    """Return ``stage`` if it is one of the four stages, else raise ``InvalidStage``."""
    if stage not in STAGES:
        raise InvalidStage(
            f"invalid {argument} {stage!r}: expected one of {', '.join(STAGES)}",
            value=stage,
        )
    return str(stage)


def split_reference(reference: object) -> tuple[str, str]:
    """Split ``"fraud-detection-v3.1.0"`` into the name and the version text.

    The version is the part after the last ``-`` that is followed by an optional
    ``v`` and a digit, so names that contain ``-v`` themselves still split right.
    """
    if not isinstance(reference, str):
        raise InvalidInput(
            f"model reference must be a string such as 'fraud-detection-v3.1.0', got {reference!r}",
            value=reference,
        )
    positions = [i for i, char in enumerate(reference) if char == "-"]
    for position in reversed(positions):
        name, version = reference[:position], reference[position + 1 :]
        if name and _VERSION_TEXT.fullmatch(version):
            return check_name(name), version
    raise InvalidInput(
        f"invalid model reference {reference!r}: expected NAME-vVERSION, "
        "such as 'fraud-detection-v3.1.0'",
        value=reference,
    )
