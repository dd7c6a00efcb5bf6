"""Side-by-side comparison of two model versions, with a promotion recommendation.

Everything here is a pure function of two ``ModelVersion`` objects, so a
comparison can be rendered or stored without touching the event store.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from registry.metadata import FRACTION_METRICS
from registry.views import ModelVersion

# Quality metrics, all fractions between 0 and 1, where a larger value is better.
HIGHER_IS_BETTER = FRACTION_METRICS

# Latency (milliseconds), sizes (bytes) and resource use, where a smaller value is better.
# ``artifact_size`` is the stored artifact's size, which the registry records itself.
LOWER_IS_BETTER = (
    "inference_latency_p50",
    "inference_latency_p95",
    "model_size",
    "memory_usage",
    "cpu_usage",
    "artifact_size",
)

# The metric that decides "keep a": the first of these that both versions report.
PRIMARY_METRICS = ("accuracy", "roc_auc", "f1_score")

# Half a percentage point: an estimate of the run-to-run spread when retraining on the same data.
MAX_METRIC_DROP = 0.005

# An estimate of the p95 latency growth that a serving path absorbs before its budget needs a review.
MAX_P95_LATENCY_GROWTH = 0.20

PROMOTE_B = "promote b"
KEEP_A = "keep a"
REVIEW = "review"


@dataclass(frozen=True)
class MetricChange:
    """One metric of both versions; ``change`` is b - a and ``percent`` is relative to a."""

    name: str
    a: float | None
    b: float | None
    change: float | None
    percent: float | None
    better: str | None  # "a", "b", "same", or None when either value is missing
    direction: str  # "higher" or "lower": which way is better

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "a": self.a,
            "b": self.b,
            "change": self.change,
            "percent": self.percent,
            "better": self.better,
            "direction": self.direction,
        }


@dataclass(frozen=True)
class FeatureChange:
    """An input column whose type differs between the two versions."""

    name: str
    a_type: str
    b_type: str

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "a_type": self.a_type, "b_type": self.b_type}


@dataclass(frozen=True)
class Recommendation:
    """The verdict ("promote b", "keep a" or "review") and the findings behind it."""

    verdict: str
    reasons: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "reasons": list(self.reasons)}


@dataclass(frozen=True)
class Comparison:
    """Version b measured against version a: metrics, latency and size, inputs, and a verdict."""

    model_a: str
    model_b: str
    metrics: tuple[MetricChange, ...]
    resources: tuple[MetricChange, ...]
    features_added: tuple[str, ...]
    features_removed: tuple[str, ...]
    features_changed: tuple[FeatureChange, ...]
    recommendation: Recommendation

    def to_dict(self) -> dict[str, Any]:
        return {
            "model_a": self.model_a,
            "model_b": self.model_b,
            "metrics": [row.to_dict() for row in self.metrics],
            "resources": [row.to_dict() for row in self.resources],
            "features_added": list(self.features_added),
            "features_removed": list(self.features_removed),
            "features_changed": [change.to_dict() for change in self.features_changed],
            "recommendation": self.recommendation.to_dict(),
        }

    def to_json(self) -> str:
        return orjson.dumps(self.to_dict(), option=orjson.OPT_INDENT_2).decode()

    def to_markdown(self) -> str:
        lines = [f"# {self.model_a} vs {self.model_b}", "", f"a is {self.model_a}, b is {self.model_b}.", ""]
        lines += ["## Metrics (higher is better)", "", *_markdown_table(self.metrics), ""]
        lines += ["## Latency and size (lower is better)", "", *_markdown_table(self.resources), ""]

        lines += ["## Features", ""]
        lines += [f"- {label}: {text}" for label, text in self._feature_lines()]
        lines.append("")

        lines += [f"## Recommendation: {self.recommendation.verdict}", ""]
        lines += [f"- {reason}" for reason in self.recommendation.reasons]
        return "\n".join(lines) + "\n"

    def to_text(self) -> str:
        lines = [f"a: {self.model_a}", f"b: {self.model_b}", ""]
        lines += _text_table(self.metrics + self.resources)
        lines.append("")
        lines += [f"{label:<9} {text}" for label, text in self._feature_lines()]
        lines += ["", f"recommendation: {self.recommendation.verdict}"]
        lines += [f"  - {reason}" for reason in self.recommendation.reasons]
        return "\n".join(lines) + "\n"

    def _feature_lines(self) -> list[tuple[str, str]]:
        changed = [f"{c.name} ({c.a_type} → {c.b_type})" for c in self.features_changed]
        return [
            ("added", ", ".join(self.features_added) or "none"),
            ("removed", ", ".join(self.features_removed) or "none"),
            ("changed", ", ".join(changed) or "none"),
        ]


def compare_versions(a: ModelVersion, b: ModelVersion) -> Comparison:
    """Compare version ``b`` against version ``a`` and recommend which one to serve."""
    a_values = _numbers(a)
    b_values = _numbers(b)
    metrics = _rows(HIGHER_IS_BETTER, "higher", a_values, b_values)
    resources = _rows(LOWER_IS_BETTER, "lower", a_values, b_values)

    a_inputs = a.signature.inputs
    b_inputs = b.signature.inputs
    added = tuple(sorted(set(b_inputs) - set(a_inputs)))
    removed = tuple(sorted(set(a_inputs) - set(b_inputs)))
    changed = tuple(
        FeatureChange(name, a_inputs[name], b_inputs[name])
        for name in sorted(set(a_inputs) & set(b_inputs))
        if a_inputs[name] != b_inputs[name]
    )

    return Comparison(
        model_a=f"{a.name}-{a.version}",
        model_b=f"{b.name}-{b.version}",
        metrics=metrics,
        resources=resources,
        features_added=added,
        features_removed=removed,
        features_changed=changed,
        recommendation=recommend(metrics, resources, removed),
    )


def recommend(
    metrics: Sequence[MetricChange], resources: Sequence[MetricChange], removed: Sequence[str]
) -> Recommendation:
    """Decide between "promote b", "keep a" and "review".

    b is promoted when no higher-is-better metric dropped by more than
    ``MAX_METRIC_DROP``, at least one improved, p95 latency grew by at most
    ``MAX_P95_LATENCY_GROWTH`` and no input was removed. Otherwise a is kept
    when b is worse on the primary metric, and anything else needs a review.
    """
    improved = [row for row in metrics if row.better == "b"]
    dropped = [row for row in metrics if row.change is not None and row.change < -MAX_METRIC_DROP]
    p95 = next((row for row in resources if row.name == "inference_latency_p95"), None)

    blockers = [describe(row) for row in dropped]
    if p95 is not None and _grew_beyond(p95, MAX_P95_LATENCY_GROWTH):
        blockers.append(f"{describe(p95)}, more than the {MAX_P95_LATENCY_GROWTH:.0%} allowed")
    blockers += [f"input removed: {name}" for name in removed]
    if not improved:
        blockers.append("no higher-is-better metric improved")

    if not blockers:
        reasons = [describe(row) for row in improved]
        if p95 is not None and p95.change is not None:
            reasons.append(f"{describe(p95)}, within the {MAX_P95_LATENCY_GROWTH:.0%} allowed")
        return Recommendation(PROMOTE_B, tuple(reasons))

    primary = next(
        (row for name in PRIMARY_METRICS for row in metrics if row.name == name and row.better), None
    )
    if primary is not None and primary.better == "a":
        primary_reason = f"primary metric {describe(primary)}"
        others = [reason for reason in blockers if reason != describe(primary)]
        return Recommendation(KEEP_A, (primary_reason, *others))
    return Recommendation(REVIEW, tuple(blockers))


def describe(row: MetricChange) -> str:
    """Return a one-line change such as ``accuracy +1.6% (0.950 → 0.965)``."""
    if row.a is None or row.b is None or row.change is None:
        return f"{row.name} {_value(row.name, row.a)} → {_value(row.name, row.b)}"
    if row.percent is not None:
        amount = f"{row.percent:+.1f}%"
    else:
        amount = f"{row.change:+g}"
    return f"{row.name} {amount} ({_value(row.name, row.a)} → {_value(row.name, row.b)})"


def _numbers(version: ModelVersion) -> dict[str, float]:
    """Collect the version's numeric metrics, plus the artifact size that the registry records."""
    values = {
        key: float(value)
        for key, value in version.metadata.items()
        if isinstance(value, (int, float)) and not isinstance(value, bool)
    }
    values["artifact_size"] = float(version.artifact.size)
    return values


