"""The registry's exceptions.

Every error a caller can get from the registry derives from ``RegistryError``::

    RegistryError
    ├── InvalidInput (also ValueError)
    │   ├── InvalidModelName
    │   ├── InvalidVersion
    │   ├── InvalidStage
    │   ├── InvalidMetadata
    │   ├── InvalidSignature
    │   └── InvalidDate
    ├── NotFound (also LookupError)
    │   ├── ModelNotFound
    │   ├── VersionNotFound
    │   └── NoVersionInStage
    ├── VersionAlreadyExists
    ├── StageConflict
    ├── TransitionNotAllowed
    ├── ApprovalError
    │   ├── ApprovalMissing
    │   ├── ApproverNotAllowed
    │   ├── SelfApprovalNotAllowed
    │   ├── DuplicateDecision
    │   └── NoApprovalPolicy
    ├── RollbackNotAllowed
    ├── DeprecationError
    │   ├── VersionDeprecated
    │   └── EndOfLifeReached
    ├── SignatureMismatch
    ├── ArtifactError
    │   ├── ArtifactIntegrityError
    │   └── UnsupportedModel
    ├── ConcurrencyConflict
    ├── ExperimentAlreadyEnded
    └── BackendError

Each subclass keeps the values it names as attributes, so callers can act on
them without parsing the message.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class RegistryError(Exception):
    """Base class of every error the registry raises on purpose."""


class InvalidInput(RegistryError, ValueError):
    """Raised when an argument has the wrong form, before anything is written."""

    def __init__(self, message: str, *, value: Any = None) -> None:
        super().__init__(message)
        self.value = value


class InvalidModelName(InvalidInput):
    """Raised when a model name breaks the naming rule."""


class InvalidVersion(InvalidInput):
    """Raised when a version string is not a semantic version."""


class InvalidStage(InvalidInput):
    """Raised when a stage is not one of dev, staging, production, archived."""


class InvalidMetadata(InvalidInput):
    """Raised when a metadata field has the wrong type or range."""


class InvalidSignature(InvalidInput):
    """Raised when an input or output schema cannot be read or inferred."""


class InvalidDate(InvalidInput):
    """Raised when a date or time cannot be parsed."""


class NotFound(RegistryError, LookupError):
    """Raised when a model, a version or a stage holder does not exist."""


class ModelNotFound(NotFound):
    """Raised when no model of the given name is registered."""

    def __init__(self, name: str, close_matches: Sequence[str] = ()) -> None:
        hint = f"did you mean {' or '.join(repr(m) for m in close_matches)}? " if close_matches else ""
        super().__init__(
            f"model {name!r} not found; {hint}"
            "check the name with list_models() or register a first version with register_model()"
        )
        self.name = name
        self.close_matches = list(close_matches)


class VersionNotFound(NotFound):
    """Raised when a model has no version of the given number."""

    def __init__(self, name: str, version: str, known: Sequence[str]) -> None:
        listed = ", ".join(known[-10:]) or "none"
        super().__init__(
            f"model {name!r} has no version {version}; "
            f"its versions are: {listed}"
        )
        self.name = name
        self.version = version
        self.known = list(known)


class NoVersionInStage(NotFound):
    """Raised when no version of a model is in the requested stage, now or at a past time."""

    def __init__(self, name: str, stage: str, when: str | None = None) -> None:
        if when:
            description = f"had no version in stage {stage!r} at {when}"
        else:
            description = f"has no version in stage {stage!r}"
        super().__init__(
            f"model {name!r} {description}; "
            "ask for a version with version=..., or promote one to that stage"
        )
        self.name = name
        self.stage = stage
        self.when = when


class VersionAlreadyExists(RegistryError):
    """Raised when registering a version number that the model already has."""

    def __init__(self, name: str, version: str, latest: str) -> None:
        super().__init__(
            f"model {name!r} already has version {version}; versions are never overwritten. "
            f"Register a new version (the latest is {latest}), or pass auto_version=True"
        )
        self.name = name
        self.version = version
        self.latest = latest


class StageConflict(RegistryError):
    """Raised when a command's from_stage is not the version's current stage."""

    def __init__(self, name: str, version: str, expected: str, actual: str) -> None:
        super().__init__(
            f"{name} {version} is in stage {actual!r}, not {expected!r}; "
            f"pass from_stage={actual!r} if that is the version you mean"
        )
        self.name = name
        self.version = version
        self.expected = expected
        self.actual = actual


class TransitionNotAllowed(RegistryError):
    """Raised when a stage transition is not among the declared transitions."""

    def __init__(self, from_stage: str, to_stage: str, allowed: Sequence[str]) -> None:
        super().__init__(
            f"transition {from_stage} -> {to_stage} is not allowed; "
            f"allowed transitions from {from_stage} are: {', '.join(allowed) or 'none'}"
        )
        self.from_stage = from_stage
        self.to_stage = to_stage
        self.allowed = list(allowed)


class ApprovalError(RegistryError):
    """Base class of the approval rule violations."""


class NoApprovalPolicy(ApprovalError):
    """Raised when approvals are asked for on a stage that has no approval policy."""

    def __init__(self, stage: str) -> None:
        super().__init__(
            f"stage {stage!r} has no approval policy; "
            f"set one with set_approval_required(stage={stage!r}, approvers=[...], min_approvals=N)"
        )
        self.stage = stage


class ApprovalMissing(ApprovalError):
    """Raised when a promotion lacks the approvals its stage's policy requires."""

    def __init__(
        self,
        name: str,
        version: str,
        stage: str,
        required: int,
        approved_by: Sequence[str],
        may_approve: Sequence[str],
        rejected_by: Sequence[str] = (),
    ) -> None:
        parts = [
            f"promotion of {name} {version} to {stage} needs {required} approval(s) "
            f"and has {len(approved_by)}"
        ]
        if approved_by:
            parts.append(f"approved by: {', '.join(approved_by)}")
        if rejected_by:
            parts.append(f"rejected by: {', '.join(rejected_by)} (each must approve to lift it)")
        parts.append(f"who may still approve: {', '.join(may_approve) or 'nobody on the list'}")
        super().__init__("; ".join(parts))
        self.name = name
        self.version = version
        self.stage = stage
        self.required = required
        self.approved_by = list(approved_by)
        self.may_approve = list(may_approve)
        self.rejected_by = list(rejected_by)


