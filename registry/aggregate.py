"""Aggregates: one per model name, and one for the registry-wide settings.

A command method checks its rules against the current state and then triggers
events. The events' ``apply`` hooks are the only code that changes state, so a
replay of the stored events rebuilds exactly the state the commands left.
"""

from __future__ import annotations

import bisect
import copy
import datetime as dt
import math
import numbers
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import orjson
from eventsourcing.utils import get_topic
from pydantic import BaseModel, ConfigDict, Field

from registry import errors
from registry.events import (
    ApprovalPolicySet,
    Approved,
    Deprecated,
    DomainEvent,
    ExperimentEnded,
    ExperimentMetricsLogged,
    ExperimentParametersLogged,
    ExperimentStarted,
    ExperimentVersionRegistered,
    ModelCreated,
    Promoted,
    Registered,
    Rejected,
    RolledBack,
    SettingsCreated,
    SignatureSet,
    TransitionsDeclared,
)
from registry.records import (
    ApprovalPolicy,
    ArtifactRef,
    Decision,
    Deprecation,
    Environment,
    Signature,
    VersionState,
)
from registry.signatures import breaking_changes
from registry.versioning import parse_version, sort_key

REGISTRABLE_STAGES = ("dev", "staging")

# "*" as the source stage means "from any stage".
DEFAULT_TRANSITIONS: tuple[tuple[str, str], ...] = (
    ("dev", "staging"),
    ("staging", "production"),
    ("production", "archived"),
    ("*", "archived"),
)

SETTINGS_ID = uuid.UUID("0d9e4a43-7c55-4f0b-8f5e-3b2a5f1d6c01")


@dataclass(frozen=True)
class Context:
    """The actor, increment and times of one command."""

    actor: str
    increment: str | None
    recorded_at: dt.datetime
    effective_at: dt.datetime
    # True when the caller gave the effective time, as for imported history and backfills.
    backfilled: bool = False


class EventSourcedAggregate:
    """Identity, version and pending events, shared by the registry's aggregates."""

    def __init__(self, id: uuid.UUID, created_on: dt.datetime) -> None:
        self.id = id
        self.version = 0
        self.created_on = created_on
        self.modified_on = created_on
        self.last_effective_at = created_on
        # The event_hash of the last event, which the next event chains to.
        self.last_hash: str | None = None
        self._pending: list[DomainEvent] = []

    def collect_events(self) -> list[DomainEvent]:
        """Return and forget the events triggered since the last save."""
        pending, self._pending = self._pending, []
        return pending

    @staticmethod
    def start_stream(
        context: Context, id: uuid.UUID, event_class: type[DomainEvent], **fields: Any
    ) -> Any:
        """Create the first event of a new aggregate, apply it, and return the aggregate it made."""
        event = event_class(
            originator_id=id,
            originator_version=1,
            timestamp=context.recorded_at,
            effective_at=context.effective_at,
            actor=context.actor,
            increment=context.increment,
            **fields,
        ).sealed()
        aggregate = event.mutate(None)
        aggregate._pending.append(event)
        return aggregate

    def trigger(self, context: Context, event_class: type[DomainEvent], **fields: Any) -> None:
        """Create the next event of this aggregate, apply it, and keep it for saving."""
        effective_at = context.effective_at
        if self.version and effective_at < self.last_effective_at and not context.backfilled:
            # Another machine's clock may run slightly ahead of this one. A live
            # command then takes effect at the last event's time, so that the
            # effective times of one aggregate never decrease.
            effective_at = self.last_effective_at
        if self.version and effective_at < self.last_effective_at:
            raise errors.InvalidDate(
                f"effective time {context.effective_at.isoformat()} is earlier than the last event "
                f"of this aggregate ({self.last_effective_at.isoformat()}); "
                "backfilled events must be appended in time order",
                value=context.effective_at,
            )
        event = event_class(
            originator_id=self.id,
            originator_version=self.version + 1,
            timestamp=context.recorded_at,
            effective_at=effective_at,
            actor=context.actor,
            increment=context.increment,
            previous_hash=self.last_hash,
            **fields,
        ).sealed()
        event.mutate(self)
        self._pending.append(event)


