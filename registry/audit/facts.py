"""The facts of an audit report: plain frozen dataclasses that the renderings only read."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from pathlib import Path
from typing import Any, Literal

import orjson

from registry.events import DomainEvent
from registry.metadata import FRACTION_METRICS

Status = Literal["passed", "failed", "not applicable"]
PASSED: Status = "passed"
FAILED: Status = "failed"
NOT_APPLICABLE: Status = "not applicable"

# The stream name that ``registry verify`` gives the registry settings, used in their event ids.
SETTINGS_STREAM = "registry settings"

# How many characters of an event hash the Markdown and HTML renderings show.
SHORT_HASH_LENGTH = 12

# The metrics that "performance over time" shows: quality fractions, then latencies in milliseconds.
PERFORMANCE_METRICS = (*FRACTION_METRICS, "inference_latency_p50", "inference_latency_p95")


class Fact:
    """Base of the report's facts: ``to_dict()`` returns the fields as JSON values."""

    def to_dict(self) -> dict[str, Any]:
        return as_json(self)  # type: ignore[no-any-return]


@dataclasses.dataclass(frozen=True)
class EventRef(Fact):
    """One stored event, named the way ``registry history`` and ``registry verify`` name it."""

    event_id: str
    """``STREAM#POSITION``: the model name, or ``registry settings``, and the position."""
    event: str
    """The event type, such as ``Promoted``."""
    event_hash: str | None

    @property
    def short_hash(self) -> str | None:
        return self.event_hash[:SHORT_HASH_LENGTH] if self.event_hash else None


@dataclasses.dataclass(frozen=True)
class EventRow(Fact):
    """One event of the model in the window, for the report's event log."""

    ref: EventRef
    effective_at: dt.datetime
    recorded_at: dt.datetime
    actor: str
    version: str | None
    from_stage: str | None
    to_stage: str | None
    text: str | None
    """The reason or comments the event carries."""

    @property
    def backfilled(self) -> bool:
        return self.recorded_at != self.effective_at


@dataclasses.dataclass(frozen=True)
class Deployment(Fact):
    """A version made production, by a promotion or by a rollback."""

    version: str
    kind: Literal["promotion", "rollback"]
    at: dt.datetime
    by: str
    replaced: str | None
    """The production version this one replaced, if any."""
    approved_by: list[str]
    """The approvers the registry counted when it allowed the promotion, or none for a rollback."""
    reason: str | None
    event: EventRef


@dataclasses.dataclass(frozen=True)
class DecisionFact(Fact):
    """An approval or a rejection of a version's promotion to a stage."""

    version: str
    stage: str
    approver: str
    decision: Literal["approved", "rejected"]
    at: dt.datetime
    text: str | None
    """The approval's comments or the rejection's reason."""
    event: EventRef


@dataclasses.dataclass(frozen=True)
class RollbackFact(Fact):
    """A rollback of production to an earlier version."""

    from_version: str | None
    to_version: str
    at: dt.datetime
    by: str
    reason: str
    automatic: bool
    evidence: dict[str, Any]
    event: EventRef


@dataclasses.dataclass(frozen=True)
class DeprecationFact(Fact):
    """A deprecation of a version, with its reason and end of life."""

    version: str
    at: dt.datetime
    by: str
    reason: str
    end_of_life: dt.datetime | None
    event: EventRef


@dataclasses.dataclass(frozen=True)
class MetricPoint(Fact):
    """The metrics of the production version from one moment of the window on."""

    at: dt.datetime
    version: str
    label: str
    """``in production at start``, ``promoted`` or ``rolled back to``."""
    metrics: dict[str, float]


@dataclasses.dataclass(frozen=True)
class VersionFact(Fact):
    """A version that was in production at the window's start or had an event in the window."""

    version: str
    registered_at: dt.datetime
    registered_by: str
    stage_at_end: str
    """The version's stage at the window's end."""
    metrics: dict[str, float]
    """The metrics and deployment figures of its registered metadata."""
    data_sources: list[str]
    feature_sets: list[str]
    experiments: list[str]
    inputs: int
    """The number of inputs in its signature at the window's end."""
    event: EventRef
    """Its Registered event."""