def _rows(
    names: Sequence[str], direction: str, a_values: Mapping[str, float], b_values: Mapping[str, float]
) -> tuple[MetricChange, ...]:
    return tuple(
        _row(name, direction, a_values.get(name), b_values.get(name))
        for name in names
        if name in a_values or name in b_values
    )


def _row(name: str, direction: str, a: float | None, b: float | None) -> MetricChange:
    if a is None or b is None:
        return MetricChange(name, a, b, None, None, None, direction)

    change = b - a
    percent = change / a * 100 if a != 0 else None
    if change == 0:
        better = "same"
    elif (change > 0) == (direction == "higher"):
        better = "b"
    else:
        better = "a"
    return MetricChange(name, a, b, change, percent, better, direction)


def _grew_beyond(row: MetricChange, limit: float) -> bool:
    """Tell whether b exceeds a by more than ``limit``, a fraction of a; any growth from 0 counts."""
    if row.a is None or row.b is None:
        return False
    if row.a == 0:
        return row.b > 0
    return (row.b - row.a) / row.a > limit


def _value(name: str, value: float | None) -> str:
    if value is None:
        return "-"
    if name in FRACTION_METRICS:
        return f"{value:.3f}"
    return f"{value:g}"


def _cells(row: MetricChange) -> list[str]:
    change = "-" if row.change is None else f"{row.change:+.4g}"
    percent = "-" if row.percent is None else f"{row.percent:+.1f}%"
    return [row.name, _value(row.name, row.a), _value(row.name, row.b), change, percent, row.better or "-"]


_HEADERS = ["metric", "a", "b", "change", "%", "better"]


def _markdown_table(rows: Sequence[MetricChange]) -> list[str]:
    if not rows:
        return ["No values recorded for either version."]
    lines = ["| " + " | ".join(_HEADERS) + " |", "|" + " --- |" * len(_HEADERS)]
    lines += ["| " + " | ".join(_cells(row)) + " |" for row in rows]
    return lines


def _text_table(rows: Sequence[MetricChange]) -> list[str]:
    table = [_HEADERS, *(_cells(row) for row in rows)]
    widths = [max(len(line[column]) for line in table) for column in range(len(_HEADERS))]
    # Metric names align left and numbers right.
    return [
        "  ".join(
            cell.ljust(width) if column == 0 else cell.rjust(width)
            for column, (cell, width) in enumerate(zip(line, widths))
        ).rstrip()
        for line in table
    ]