# --- the model aggregate --------------------------------------------------------


class ModelAggregate(EventSourcedAggregate):
    """All versions of one model, with their stages, approvals and deprecations."""

    def __init__(self, id: uuid.UUID, name: str, created_on: dt.datetime) -> None:
        super().__init__(id, created_on)
        self.name = name
        self.versions: dict[str, VersionState] = {}
        self.production: str | None = None
        # The version numbers from lowest to highest, or None until they are next needed.
        self._ordered: list[str] | None = []
        # Each change of the production pointer, as (effective time, position, version or None),
        # and the positions of the events that changed each version. Point-in-time queries
        # use them to replay only the events of the version they return.
        self.production_changes: list[tuple[dt.datetime, int, str | None]] = []
        self.event_positions: dict[str, list[int]] = {}
        # False for an aggregate restored from a snapshot stored before these two existed.
        self.indexed = True

    def __deepcopy__(self, memo: dict[int, Any]) -> ModelAggregate:
        """Return a copy that shares the version states, which are copied on write.

        The event store's cache hands each command a copy of the cached
        aggregate. Event handlers replace a version's state before changing it
        (``_writable``), so the copy costs time in proportion to the number of
        versions, without copying any of them.
        """
        duplicate = copy.copy(self)
        duplicate.versions = dict(self.versions)
        duplicate._ordered = None if self._ordered is None else list(self._ordered)
        duplicate.production_changes = list(self.production_changes)
        # The position lists are replaced, never appended to, so the dict's copy can share them.
        duplicate.event_positions = dict(self.event_positions)
        duplicate._pending = list(self._pending)
        return duplicate

    def _writable(self, version: str, event: DomainEvent) -> VersionState:
        """Return this aggregate's own copy of a version's state, for ``event``'s handler to change.

        Handlers assign new values to a state's fields and change only one
        container in place, ``decisions``, so the copy copies that one and shares the rest.
        """
        shared = self.versions[version]
        decisions = {stage: dict(by_approver) for stage, by_approver in shared.decisions.items()}
        state = shared.model_copy(update={"decisions": decisions})
        self.versions[version] = state
        self._note_position(version, event)
        return state

    def _note_position(self, version: str, event: DomainEvent) -> None:
        self.event_positions[version] = [*self.event_positions.get(version, ()), event.originator_version]

    def _note_production(self, event: DomainEvent) -> None:
        self.production_changes.append((event.effective_at, event.originator_version, self.production))

    def production_at(self, when: dt.datetime) -> str | None:
        """Return the version in production at effective time ``when``, or None.

        Effective times never decrease along a model's events, so the changes
        are in time order and a binary search finds the last one at or before ``when``.
        """
        index = bisect.bisect_right(self.production_changes, when, key=lambda change: change[0])
        return self.production_changes[index - 1][2] if index else None

    @classmethod
    def create(cls, context: Context, id: uuid.UUID, name: str) -> ModelAggregate:
        """Start the event stream of a new model."""
        return cls.start_stream(context, id, ModelCreated, name=name)

    @classmethod
    def from_created(cls, event: ModelCreated) -> ModelAggregate:
        return cls(event.originator_id, event.name, event.timestamp)

    # -- queries over the state --

    def ordered_versions(self) -> list[str]:
        """Return the version numbers from the lowest to the highest."""
        return list(self._order())

    def latest_version(self) -> str | None:
        ordered = self._order()
        return ordered[-1] if ordered else None

    def _order(self) -> list[str]:
        # The read models add versions to partial aggregates directly, which the length check notices.
        if self._ordered is None or len(self._ordered) != len(self.versions):
            self._ordered = sorted(self.versions, key=sort_key)
        return self._ordered

    def get_version(self, version: str) -> VersionState:
        try:
            return self.versions[version]
        except KeyError:
            raise errors.VersionNotFound(self.name, version, self.ordered_versions()) from None

    def holder_of(self, stage: str) -> list[VersionState]:
        """Return the versions currently in ``stage``, lowest first."""
        if stage == "production":
            # At most one version is in production, and the aggregate keeps a pointer to it.
            return [self.versions[self.production]] if self.production else []
        return [self.versions[v] for v in self.ordered_versions() if self.versions[v].stage == stage]

    # -- commands --

    def register(
        self,
        context: Context,
        *,
        version: str,
        stage: str,
        metadata: Mapping[str, Any],
        tags: Sequence[str],
        signature: Signature,
        artifact: ArtifactRef,
        environment: Environment,
        version_bump: str | None = None,
        bump_reasons: Sequence[str] = (),
    ) -> None:
        """Add a new version; existing versions are never overwritten."""
        if version in self.versions:
            raise errors.VersionAlreadyExists(self.name, version, self.latest_version() or version)
        if stage not in REGISTRABLE_STAGES:
            raise errors.InvalidStage(
                f"cannot register {self.name} {version} directly in stage {stage!r}: "
                f"register in {' or '.join(REGISTRABLE_STAGES)}, then call promote_model()",
                value=stage,
            )
        self._check_signature_against_production(version, signature)

        self.trigger(
            context,
            Registered,
            version=version,
            stage=stage,
            metadata=dict(metadata),
            tags=list(tags),
            signature=signature,
            artifact=artifact,
            environment=environment,
            version_bump=version_bump,
            bump_reasons=list(bump_reasons),
        )

    def set_signature(self, context: Context, *, version: str, signature: Signature) -> None:
        """Record a version's input and output schema."""
        self.get_version(version)
        self.trigger(context, SignatureSet, version=version, signature=signature)

    def promote(
        self,
        context: Context,
        *,
        version: str,
        from_stage: str,
        to_stage: str,
        transitions: Iterable[tuple[str, str]],
        policy: ApprovalPolicy | None,
        reason: str | None = None,
    ) -> None:
        """Move a version to another stage, archiving the production version it replaces."""
        state = self.get_version(version)
        if state.stage != from_stage:
            raise errors.StageConflict(self.name, version, from_stage, state.stage)
        if state.deprecation is not None and to_stage != "archived":
            raise errors.VersionDeprecated(self.name, version, state.deprecation.reason)
        self._check_transition(from_stage, to_stage, transitions)
        approved_by = self._check_approvals(state, to_stage, policy)

        if to_stage == "production" and self.production is not None:
            self.trigger(
                context,
                Promoted,
                version=self.production,
                from_stage="production",
                to_stage="archived",
                reason=f"replaced in production by {version}",
            )
        self.trigger(
            context,
            Promoted,
            version=version,
            from_stage=from_stage,
            to_stage=to_stage,
            reason=reason,
            approved_by=approved_by,
        )

    def decide(
        self,
        context: Context,
        *,
        version: str,
        stage: str,
        approver: str,
        approve: bool,
        text: str | None,
        policy: ApprovalPolicy | None,
    ) -> None:
        """Record an approval or a rejection of a version's promotion to ``stage``."""
        state = self.get_version(version)
        if policy is None:
            raise errors.NoApprovalPolicy(stage)
        if approver not in policy.approvers:
            raise errors.ApproverNotAllowed(approver, stage, policy.approvers)
        if approver == state.registered_by:
            raise errors.SelfApprovalNotAllowed(approver, self.name, version)
        decision = "approved" if approve else "rejected"
        previous = state.decisions.get(stage, {}).get(approver)
        if previous is not None and previous.decision == decision:
            raise errors.DuplicateDecision(approver, self.name, version, decision)

        if approve:
            self.trigger(
                context, Approved, version=version, stage=stage, approver=approver, comments=text
            )
        else:
            self.trigger(
                context, Rejected, version=version, stage=stage, approver=approver, reason=text or ""
            )

    def rollback(
        self,
        context: Context,
        *,
        to_version: str,
        reason: str,
        now: dt.datetime,
        automatic: bool = False,
        evidence: Mapping[str, Any] | None = None,
    ) -> None:
        """Make an earlier production version production again."""
        state = self.get_version(to_version)
        if self.production == to_version:
            raise errors.RollbackNotAllowed(self.name, to_version, "it is already in production")
        if not state.ever_in_production:
            raise errors.RollbackNotAllowed(
                self.name,
                to_version,
                "it has never been in production; promote_model() is the way to deploy it",
            )
        if _past_end_of_life(state, now):
            assert state.deprecation is not None and state.deprecation.end_of_life is not None
            raise errors.RollbackNotAllowed(
                self.name,
                to_version,
                f"it reached its end of life on {state.deprecation.end_of_life.isoformat(timespec='seconds')}",
            )

        self.trigger(
            context,
            RolledBack,
            from_version=self.production,
            to_version=to_version,
            reason=reason,
            automatic=automatic,
            evidence=dict(evidence or {}),
        )

    def deprecate(
        self, context: Context, *, version: str, reason: str, end_of_life: dt.datetime | None
    ) -> None:
        """Mark a version as deprecated, optionally with an end of life."""
        self.get_version(version)
        self.trigger(context, Deprecated, version=version, reason=reason, end_of_life=end_of_life)

    def archive_expired(self, context: Context, *, now: dt.datetime) -> list[str]:
        """Archive every version past its end of life and return their numbers."""
        expired = [
            state.version
            for state in self.versions.values()
            if state.stage != "archived" and _past_end_of_life(state, now)
        ]
        for version in sorted(expired, key=sort_key):
            state = self.versions[version]
            assert state.deprecation is not None and state.deprecation.end_of_life is not None
            self.trigger(
                context,
                Promoted,
                version=version,
                from_stage=state.stage,
                to_stage="archived",
                reason=f"end of life reached on {state.deprecation.end_of_life.isoformat(timespec='seconds')}",
            )
        return expired

    # -- rule helpers --

    def _check_transition(
        self, from_stage: str, to_stage: str, transitions: Iterable[tuple[str, str]]
    ) -> None:
        declared = list(transitions)
        allowed = {(src, dst) for src, dst in declared}
        if from_stage != to_stage and (
            (from_stage, to_stage) in allowed or ("*", to_stage) in allowed
        ):
            return
        targets = sorted({dst for src, dst in declared if src in (from_stage, "*") and dst != from_stage})
        raise errors.TransitionNotAllowed(from_stage, to_stage, targets)

    def _check_approvals(
        self, state: VersionState, to_stage: str, policy: ApprovalPolicy | None
    ) -> list[str]:
        if policy is None:
            return []
        decisions = state.decisions.get(to_stage, {})
        eligible = [a for a in policy.approvers if a != state.registered_by]
        approved_by = [a for a in eligible if a in decisions and decisions[a].decision == "approved"]
        rejected_by = [a for a in eligible if a in decisions and decisions[a].decision == "rejected"]
        if len(approved_by) >= policy.min_approvals and not rejected_by:
            return approved_by
        may_approve = [a for a in eligible if a not in approved_by]
        raise errors.ApprovalMissing(
            self.name,
            state.version,
            to_stage,
            policy.min_approvals,
            approved_by,
            may_approve,
            rejected_by,
        )

    def _check_signature_against_production(self, version: str, signature: Signature) -> None:
        if self.production is None:
            return
        current = self.versions[self.production]
        if parse_version(version).major > parse_version(current.version).major:
            return
        problems = breaking_changes(current.signature, signature)
        if problems:
            raise errors.SignatureMismatch(
                self.name, version, current.version, problems, no_inputs=not signature.inputs
            )

    # -- event handlers --

    def on_registered(self, event: Registered) -> ModelAggregate:
        if self._ordered is not None:
            if not self._ordered or sort_key(event.version) > sort_key(self._ordered[-1]):
                self._ordered.append(event.version)
            else:
                self._ordered = None
        self._note_position(event.version, event)
        self.versions[event.version] = VersionState(
            version=event.version,
            stage=event.stage,
            registered_by=event.actor,
            created_at=event.effective_at,
            updated_at=event.effective_at,
            increment=event.increment,
            metadata=dict(event.metadata),
            tags=list(event.tags),
            signature=event.signature,
            artifact=event.artifact,
            environment=event.environment,
            version_bump=event.version_bump,
            bump_reasons=list(event.bump_reasons),
        )
        return self

    def on_promoted(self, event: Promoted) -> ModelAggregate:
        state = self._writable(event.version, event)
        state.stage = event.to_stage
        state.updated_at = event.effective_at
        if event.from_stage == "production" and self.production == event.version:
            self.production = None
            self._note_production(event)
        if event.to_stage == "production":
            self.production = event.version
            state.ever_in_production = True
            state.deployed_at = event.effective_at
            self._note_production(event)
        return self

    def on_decision(self, event: Approved | Rejected, decision: str, text: str | None) -> ModelAggregate:
        state = self._writable(event.version, event)
        state.decisions.setdefault(event.stage, {})[event.approver] = Decision(
            decision=decision, comments=text, at=event.effective_at
        )
        state.updated_at = event.effective_at
        return self

    def on_rolled_back(self, event: RolledBack) -> ModelAggregate:
        # A partial aggregate, as point-in-time queries fold, may hold only the version restored.
        if event.from_version is not None and event.from_version in self.versions:
            replaced = self._writable(event.from_version, event)
            replaced.stage = "archived"
            replaced.updated_at = event.effective_at
        target = self._writable(event.to_version, event)
        target.stage = "production"
        target.updated_at = event.effective_at
        target.deployed_at = event.effective_at
        target.ever_in_production = True
        self.production = event.to_version
        self._note_production(event)
        return self

    def on_deprecated(self, event: Deprecated) -> ModelAggregate:
        state = self._writable(event.version, event)
        state.deprecation = Deprecation(
            reason=event.reason,
            end_of_life=event.end_of_life,
            deprecated_at=event.effective_at,
            actor=event.actor,
        )
        state.updated_at = event.effective_at
        return self

    def on_signature_set(self, event: SignatureSet) -> ModelAggregate:
        state = self._writable(event.version, event)
        state.signature = event.signature
        state.updated_at = event.effective_at
        return self


