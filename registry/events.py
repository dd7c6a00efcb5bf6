"""The domain events of the registry, as immutable pydantic models.

Each event is a past-tense fact. Once an event class has been stored, it is
never edited in place: a changed shape gets a new ``class_version`` and an
``upcast_vN_vM`` static method that rewrites the old stored state.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from eventsourcing.utils import get_topic
from pydantic import BaseModel, ConfigDict, Field

from registry.errors import EventLogBroken
from registry.integrity import HASH_FIELD, content_hash
from registry.records import ApprovalPolicy, ArtifactRef, Environment, Signature

if TYPE_CHECKING:
    from registry.aggregate import EventSourcedAggregate


class DomainEvent(BaseModel):
    """Fields every event carries: position, times, actor, increment and hashes.

    ``timestamp`` is when the event was recorded; ``effective_at`` is when it
    took effect, which differs for imported history and backfills.
    ``previous_hash`` and ``event_hash`` chain the events of one stream
    (see ``registry.integrity``). Events stored before the chain existed have
    neither, and ``registry verify`` reports them.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    class_version: ClassVar[int] = 1

    originator_id: uuid.UUID
    originator_version: int
    timestamp: dt.datetime
    effective_at: dt.datetime
    actor: str
    increment: str | None = None
    previous_hash: str | None = None
    event_hash: str | None = None

    def stored_state(self) -> dict[str, Any]:
        """Return the fields that are stored for this event, as JSON values."""
        state = self.model_dump(mode="json", exclude={"originator_id", "originator_version"})
        if self.class_version > 1:
            state["class_version"] = self.class_version
        return state

    def named_versions(self) -> set[str]:
        """Return the model versions this event names; model event handlers change only those."""
        # The fields are read from the instance dict: pydantic's lookup of a field that an event
        # class does not have raises and catches an AttributeError, which a rebuild would pay
        # twice per event.
        fields = self.__dict__
        named = (fields.get("version"), fields.get("from_version"), fields.get("to_version"))
        return {value for value in named if isinstance(value, str)}

    def sealed(self) -> DomainEvent:
        """Return a copy of this event that carries the hash of its content."""
        digest = content_hash(get_topic(type(self)), self.originator_id, self.originator_version, self.stored_state())
        return self.model_copy(update={HASH_FIELD: digest})

    def mutate(self, aggregate: Any) -> Any:
        """Apply this event to ``aggregate`` and return the result."""
        # An event belongs to exactly one aggregate and must follow its last event.
        # Only a damaged event store breaks this, as when an event row was deleted.
        expected = 1 if aggregate is None else aggregate.version + 1
        if self.originator_version != expected:
            raise EventLogBroken(self.originator_id, expected, self.originator_version)
        assert aggregate is None or aggregate.id == self.originator_id
        aggregate = self.apply(aggregate)
        aggregate.version = self.originator_version
        aggregate.modified_on = self.timestamp
        aggregate.last_effective_at = self.effective_at
        aggregate.last_hash = self.event_hash
        return aggregate

    def apply(self, aggregate: Any) -> EventSourcedAggregate:
        raise NotImplementedError


# --- model events ---------------------------------------------------------------


class ModelCreated(DomainEvent):
    name: str

    def apply(self, aggregate: Any) -> EventSourcedAggregate:
        from registry.aggregate import ModelAggregate

        return ModelAggregate.from_created(self)


class Registered(DomainEvent):
    version: str
    stage: str
    metadata: dict[str, Any] = Field(default_factory=dict)
    tags: list[str] = Field(default_factory=list)
    signature: Signature
    artifact: ArtifactRef
    environment: Environment
    version_bump: str | None = None
    bump_reasons: list[str] = Field(default_factory=list)

    def apply(self, aggregate: Any) -> EventSourcedAggregate:
        return aggregate.on_registered(self)  # type: ignore[no-any-return]