@dataclasses.dataclass(frozen=True)
class PolicyFact(Fact):
    """An approval policy of a stage, as one ApprovalPolicySet event set it."""

    stage: str
    approvers: list[str]
    min_approvals: int
    set_at: dt.datetime
    set_by: str
    event: EventRef

    def describe(self) -> str:
        return f"{self.min_approvals} of {', '.join(self.approvers)}"


@dataclasses.dataclass(frozen=True)
class TransitionsFact(Fact):
    """A declaration of the allowed stage transitions."""

    transitions: list[tuple[str, str]]
    set_at: dt.datetime
    set_by: str
    event: EventRef


@dataclasses.dataclass(frozen=True)
class Finding(Fact):
    """One subject of a checkpoint, such as one deployment, with its outcome and evidence."""

    ok: bool
    text: str
    evidence: list[EventRef]


@dataclasses.dataclass(frozen=True)
class Checkpoint(Fact):
    """One compliance rule, its outcome over the window, and the findings behind it."""

    key: str
    title: str
    status: Status
    summary: str
    findings: list[Finding] = dataclasses.field(default_factory=list)

    @property
    def evidence(self) -> list[EventRef]:
        """The events behind every finding, each once, failed findings first."""
        ordered = [f for f in self.findings if not f.ok] + [f for f in self.findings if f.ok]
        seen: dict[str, EventRef] = {}
        for finding in ordered:
            for ref in finding.evidence:
                seen.setdefault(ref.event_id, ref)
        return list(seen.values())

    def to_dict(self) -> dict[str, Any]:
        return {**as_json(self), "evidence": as_json(self.evidence)}


@dataclasses.dataclass(frozen=True)
class IntegrityFact(Fact):
    """The outcome of verifying the whole event log and every artifact."""

    ok: bool
    summary: str
    events_checked: int
    problems: int
    problems_in_model: int
    """How many of the problems concern this model's own stream."""
    first_problem: EventRef | None
    first_problem_message: str | None
    checked_at: dt.datetime