def _past_end_of_life(state: VersionState, now: dt.datetime) -> bool:
    deprecation = state.deprecation
    return bool(deprecation and deprecation.end_of_life and deprecation.end_of_life <= now)


# --- snapshots ------------------------------------------------------------------


class ModelState(BaseModel):
    """The whole state of a model aggregate, as stored in a snapshot."""

    model_config = ConfigDict(extra="forbid")

    name: str
    versions: dict[str, VersionState] = Field(default_factory=dict)
    production: str | None = None
    created_on: dt.datetime
    last_effective_at: dt.datetime
    last_hash: str | None = None
    production_changes: list[tuple[dt.datetime, int, str | None]] = Field(default_factory=list)
    event_positions: dict[str, list[int]] = Field(default_factory=dict)
    # Snapshots stored before the two fields above existed have this false.
    indexed: bool = False


class ModelSnapshot(BaseModel):
    """A stored copy of a model aggregate's state at one of its versions."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    originator_id: uuid.UUID
    originator_version: int
    timestamp: dt.datetime
    topic: str
    state: ModelState

    @classmethod
    def take(cls, aggregate: ModelAggregate) -> ModelSnapshot:
        """Return a snapshot of ``aggregate``, which shares its version states.

        The event store serialises a snapshot as soon as it is taken, and
        ``mutate`` is only called on snapshots decoded from storage, so neither
        copies the version states.
        """
        return cls(
            originator_id=aggregate.id,
            originator_version=aggregate.version,
            timestamp=aggregate.modified_on,
            topic=get_topic(type(aggregate)),
            state=ModelState(
                name=aggregate.name,
                versions=dict(aggregate.versions),
                production=aggregate.production,
                created_on=aggregate.created_on,
                last_effective_at=aggregate.last_effective_at,
                last_hash=aggregate.last_hash,
                production_changes=aggregate.production_changes,
                event_positions=aggregate.event_positions,
                indexed=aggregate.indexed,
            ),
        )

    def mutate(self, _: None) -> ModelAggregate:
        aggregate = ModelAggregate(self.originator_id, self.state.name, self.state.created_on)
        aggregate.versions = dict(self.state.versions)
        aggregate._ordered = None
        aggregate.production = self.state.production
        aggregate.version = self.originator_version
        aggregate.modified_on = self.timestamp
        aggregate.last_effective_at = self.state.last_effective_at
        aggregate.last_hash = self.state.last_hash
        aggregate.production_changes = self.state.production_changes
        aggregate.event_positions = self.state.event_positions
        aggregate.indexed = self.state.indexed
        return aggregate


ModelAggregate.Snapshot = ModelSnapshot  # type: ignore[attr-defined]


# --- the registry settings aggregate --------------------------------------------


class RegistrySettings(EventSourcedAggregate):
    """Registry-wide rules: approval policies per stage and the allowed transitions."""

    ID: ClassVar[uuid.UUID] = SETTINGS_ID

    def __init__(self, id: uuid.UUID, created_on: dt.datetime) -> None:
        super().__init__(id, created_on)
        self.policies: dict[str, ApprovalPolicy] = {}
        self.transitions: list[tuple[str, str]] = list(DEFAULT_TRANSITIONS)

    @classmethod
    def create(cls, context: Context) -> RegistrySettings:
        return cls.start_stream(context, SETTINGS_ID, SettingsCreated)

    @classmethod
    def from_created(cls, event: SettingsCreated) -> RegistrySettings:
        return cls(event.originator_id, event.timestamp)

    def set_policy(self, context: Context, policy: ApprovalPolicy) -> None:
        self.trigger(context, ApprovalPolicySet, policy=policy)

    def declare_transitions(self, context: Context, transitions: list[tuple[str, str]]) -> None:
        self.trigger(context, TransitionsDeclared, transitions=transitions)

    def on_policy_set(self, event: ApprovalPolicySet) -> RegistrySettings:
        self.policies[event.policy.stage] = event.policy
        return self

    def on_transitions_declared(self, event: TransitionsDeclared) -> RegistrySettings:
        self.transitions = [tuple(pair) for pair in event.transitions]  # type: ignore[misc]
        return self


# --- the experiment aggregate ---------------------------------------------------




class ExperimentAggregate(EventSourcedAggregate):
    """One run of an experiment: its parameters, metrics, registered versions and end.

    Each run gets a random (uuid4) id, so runs of the same experiment never
    share a stream. The ``ExperimentStarted`` events index the runs by experiment name.
    """

    def __init__(self, id: uuid.UUID, experiment: str, created_on: dt.datetime) -> None:
        super().__init__(id, created_on)
        self.experiment = experiment
        self.parameters: dict[str, Any] = {}
        self.metrics: dict[str, float] = {}
        self.versions: list[tuple[str, str]] = []
        self.status = "running"
        self.error: str | None = None
        self.started_by = ""
        self.increment: str | None = None
        self.started_at = created_on
        self.ended_at: dt.datetime | None = None

    @classmethod
    def start(
        cls, context: Context, id: uuid.UUID, experiment: str, parameters: Mapping[str, Any]
    ) -> ExperimentAggregate:
        """Start the event stream of a new run."""
        return cls.start_stream(
            context, id, ExperimentStarted, experiment=experiment, parameters=check_parameters(parameters)
        )

    @classmethod
    def from_started(cls, event: ExperimentStarted) -> ExperimentAggregate:
        aggregate = cls(event.originator_id, event.experiment, event.timestamp)
        aggregate.parameters = dict(event.parameters)
        aggregate.started_by = event.actor
        aggregate.increment = event.increment
        aggregate.started_at = event.effective_at
        return aggregate

    def log_parameters(self, context: Context, parameters: Mapping[str, Any]) -> None:
        self._check_running()
        self.trigger(context, ExperimentParametersLogged, parameters=check_parameters(parameters))

    def log_metrics(self, context: Context, metrics: Mapping[str, Any]) -> None:
        self._check_running()
        self.trigger(context, ExperimentMetricsLogged, metrics=check_metrics(metrics))

    def record_version(self, context: Context, *, model: str, version: str) -> None:
        self._check_running()
        self.trigger(context, ExperimentVersionRegistered, model=model, version=version)

    def end(self, context: Context, *, error: str | None = None) -> None:
        """End the run: completed without ``error``, failed with it."""
        self._check_running()
        status = "completed" if error is None else "failed"
        self.trigger(context, ExperimentEnded, status=status, error=error)

    def _check_running(self) -> None:
        if self.status != "running":
            raise errors.ExperimentAlreadyEnded(self.experiment, self.id, self.status)

    # -- event handlers --

    def on_parameters_logged(self, event: ExperimentParametersLogged) -> ExperimentAggregate:
        self.parameters.update(event.parameters)
        return self

    def on_metrics_logged(self, event: ExperimentMetricsLogged) -> ExperimentAggregate:
        # A metric logged again replaces its earlier value.
        self.metrics.update(event.metrics)
        return self

    def on_version_registered(self, event: ExperimentVersionRegistered) -> ExperimentAggregate:
        self.versions.append((event.model, event.version))
        return self

    def on_ended(self, event: ExperimentEnded) -> ExperimentAggregate:
        self.status = event.status
        self.error = event.error
        self.ended_at = event.effective_at
        return self


def check_parameters(parameters: object) -> dict[str, Any]:
    """Return a copy of ``parameters`` as the JSON values the event store keeps."""
    if not isinstance(parameters, Mapping):
        raise errors.InvalidInput(
            f"invalid parameters {parameters!r}: expected a dict such as {{'max_depth': 3}}",
            value=parameters,
        )
    for key in parameters:
        if not isinstance(key, str) or not key:
            raise errors.InvalidInput(
                f"invalid parameter name {key!r}: expected a non-empty string", value=key
            )
    try:
        return orjson.loads(orjson.dumps(dict(parameters), option=orjson.OPT_SERIALIZE_NUMPY))  # type: ignore[no-any-return]
    except orjson.JSONEncodeError as error:
        raise errors.InvalidInput(
            f"invalid parameters: {error}; expected JSON values (text, numbers, booleans, None, lists and dicts)",
            value=parameters,
        ) from None


def check_metrics(metrics: object) -> dict[str, float]:
    """Return ``metrics`` as floats, rejecting names that are not strings and values that are not finite numbers."""
    if not isinstance(metrics, Mapping):
        raise errors.InvalidInput(
            f"invalid metrics {metrics!r}: expected a dict such as {{'accuracy': 0.95}}", value=metrics
        )
    checked: dict[str, float] = {}
    for key, value in metrics.items():
        if not isinstance(key, str) or not key:
            raise errors.InvalidInput(f"invalid metric name {key!r}: expected a non-empty string", value=key)
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
            raise errors.InvalidInput(
                f"invalid metric {key!r} = {value!r}: expected a finite number, not NaN or infinity",
                value=value,
            )
        checked[key] = float(value)
    return checked
