"""Query results: model versions, model summaries and history entries."""

from __future__ import annotations

import copy
import datetime as dt
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from registry.errors import EndOfLifeReached
from registry.records import ArtifactRef, Deprecation, Environment, Signature, VersionState

_NOT_LOADED = object()


class ModelDeprecatedWarning(UserWarning):
    """Warns that a version read from the registry is deprecated but still before its end of life."""


class ModelVersion:
    """One version of a model, as stored in the registry.

    ``model`` loads the artifact on first access, after checking its digest.
    """

    # Declared here because a view from a list sets most of them only when one is first read.
    name: str
    version: str
    stage: str
    tags: list[str]
    signature: Signature
    artifact: ArtifactRef
    environment: Environment
    deprecation: Deprecation | None
    registered_by: str
    created_at: dt.datetime
    updated_at: dt.datetime
    deployed_at: dt.datetime | None
    increment: str | None
    version_bump: str | None
    bump_reasons: list[str]
    approvals: dict[str, dict[str, dict[str, Any]]]
    metadata: dict[str, Any]
    # The JSON of the state, until a view from a list decodes it.
    _state_json: str

    def __init__(
        self,
        name: str,
        state: VersionState,
        loader: Callable[[ArtifactRef, str, str], Any],
        now: Callable[[], dt.datetime],
        *,
        shared: bool = True,
    ) -> None:
        # A view of a state that the registry keeps, such as a cached aggregate's,
        # copies what a caller could change. A state decoded for this view alone
        # (shared=False) is handed over as it is.
        self.name = name
        self._loader = loader
        self._now = now
        self._model: Any = _NOT_LOADED
        self._fill(state, shared=shared)

    @classmethod
    def decoded_on_use(
        cls,
        name: str,
        row: tuple[str, str, str | None, str],
        loader: Callable[[ArtifactRef, str, str], Any],
        now: Callable[[], dt.datetime],
    ) -> ModelVersion:
        """Return a view of a stored row whose state is decoded when a field other than the row's is first read.

        The row is the version, the stage, the metadata as JSON (None when the
        catalog predates that column) and the state as JSON. Listing thousands
        of versions to read their versions, stages and metadata then costs no
        validation of the rest of each state.
        """
        version, stage, metadata_json, state_json = row
        view = cls.__new__(cls)
        view.name = name
        view._loader = loader
        view._now = now
        view._model = _NOT_LOADED
        view._state_json = state_json
        if metadata_json is not None:
            view.version = version
            view.stage = stage
            view.metadata = orjson.loads(metadata_json)
        return view

    def __getattr__(self, attribute: str) -> Any:
        # Python calls this only for a field not set yet, which is a field of a view decoded on use.
        state_json = self.__dict__.get("_state_json")
        if state_json is None:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {attribute!r}")
        self._fill(VersionState.model_validate_json(state_json), shared=False)
        del self.__dict__["_state_json"]
        return getattr(self, attribute)

    def _fill(self, state: VersionState, *, shared: bool) -> None:
        """Set the fields from ``state``, except those already set, which a caller may have changed."""
        fields: dict[str, Any] = {
            "version": state.version,
            "stage": state.stage,
            "tags": list(state.tags),
            "signature": _copy_signature(state.signature) if shared else state.signature,
            "artifact": state.artifact.model_copy() if shared else state.artifact,
            "environment": _copy_environment(state.environment) if shared else state.environment,
            "deprecation": state.deprecation,
            "registered_by": state.registered_by,
            "created_at": state.created_at,
            "updated_at": state.updated_at,
            "deployed_at": state.deployed_at,
            "increment": state.increment,
            "version_bump": state.version_bump,
            "bump_reasons": list(state.bump_reasons),
            "approvals": {
                stage: {approver: decision.model_dump(mode="json") for approver, decision in by_approver.items()}
                for stage, by_approver in state.decisions.items()
            },
        }
        if "metadata" not in self.__dict__:
            fields["metadata"] = full_metadata(self.name, state, shared=shared)
        for field_name, value in fields.items():
            self.__dict__.setdefault(field_name, value)

    @property
    def model(self) -> Any:
        """The loaded model object; the artifact's digest is checked before loading."""
        if self._model is _NOT_LOADED:
            self.check_usable(warn=False)
            self._model = self._loader(self.artifact, self.name, self.version)
        return self._model

    @property
    def is_deprecated(self) -> bool:
        return self.deprecation is not None

    def check_usable(self, *, warn: bool = True) -> None:
        """Raise after the end of life; warn while deprecated before it."""
        if self.deprecation is None:
            return
        end_of_life = self.deprecation.end_of_life
        if end_of_life is not None and end_of_life <= self._now():
            raise EndOfLifeReached(self.name, self.version, end_of_life.isoformat(timespec="seconds"))
        if warn:
            until = f" until {end_of_life.isoformat(timespec='seconds')}" if end_of_life else ""
            warnings.warn(
                f"{self.name} {self.version} is deprecated ({self.deprecation.reason}); "
                f"it can still be used{until}",
                ModelDeprecatedWarning,
                stacklevel=3,
            )

    def to_dict(self) -> dict[str, Any]:
        """Return the version's fields as JSON-ready values, without the model object."""
        return {
            "name": self.name,
            "version": self.version,
            "stage": self.stage,
            "tags": list(self.tags),
            "metadata": dict(self.metadata),
            "signature": self.signature.model_dump(mode="json"),
            "artifact": self.artifact.model_dump(mode="json"),
            "environment": self.environment.model_dump(mode="json"),
            "deprecation": self.deprecation.model_dump(mode="json") if self.deprecation else None,
            "approvals": self.approvals,
            "registered_by": self.registered_by,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "deployed_at": self.deployed_at.isoformat() if self.deployed_at else None,
        }

    def __repr__(self) -> str:
        return f"ModelVersion(name={self.name!r}, version={self.version!r}, stage={self.stage!r})"