@dataclasses.dataclass(frozen=True)
class AuditReport(Fact):
    """The compliance audit report of one model over a time window.

    Render it with ``to_markdown()``, ``to_html()`` or ``to_json()``, or
    write it to a file with ``write(path, format=...)``.
    """

    model: str
    start: dt.datetime
    end: dt.datetime
    generated_at: dt.datetime
    production_at_start: str | None
    deployments: list[Deployment]
    decisions: list[DecisionFact]
    rollbacks: list[RollbackFact]
    deprecations: list[DeprecationFact]
    performance: list[MetricPoint]
    versions: list[VersionFact]
    policies_at_start: list[PolicyFact]
    policy_changes: list[PolicyFact]
    transition_changes: list[TransitionsFact]
    checkpoints: list[Checkpoint]
    integrity: IntegrityFact
    events: list[EventRow]

    @property
    def has_activity(self) -> bool:
        """True when at least one event of the model took effect in the window."""
        return bool(self.events)

    @property
    def passed(self) -> bool:
        """True when no checkpoint failed."""
        return all(checkpoint.status != FAILED for checkpoint in self.checkpoints)

    def data_sources(self) -> dict[str, list[str]]:
        """Return each training data source with the versions in the report that used it."""
        sources: dict[str, list[str]] = {}
        for version in self.versions:
            for source in version.data_sources:
                sources.setdefault(source, []).append(version.version)
        return dict(sorted(sources.items()))

    def performance_metrics(self) -> list[str]:
        """Return the metric names that any point of ``performance`` has, quality metrics first."""
        present = {name for point in self.performance for name in point.metrics}
        return [name for name in PERFORMANCE_METRICS if name in present]

    def summary(self) -> str:
        """Return a few sentences on what happened in the window and how the checkpoints came out."""
        window = f"between {iso(self.start)} and {iso(self.end)}"
        if not self.has_activity:
            activity = f"No events of {self.model} took effect {window}."
        else:
            deployed = ", ".join(d.version for d in self.deployments) or "none"
            approvals = sum(1 for d in self.decisions if d.decision == "approved")
            rejections = len(self.decisions) - approvals
            activity = (
                f"{count(len(self.events), 'event')} of {self.model} took effect {window}: "
                f"{count(len(self.deployments), 'deployment')} ({deployed}), "
                f"{count(approvals, 'approval')}, {count(rejections, 'rejection')}, "
                f"{count(len(self.rollbacks), 'rollback')} and "
                f"{count(len(self.deprecations), 'deprecation')}."
            )
        production = (
            f" {self.production_at_start} was in production at the start of the window."
            if self.production_at_start
            else " No version was in production at the start of the window."
        )
        counts = {status: 0 for status in (PASSED, FAILED, NOT_APPLICABLE)}
        for checkpoint in self.checkpoints:
            counts[checkpoint.status] += 1
        outcome = (
            f" Checkpoints: {counts[PASSED]} passed, {counts[FAILED]} failed, "
            f"{counts[NOT_APPLICABLE]} not applicable."
        )
        return activity + production + outcome

    def to_dict(self) -> dict[str, Any]:
        """Return the report as JSON values, with times as ISO 8601 text with their UTC offset."""
        fields = as_json(self)
        policies = {
            key: fields.pop(key) for key in ("policies_at_start", "policy_changes", "transition_changes")
        }
        return {
            **fields,
            "passed": self.passed,
            "has_activity": self.has_activity,
            "summary": self.summary(),
            "data_sources": self.data_sources(),
            "checkpoints": [checkpoint.to_dict() for checkpoint in self.checkpoints],
            "approval_policy": {
                "at_start": policies["policies_at_start"],
                "changes": policies["policy_changes"],
                "transition_changes": policies["transition_changes"],
            },
        }

    def to_json(self) -> str:
        """Return the report as indented JSON text."""
        return orjson.dumps(self.to_dict(), option=orjson.OPT_INDENT_2).decode() + "\n"

    def to_markdown(self) -> str:
        """Return the report as a Markdown document."""
        from registry.audit import rendering

        return rendering.render_markdown(self)

    def to_html(self) -> str:
        """Return the report as one self-contained HTML page with an inline SVG chart of the metrics."""
        from registry.audit import rendering

        return rendering.render_html(self)

    def render(self, format: str) -> str:
        """Return the report in ``format``: ``md`` (or ``markdown``), ``html`` or ``json``."""
        from registry.audit import rendering

        return rendering.render(self, format)

    def write(self, path: str | os.PathLike[str], format: str | None = None) -> Path:
        """Write the report to ``path`` atomically and return the path.

        Without ``format``, the file's suffix chooses it (``.md``, ``.html``
        or ``.json``). Readers of ``path`` find the old file or the whole new
        one, never part of one.
        """
        from registry.audit import rendering

        return rendering.write(self, Path(path), format)


def as_json(value: Any) -> Any:
    """Return ``value`` as JSON values: facts become dicts, times ISO 8601 text, tuples lists."""
    if isinstance(value, EventRef):
        return {
            "event_id": value.event_id,
            "event": value.event,
            "event_hash": value.event_hash,
            "short_hash": value.short_hash,
        }
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {item.name: as_json(getattr(value, item.name)) for item in dataclasses.fields(value)}
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(key): as_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [as_json(item) for item in value]
    return value


def event_ref(stream: str, event: DomainEvent) -> EventRef:
    """Return the reference to ``event`` of ``stream``, a model name or ``registry settings``."""
    return EventRef(f"{stream}#{event.originator_version}", type(event).__name__, event.event_hash)


def iso(value: dt.datetime | None) -> str:
    """Return ``value`` as ISO 8601 text to the second, with its offset, or empty text for None."""
    return value.isoformat(timespec="seconds") if value is not None else ""


def count(number: int, noun: str) -> str:
    """Return ``number`` with ``noun``, adding an s unless the number is 1."""
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"
