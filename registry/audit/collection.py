"""Collecting an audit report: one replay of a model's events and of the registry settings' events.

An event belongs to the window when its effective time (the time it took
effect, which differs from the recorded time for backfills) lies between the
window's start and end, both included. The effective times of one model's
events never decrease, so the replay meets them in time order.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from registry import errors
from registry.aggregate import SETTINGS_ID
from registry.audit.checkpoints import (
    check_approvals,
    check_end_of_life,
    check_integrity,
    check_rollback_reasons,
    check_signatures,
    integrity_fact,
)
from registry.audit.facts import (
    FAILED,
    PERFORMANCE_METRICS,
    SETTINGS_STREAM,
    AuditReport,
    DecisionFact,
    Deployment,
    DeprecationFact,
    EventRef,
    EventRow,
    MetricPoint,
    PolicyFact,
    RollbackFact,
    TransitionsFact,
    VersionFact,
    event_ref,
    iso,
)
from registry.clock import to_utc
from registry.events import (
    ApprovalPolicySet,
    Approved,
    Deprecated,
    DomainEvent,
    Promoted,
    Registered,
    Rejected,
    RolledBack,
    SignatureSet,
    TransitionsDeclared,
)
from registry.metadata import metrics_of
from registry.records import ApprovalPolicy, Signature

if TYPE_CHECKING:
    from registry.api import ModelRegistry
    from registry.governance import VerificationResult

logger = logging.getLogger(__name__)


def build_audit_report(
    registry: ModelRegistry,
    model: str,
    start_date: dt.datetime | dt.date | str,
    end_date: dt.datetime | dt.date | str,
    *,
    verification: VerificationResult | None = None,
) -> AuditReport:
    """Collect the audit report of ``model`` for the window from ``start_date`` to ``end_date``.

    A naive datetime is UTC and a bare date means the end of that day in UTC,
    as everywhere in the registry. Without ``verification``, the whole event
    log and every artifact are verified first. Raises ``InvalidDate`` for an
    unreadable date or a window that ends before it starts, and
    ``ModelNotFound`` for an unknown model.
    """
    start = to_utc(start_date, argument="start_date")
    end = to_utc(end_date, argument="end_date")
    if end < start:
        raise errors.InvalidDate(
            f"invalid audit window: end_date {iso(end)} is before start_date {iso(start)}; "
            "pass an end_date at or after the start_date",
            value=(start_date, end_date),
        )
    events = registry.events(model)
    if verification is None:
        from registry.governance import ModelGovernance

        verification = ModelGovernance(registry=registry).verify()

    settings = Settings(list(registry._store.events.get(SETTINGS_ID)))  # type: ignore[arg-type]
    replay = Replay(model, start, end, settings)
    for event in events:
        replay.apply(event)
    replay.finish()

    generated_at = registry._now()
    versions = [_version_fact(registry, model, replay, version) for version in replay.versions_concerned()]
    checkpoints = [
        check_approvals(replay),
        check_signatures(replay),
        check_end_of_life(replay, min(end, generated_at)),
        check_rollback_reasons(replay),
        check_integrity(verification, model),
    ]
    report = AuditReport(
        model=model,
        start=start,
        end=end,
        generated_at=generated_at,
        production_at_start=replay.production_at_start,
        deployments=[d.fact for d in replay.deployments if d.in_window],
        decisions=replay.decisions,
        rollbacks=replay.rollbacks,
        deprecations=replay.deprecations,
        performance=_performance(replay),
        versions=versions,
        policies_at_start=settings.policies_at(start),
        policy_changes=settings.policy_changes(start, end),
        transition_changes=settings.transition_changes(start, end),
        checkpoints=checkpoints,
        integrity=integrity_fact(verification, model),
        events=replay.rows,
    )
    failed = [item.key for item in checkpoints if item.status == FAILED]
    logger.info(
        "audit report of %s from %s to %s: %d events, failed checkpoints: %s",
        model, iso(start), iso(end), len(replay.rows), ", ".join(failed) or "none",
    )  # fmt: skip
    return report


class Settings:
    """The approval policies and transition declarations of the registry settings, in effective order."""

    def __init__(self, events: Sequence[DomainEvent]) -> None:
        self.policies = [
            (event, PolicyFact(
                stage=event.policy.stage,
                approvers=list(event.policy.approvers),
                min_approvals=event.policy.min_approvals,
                set_at=event.effective_at,
                set_by=event.actor,
                event=event_ref(SETTINGS_STREAM, event),
            ))
            for event in events
            if isinstance(event, ApprovalPolicySet)
        ]  # fmt: skip
        self.transitions = [
            TransitionsFact(
                transitions=[(str(a), str(b)) for a, b in event.transitions],
                set_at=event.effective_at,
                set_by=event.actor,
                event=event_ref(SETTINGS_STREAM, event),
            )
            for event in events
            if isinstance(event, TransitionsDeclared)
        ]

    def policy_at(self, stage: str, when: dt.datetime) -> tuple[ApprovalPolicy, PolicyFact] | None:
        """Return the policy of ``stage`` in force at ``when``: the last one set at or before it."""
        found = None
        for event, fact in self.policies:
            if event.policy.stage == stage and event.effective_at <= when:
                found = (event.policy, fact)
        return found

    def policies_at(self, when: dt.datetime) -> list[PolicyFact]:
        stages = sorted({event.policy.stage for event, _ in self.policies})
        in_force = [self.policy_at(stage, when) for stage in stages]
        return [entry[1] for entry in in_force if entry is not None]

    def policy_changes(self, start: dt.datetime, end: dt.datetime) -> list[PolicyFact]:
        return [fact for _, fact in self.policies if start < fact.set_at <= end]

    def transition_changes(self, start: dt.datetime, end: dt.datetime) -> list[TransitionsFact]:
        return [fact for fact in self.transitions if start < fact.set_at <= end]


@dataclasses.dataclass
class VersionTrack:
    """The state of one version at the replay's current event."""

    registered: Registered
    stage: str
    signature: Signature
    signature_event: DomainEvent
    # The latest decision of each approver, by stage.
    decisions: dict[str, dict[str, Approved | Rejected]] = dataclasses.field(default_factory=dict)
    deprecation: Deprecated | None = None
    last_promotion: DeploymentTrack | None = None


