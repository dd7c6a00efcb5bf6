"""Value objects stored inside events and aggregate state."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field


class Record(BaseModel):
    """Base of the stored value objects: unknown fields are errors, not silently dropped."""

    model_config = ConfigDict(extra="forbid")


class ArtifactRef(Record):
    """The location, digest, size and format of a version's serialised model."""

    uri: str
    sha256: str
    size: int = Field(ge=0)
    format: str
    loader: str | None = None


class Signature(Record):
    """A version's input and output schema: column name to type name."""

    inputs: dict[str, str] = Field(default_factory=dict)
    outputs: dict[str, str] = Field(default_factory=dict)


class Environment(Record):
    """The Python version and framework packages a version was registered with."""

    python_version: str
    requirements: dict[str, str] = Field(default_factory=dict)


class Decision(Record):
    """One approver's latest decision on a version for a stage."""

    decision: str  # "approved" or "rejected"
    comments: str | None = None
    at: dt.datetime


class Deprecation(Record):
    """The reason for a deprecation and the end of life after which the version is unusable."""

    reason: str
    end_of_life: dt.datetime | None = None
    deprecated_at: dt.datetime
    actor: str


class ApprovalPolicy(Record):
    """The approvers of promotions to a stage, and the number of approvals a promotion needs."""

    stage: str
    approvers: list[str]
    min_approvals: int = Field(ge=1)


class VersionState(Record):
    """The current state of one model version, as the model's events made it."""

    version: str
    stage: str
    registered_by: str
    created_at: dt.datetime
    updated_at: dt.datetime
    increment: str | None = None
    metadata: dict[str, object] = Field(default_factory=dict)
    tags: list[str] = Field(default_factory=list)
    signature: Signature = Field(default_factory=Signature)
    artifact: ArtifactRef
    environment: Environment
    decisions: dict[str, dict[str, Decision]] = Field(default_factory=dict)
    deprecation: Deprecation | None = None
    ever_in_production: bool = False
    deployed_at: dt.datetime | None = None
    version_bump: str | None = None
    bump_reasons: list[str] = Field(default_factory=list)