class ApproverNotAllowed(ApprovalError):
    """Raised when someone not on a stage's approver list approves or rejects."""

    def __init__(self, approver: str, stage: str, approvers: Sequence[str]) -> None:
        super().__init__(
            f"{approver!r} is not an approver for stage {stage!r}; "
            f"the approvers are: {', '.join(approvers)}. Change the list with set_approval_required()"
        )
        self.approver = approver
        self.stage = stage
        self.approvers = list(approvers)


class SelfApprovalNotAllowed(ApprovalError):
    """Raised when the actor who registered a version tries to approve it."""

    def __init__(self, approver: str, name: str, version: str) -> None:
        super().__init__(
            f"{approver!r} registered {name} {version} and cannot approve it; "
            "ask another approver on the stage's list"
        )
        self.approver = approver
        self.name = name
        self.version = version


class DuplicateDecision(ApprovalError):
    """Raised when an approver repeats the decision they already recorded."""

    def __init__(self, approver: str, name: str, version: str, decision: str) -> None:
        super().__init__(
            f"{approver!r} has already {decision} {name} {version}; each approver counts once"
        )
        self.approver = approver
        self.name = name
        self.version = version
        self.decision = decision


class RollbackNotAllowed(RegistryError):
    """Raised when a rollback target breaks the rollback rules."""

    def __init__(self, name: str, version: str, why: str) -> None:
        super().__init__(f"cannot roll {name} back to {version}: {why}")
        self.name = name
        self.version = version
        self.why = why


class DeprecationError(RegistryError):
    """Base class of the errors about deprecated versions."""


class VersionDeprecated(DeprecationError):
    """Raised when a command would promote a deprecated version."""

    def __init__(self, name: str, version: str, reason: str) -> None:
        super().__init__(
            f"{name} {version} is deprecated ({reason}) and cannot be promoted; "
            "register or promote a newer version"
        )
        self.name = name
        self.version = version
        self.reason = reason


class EndOfLifeReached(DeprecationError):
    """Raised when reading or using a version after its end of life."""

    def __init__(self, name: str, version: str, end_of_life: str) -> None:
        super().__init__(
            f"{name} {version} reached its end of life on {end_of_life} and can no longer be used; "
            "load a newer version"
        )
        self.name = name
        self.version = version
        self.end_of_life = end_of_life


class SignatureMismatch(RegistryError):
    """Raised when a new version's signature breaks the production version's."""

    def __init__(
        self, name: str, version: str, production: str, problems: Sequence[str], *, no_inputs: bool = False
    ) -> None:
        advice = "Keep the inputs, or register it as a new major version"
        if no_inputs:
            advice = (
                "The new version has no known inputs: pass input_example= or metadata['features'] "
                "so the registry can read them, or register it as a new major version"
            )
        super().__init__(
            f"{name} {version} breaks the signature of production version {production}: "
            f"{'; '.join(problems)}. {advice}"
        )
        self.name = name
        self.version = version
        self.production = production
        self.problems = list(problems)


class ArtifactError(RegistryError):
    """Base class of the errors about stored model artifacts."""


class ArtifactIntegrityError(ArtifactError):
    """Raised when an artifact's bytes do not match the digest recorded for them."""

    def __init__(self, name: str, version: str, expected: str, actual: str) -> None:
        super().__init__(
            f"artifact of {name} {version} is corrupt: recorded sha256 {expected}, "
            f"stored bytes have sha256 {actual}. Restore the file from a backup, or register the model again"
        )
        self.name = name
        self.version = version
        self.expected = expected
        self.actual = actual


class UnsupportedModel(ArtifactError):
    """Raised when a model object cannot be serialised by any supported format."""


class ConcurrencyConflict(RegistryError):
    """Raised when concurrent writers kept winning the race for a model after every retry."""

    def __init__(self, name: str, attempts: int) -> None:
        super().__init__(
            f"model {name!r} was changed by another writer {attempts} times in a row; "
            "nothing was written. Retry the command"
        )
        self.name = name
        self.attempts = attempts


class ExperimentAlreadyEnded(RegistryError):
    """Raised when a command would add to an experiment run that has ended."""

    def __init__(self, experiment: str, run_id: object, status: str) -> None:
        super().__init__(
            f"experiment {experiment!r} run {run_id} has already ended ({status}); "
            "start a new run with track_experiment() to log more"
        )
        self.experiment = experiment
        self.run_id = run_id
        self.status = status


class BackendError(RegistryError):
    """Raised when the event store cannot be opened or written."""


class EventLogBroken(BackendError):
    """Raised when a stream's stored events cannot be replayed because one is missing or out of place."""

    def __init__(self, stream_id: object, expected: int, found: int) -> None:
        super().__init__(
            f"the stored events of stream {stream_id} are not in sequence: expected position {expected}, "
            f"found {found}. Run `registry verify` to find the damaged events, then restore the event store from a backup"
        )
        self.stream_id = stream_id
        self.expected = expected
        self.found = found