def _copy_signature(signature: Signature) -> Signature:
    # Its fields are dicts of strings, so copying the dicts is a deep copy, at a fraction of deepcopy's cost.
    return signature.model_copy(update={"inputs": dict(signature.inputs), "outputs": dict(signature.outputs)})


def _copy_environment(environment: Environment) -> Environment:
    return environment.model_copy(update={"requirements": dict(environment.requirements)})


def full_metadata(name: str, state: VersionState, *, shared: bool = True) -> dict[str, Any]:
    """Merge the caller's metadata with the registry's own fields for the version.

    With ``shared=False``, the caller's nested values are not copied, for a
    result that is only serialised or belongs to a state decoded for it alone.
    """
    metadata: dict[str, Any] = copy.deepcopy(state.metadata) if shared else dict(state.metadata)
    metadata.update(
        name=name,
        version=state.version,
        stage=state.stage,
        created_at=state.created_at.isoformat(),
        updated_at=state.updated_at.isoformat(),
        actor=state.registered_by,
        increment=state.increment,
        artifact_sha256=state.artifact.sha256,
        artifact_size=state.artifact.size,
        artifact_format=state.artifact.format,
        tags=list(state.tags),
    )
    metadata.setdefault("python_version", state.environment.python_version)

    if "features" not in metadata and state.signature.inputs:
        metadata["features"] = list(state.signature.inputs)
        metadata["num_features"] = len(state.signature.inputs)

    production_approvals = state.decisions.get("production", {})
    approvers = [a for a, d in production_approvals.items() if d.decision == "approved"]
    if approvers:
        metadata["approvers"] = approvers
        metadata.setdefault("approver", ", ".join(approvers))

    deprecation = state.deprecation
    metadata["deprecated"] = deprecation is not None
    if deprecation is not None:
        metadata["deprecation_reason"] = deprecation.reason
        metadata["end_of_life"] = deprecation.end_of_life.isoformat() if deprecation.end_of_life else None
    return metadata


class VersionList(list[ModelVersion]):
    """A list of model versions; ``next_page_token`` fetches the next page, None on the last."""

    def __init__(self, versions: list[ModelVersion], next_page_token: str | None = None) -> None:
        super().__init__(versions)
        self.next_page_token = next_page_token


@dataclass(frozen=True)
class ModelSummary:
    """One model with its latest and production versions."""

    name: str
    latest_version: str | None
    production_version: str | None
    version_count: int
    stages: dict[str, int]
    created_at: dt.datetime
    updated_at: dt.datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "latest_version": self.latest_version,
            "production_version": self.production_version,
            "version_count": self.version_count,
            "stages": dict(self.stages),
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


@dataclass(frozen=True)
class HistoryEntry:
    """One event of a model's history, in the words a reviewer reads."""

    position: int
    event: str
    version: str | None
    actor: str
    effective_at: dt.datetime
    recorded_at: dt.datetime
    increment: str | None
    from_stage: str | None = None
    to_stage: str | None = None
    reason: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "position": self.position,
            "event": self.event,
            "version": self.version,
            "actor": self.actor,
            "effective_at": self.effective_at.isoformat(),
            "recorded_at": self.recorded_at.isoformat(),
            "increment": self.increment,
            "from_stage": self.from_stage,
            "to_stage": self.to_stage,
            "reason": self.reason,
            "details": dict(self.details),
        }
