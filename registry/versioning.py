"""Semantic version numbers and the rule that picks the next one."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import semver

from registry.errors import InvalidInput, InvalidVersion

VERSION_TYPES = ("major", "minor", "patch")

# Metrics where a larger value is better; used to decide whether a candidate improves.
HIGHER_IS_BETTER = ("accuracy", "precision", "recall", "roc_auc", "f1_score")


def parse_version(text: object) -> semver.Version:
    """Parse ``v3``, ``3.1``, ``v3.1.0`` or full semver into a ``semver.Version``.

    Pre-release and build parts are case-sensitive, so ``1.0.0-A`` and
    ``1.0.0-a`` are different versions.
    """
    if isinstance(text, int) and not isinstance(text, bool):
        text = str(text)
    if not isinstance(text, str) or not text:
        raise InvalidVersion(
            f"invalid version {text!r}: expected text such as 'v3', '3.1', 'v3.1.0' or '1.0.0-rc.1'",
            value=text,
        )
    body = text[1:] if text[:1] in ("v", "V") else text
    try:
        return semver.Version.parse(body, optional_minor_and_patch=True)
    except (ValueError, TypeError):
        raise InvalidVersion(
            f"invalid version {text!r}: expected a semantic version such as 'v3', '3.1', "
            "'v3.1.0' or '1.0.0-rc.1+build.5'",
            value=text,
        ) from None


def format_version(version: semver.Version) -> str:
    """Return the display form of ``version``, such as ``v3.1.0``."""
    return f"v{version}"


def normalize_version(text: object) -> str:
    """Return the display form of the version that ``text`` denotes."""
    return format_version(parse_version(text))


def sort_key(text: str) -> tuple[semver.Version, str]:
    """Return a key that orders displayed versions by semver precedence.

    Versions that differ only in build metadata have equal precedence, so the
    text breaks the tie and the order stays total.
    """
    return parse_version(text), text


def latest(versions: Iterable[str]) -> str | None:
    """Return the highest of the displayed ``versions``, or None when there are none."""
    ordered = sorted(versions, key=sort_key)
    return ordered[-1] if ordered else None


def bump(previous: str | None, version_type: str) -> str:
    """Return the version after ``previous`` for a change of ``version_type``.

    A model without versions starts at v1.0.0, whatever the type.
    """
    if version_type not in VERSION_TYPES:
        raise InvalidInput(
            f"invalid version_type {version_type!r}: expected one of {', '.join(VERSION_TYPES)}, "
            "or leave it out to let the registry classify the change",
            value=version_type,
        )
    if previous is None:
        return "v1.0.0"
    current = parse_version(previous)
    bumped = {
        "major": current.bump_major,
        "minor": current.bump_minor,
        "patch": current.bump_patch,
    }[version_type]()
    return format_version(bumped)


@dataclass(frozen=True)
class Change:
    """The classification of a candidate against the latest version, with its reasons."""

    version_type: str
    reasons: list[str] = field(default_factory=list)


def classify_change(
    previous_inputs: Mapping[str, str],
    previous_metrics: Mapping[str, float],
    candidate_inputs: Mapping[str, str],
    candidate_metrics: Mapping[str, float],
) -> Change:
    """Classify a candidate version as a major, minor or patch change.

    - major: an input feature was removed or renamed, or its type changed;
    - minor: features were added, or a metric improved;
    - patch: anything else, such as retraining on the same features.
    """
    removed = sorted(set(previous_inputs) - set(candidate_inputs))
    added = sorted(set(candidate_inputs) - set(previous_inputs))
    retyped = sorted(
        f"{feature} ({previous_inputs[feature]} -> {candidate_inputs[feature]})"
        for feature in set(previous_inputs) & set(candidate_inputs)
        if previous_inputs[feature] != candidate_inputs[feature]
    )
    if removed or retyped:
        reasons = []
        if removed:
            reasons.append(f"inputs removed or renamed: {', '.join(removed)}")
        if retyped:
            reasons.append(f"input types changed: {', '.join(retyped)}")
        return Change("major", reasons)

    improved = sorted(
        f"{metric} {previous_metrics[metric]:g} -> {candidate_metrics[metric]:g}"
        for metric in HIGHER_IS_BETTER
        if metric in previous_metrics
        and metric in candidate_metrics
        and candidate_metrics[metric] > previous_metrics[metric]
    )
    if added or improved:
        reasons = []
        if added:
            reasons.append(f"inputs added: {', '.join(added)}")
        if improved:
            reasons.append(f"metrics improved: {', '.join(improved)}")
        return Change("minor", reasons)

    return Change("patch", ["same inputs and no metric improved"])


# Pre-release identifiers are joined with \x02 and closed with \x01, both lower
# than any character an identifier may contain, so "alpha" sorts before "alpha.1".
_SEPARATOR = "\x02"
_END = "\x01"


def precedence_key(text: str) -> str:
    """Return a string whose plain text order is the semver precedence of ``text``.

    Read models sort versions in SQL with it. Numbers are prefixed with their
    digit count, so they sort by value at any length. A release sorts after its pre-releases, numeric pre-release identifiers sort
    before alphanumeric ones, and the displayed text breaks ties between
    versions that differ only in build metadata.
    """
    version = parse_version(text)
    release = ".".join(_numeric_key(part) for part in (version.major, version.minor, version.patch))
    if version.prerelease is None:
        stage = "1"
    else:
        identifiers = []
        for identifier in version.prerelease.split("."):
            if identifier.isdigit():
                identifiers.append(f"0{_numeric_key(int(identifier))}")
            else:
                identifiers.append(f"1{identifier}")
        stage = "0" + _SEPARATOR.join(identifiers) + _END
    return f"{release}|{stage}|{format_version(version)}"


def _numeric_key(number: int) -> str:
    # Semver numbers have no leading zeros, so the digit count orders them first.
    digits = str(number)
    return f"{len(digits):03d}{digits}"