class Promoted(DomainEvent):
    version: str
    from_stage: str
    to_stage: str
    reason: str | None = None
    approved_by: list[str] = Field(default_factory=list)

    def apply(self, aggregate: Any) -> EventSourcedAggregate:
        return aggregate.on_promoted(self)  # type: ignore[no-any-return]


class Approved(DomainEvent):
    version: str
    stage: str
    approver: str
    comments: str | None = None

    def apply(self, aggregate: Any) -> EventSourcedAggregate:
        return aggregate.on_decision(self, "approved", self.comments)  # type: ignore[no-any-return]


class Rejected(DomainEvent):
    version: str
    stage: str
    approver: str
    reason: str

    def apply(self, aggregate: Any) -> EventSourcedAggregate:
        return aggregate.on_decision(self, "rejected", self.reason)  # type: ignore[no-any-return]


class RolledBack(DomainEvent):
    from_version: str | None
    to_version: str
    reason: str
    automatic: bool = False
    evidence: dict[str, Any] = Field(default_factory=dict)

    def apply(self, aggregate: Any) -> EventSourcedAggregate:
        return aggregate.on_rolled_back(self)  # type: ignore[no-any-return]


class Deprecated(DomainEvent):
    version: str
    reason: str
    end_of_life: dt.datetime | None = None

    def apply(self, aggregate: Any) -> EventSourcedAggregate:
        return aggregate.on_deprecated(self)  # type: ignore[no-any-return]


class SignatureSet(DomainEvent):
    version: str
    signature: Signature

    def apply(self, aggregate: Any) -> EventSourcedAggregate:
        return aggregate.on_signature_set(self)  # type: ignore[no-any-return]


# --- registry settings events ---------------------------------------------------


class SettingsCreated(DomainEvent):
    def apply(self, aggregate: Any) -> EventSourcedAggregate:
        from registry.aggregate import RegistrySettings

        return RegistrySettings.from_created(self)


class ApprovalPolicySet(DomainEvent):
    policy: ApprovalPolicy

    def apply(self, aggregate: Any) -> EventSourcedAggregate:
        return aggregate.on_policy_set(self)  # type: ignore[no-any-return]


class TransitionsDeclared(DomainEvent):
    transitions: list[tuple[str, str]]

    def apply(self, aggregate: Any) -> EventSourcedAggregate:
        return aggregate.on_transitions_declared(self)  # type: ignore[no-any-return]


# --- experiment events ----------------------------------------------------------


class ExperimentStarted(DomainEvent):
    experiment: str
    parameters: dict[str, Any] = Field(default_factory=dict)

    def apply(self, aggregate: Any) -> EventSourcedAggregate:
        from registry.aggregate import ExperimentAggregate

        return ExperimentAggregate.from_started(self)


class ExperimentParametersLogged(DomainEvent):
    parameters: dict[str, Any]

    def apply(self, aggregate: Any) -> EventSourcedAggregate:
        return aggregate.on_parameters_logged(self)  # type: ignore[no-any-return]


class ExperimentMetricsLogged(DomainEvent):
    metrics: dict[str, float]

    def apply(self, aggregate: Any) -> EventSourcedAggregate:
        return aggregate.on_metrics_logged(self)  # type: ignore[no-any-return]


class ExperimentVersionRegistered(DomainEvent):
    model: str
    version: str

    def apply(self, aggregate: Any) -> EventSourcedAggregate:
        return aggregate.on_version_registered(self)  # type: ignore[no-any-return]


class ExperimentEnded(DomainEvent):
    status: Literal["completed", "failed"]
    error: str | None = None

    def apply(self, aggregate: Any) -> EventSourcedAggregate:
        return aggregate.on_ended(self)  # type: ignore[no-any-return]


MODEL_EVENTS: tuple[type[DomainEvent], ...] = (
    ModelCreated,
    Registered,
    Promoted,
    Approved,
    Rejected,
    RolledBack,
    Deprecated,
    SignatureSet,
)