@dataclasses.dataclass
class DeploymentTrack:
    """One deployment, at any time, with what the checkpoints need to judge it."""

    fact: Deployment
    event: Promoted | RolledBack
    in_window: bool
    registered_by: str
    decisions: dict[str, Approved | Rejected]
    """The latest production decision of each approver when the version was deployed."""
    signature: Signature
    signature_event: DomainEvent
    replaced_signature: tuple[str, Signature] | None
    restored: DeploymentTrack | None = None
    """For a rollback, the version's last promotion to production before it."""
    ended_by: DomainEvent | None = None
    """The event that took the version out of production, if any."""


class Replay:
    """Replays one model's events in order and keeps the facts that the report and checkpoints need."""

    def __init__(self, model: str, start: dt.datetime, end: dt.datetime, settings: Settings) -> None:
        self.model = model
        self.start = start
        self.end = end
        self.settings = settings
        self.tracks: dict[str, VersionTrack] = {}
        self.current: DeploymentTrack | None = None
        # The position, version and signature of the last version that left production by a promotion.
        self.left_production: tuple[int, str, Signature] | None = None
        self.deployments: list[DeploymentTrack] = []
        self.at_start: DeploymentTrack | None = None
        self.started = False
        # The stage and number of signature inputs of each version at the window's end.
        self.at_end: dict[str, tuple[str, int]] | None = None
        self.decisions: list[DecisionFact] = []
        self.rollbacks: list[RollbackFact] = []
        self.deprecations: list[DeprecationFact] = []
        self.rows: list[EventRow] = []
        self.touched: list[str] = []

    @property
    def production_at_start(self) -> str | None:
        return self.at_start.fact.version if self.at_start else None

    def versions_concerned(self) -> list[str]:
        """Return the version in production at the start, then every version with an event in the window."""
        concerned = [self.production_at_start] if self.production_at_start else []
        return list(dict.fromkeys(concerned + self.touched))

    def apply(self, event: DomainEvent) -> None:
        if not self.started and event.effective_at >= self.start:
            self._mark_start()
        if self.at_end is None and event.effective_at > self.end:
            self._mark_end()
        in_window = self.start <= event.effective_at <= self.end
        ref = event_ref(self.model, event)
        if in_window:
            self._add_row(event, ref)

        if isinstance(event, Registered):
            self.tracks[event.version] = VersionTrack(event, event.stage, event.signature, event)
        elif isinstance(event, SignatureSet):
            track = self.tracks[event.version]
            track.signature, track.signature_event = event.signature, event
        elif isinstance(event, (Approved, Rejected)):
            self._on_decision(event, ref, in_window)
        elif isinstance(event, Promoted):
            self._on_promoted(event, ref, in_window)
        elif isinstance(event, RolledBack):
            self._on_rolled_back(event, ref, in_window)
        elif isinstance(event, Deprecated):
            self.tracks[event.version].deprecation = event
            if in_window:
                self.deprecations.append(
                    DeprecationFact(
                        event.version, event.effective_at, event.actor, event.reason, event.end_of_life, ref
                    )
                )

    def finish(self) -> None:
        if not self.started:
            self._mark_start()
        if self.at_end is None:
            self._mark_end()

    def _mark_start(self) -> None:
        self.started = True
        self.at_start = self.current

    def _mark_end(self) -> None:
        self.at_end = {
            version: (track.stage, len(track.signature.inputs)) for version, track in self.tracks.items()
        }

    def _add_row(self, event: DomainEvent, ref: EventRef) -> None:
        version = getattr(event, "version", None) or getattr(event, "to_version", None)
        text = getattr(event, "reason", None) if not isinstance(event, Approved) else event.comments
        from_stage = getattr(event, "from_stage", None)
        to_stage = getattr(event, "to_stage", None)
        if isinstance(event, Registered):
            to_stage = event.stage
        elif isinstance(event, RolledBack):
            to_stage = "production"
        self.rows.append(
            EventRow(
                ref, event.effective_at, event.timestamp, event.actor, version, from_stage, to_stage, text
            )
        )
        if version is not None:
            self.touched.append(version)

    def _on_decision(self, event: Approved | Rejected, ref: EventRef, in_window: bool) -> None:
        self.tracks[event.version].decisions.setdefault(event.stage, {})[event.approver] = event
        if not in_window:
            return
        approved = isinstance(event, Approved)
        self.decisions.append(
            DecisionFact(
                version=event.version,
                stage=event.stage,
                approver=event.approver,
                decision="approved" if approved else "rejected",
                at=event.effective_at,
                text=event.comments if isinstance(event, Approved) else event.reason,
                event=ref,
            )
        )

    def _on_promoted(self, event: Promoted, ref: EventRef, in_window: bool) -> None:
        track = self.tracks[event.version]
        track.stage = event.to_stage
        if event.from_stage == "production" and self.current and self.current.fact.version == event.version:
            self.current.ended_by = event
            self.current = None
            self.left_production = (event.originator_version, event.version, track.signature)
        if event.to_stage != "production":
            return
        # A promotion to production first archives the version it replaces, in the event just before it.
        replaced = None
        if self.left_production is not None and self.left_production[0] == event.originator_version - 1:
            replaced = self.left_production[1:]
        deployment = Deployment(
            version=event.version,
            kind="promotion",
            at=event.effective_at,
            by=event.actor,
            replaced=replaced[0] if replaced else None,
            approved_by=list(event.approved_by),
            reason=event.reason,
            event=ref,
        )
        track.last_promotion = self._deploy(deployment, event, in_window, replaced)

    def _on_rolled_back(self, event: RolledBack, ref: EventRef, in_window: bool) -> None:
        replaced = None
        if event.from_version is not None:
            self.tracks[event.from_version].stage = "archived"
            replaced = (event.from_version, self.tracks[event.from_version].signature)
        if self.current is not None:
            self.current.ended_by = event
        self.tracks[event.to_version].stage = "production"
        deployment = Deployment(
            version=event.to_version,
            kind="rollback",
            at=event.effective_at,
            by=event.actor,
            replaced=event.from_version,
            approved_by=[],
            reason=event.reason,
            event=ref,
        )
        self._deploy(deployment, event, in_window, replaced)
        if in_window:
            self.rollbacks.append(
                RollbackFact(
                    from_version=event.from_version,
                    to_version=event.to_version,
                    at=event.effective_at,
                    by=event.actor,
                    reason=event.reason,
                    automatic=event.automatic,
                    evidence=dict(event.evidence),
                    event=ref,
                )
            )

    def _deploy(
        self,
        fact: Deployment,
        event: Promoted | RolledBack,
        in_window: bool,
        replaced: tuple[str, Signature] | None,
    ) -> DeploymentTrack:
        track = self.tracks[fact.version]
        deployment = DeploymentTrack(
            fact=fact,
            event=event,
            in_window=in_window,
            registered_by=track.registered.actor,
            decisions=dict(track.decisions.get("production", {})),
            signature=track.signature,
            signature_event=track.signature_event,
            replaced_signature=replaced,
            restored=track.last_promotion if fact.kind == "rollback" else None,
        )
        self.deployments.append(deployment)
        self.current = deployment
        return deployment


def _version_fact(registry: ModelRegistry, model: str, replay: Replay, version: str) -> VersionFact:
    track = replay.tracks[version]
    lineage = registry.get_lineage(model, version)
    stage, inputs = (replay.at_end or {}).get(version, (track.stage, len(track.signature.inputs)))
    return VersionFact(
        version=version,
        registered_at=track.registered.effective_at,
        registered_by=track.registered.actor,
        stage_at_end=stage,
        metrics=metrics_of(track.registered.metadata),
        data_sources=lineage.data_sources(),
        feature_sets=lineage.feature_sets(),
        experiments=lineage.experiments(),
        inputs=inputs,
        event=event_ref(model, track.registered),
    )


def _performance(replay: Replay) -> list[MetricPoint]:
    """Return the production version's metrics at the window's start and after each deployment in it."""
    points = []
    if replay.at_start is not None:
        version = replay.at_start.fact.version
        points.append(MetricPoint(replay.start, version, "in production at start", _metrics(replay, version)))
    for deployment in replay.deployments:
        if deployment.in_window:
            fact = deployment.fact
            label = "promoted" if fact.kind == "promotion" else "rolled back to"
            points.append(MetricPoint(fact.at, fact.version, label, _metrics(replay, fact.version)))
    return points


def _metrics(replay: Replay, version: str) -> dict[str, float]:
    registered = metrics_of(replay.tracks[version].registered.metadata)
    return {name: registered[name] for name in PERFORMANCE_METRICS if name in registered}
