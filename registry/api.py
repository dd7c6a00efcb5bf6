"""``ModelRegistry``: the Python API that users call.

Each command loads one model aggregate, lets it check its rules and trigger
events, and saves them in one transaction. When another writer saved events
of the same model first, the save fails on the (aggregate id, version) key and
the command runs again on the fresh state, so concurrent writers never create
the same version twice.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import difflib
import gc
import getpass
import logging
import math
import os
import random
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import orjson
import sqlite_utils
from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import RecordConflictError
from eventsourcing.utils import get_topic

from registry import errors
from registry.aggregate import (
    DEFAULT_TRANSITIONS,
    REGISTRABLE_STAGES,
    Context,
    ExperimentAggregate,
    ModelAggregate,
    RegistrySettings,
)
from registry.artifacts import ArtifactStore, serialise
from registry.clock import Clock, to_utc, utc_now
from registry.comparison import Comparison, compare_versions
from registry.environment import describe_environment
from registry.events import (
    Approved,
    Deprecated,
    DomainEvent,
    ExperimentStarted,
    ModelCreated,
    Promoted,
    Registered,
    Rejected,
    RolledBack,
    SignatureSet,
)
from registry.experiments import ExperimentRun, check_experiment_name
from registry.metadata import FRACTION_METRICS, NON_NEGATIVE, check_metadata, check_tags, metrics_of
from registry.naming import check_name, check_stage, model_id, split_reference
from registry.persistence import EventStoreApplication, open_event_store
from registry.records import ApprovalPolicy, Signature
from registry.signatures import check_schema, infer_signature
from registry.versioning import bump, classify_change, normalize_version
from registry.views import HistoryEntry, ModelSummary, ModelVersion, VersionList

if TYPE_CHECKING:
    from projections.lineage import Lineage
    from projections.runner import ProgressCallback, ProjectionRunner

# NOTE: the projections are imported inside the methods that use them, because
# they import registry modules themselves, and a module-level import here would
# make "import projections.runner" before "import registry" fail halfway.

logger = logging.getLogger(__name__)

# How often a command is retried when another writer changed the same model first.
MAX_ATTEMPTS = 20

# How far in the future an effective time may lie, to absorb clock skew between machines.
FUTURE_TOLERANCE = dt.timedelta(seconds=5)

ENVIRONMENTS = ("dev", "staging", "production")


class ModelRegistry:
    """An event-sourced model registry.

    ``home`` (or ``REGISTRY_HOME``, default ``./.registry``) contains the SQLite
    event store, the artifacts and the per-version files. ``database_url``
    (or ``REGISTRY_DATABASE_URL``) moves the events to PostgreSQL. Every event
    records ``increment`` and the acting user: the ``actor`` argument of a
    command, else this object's ``actor``, else ``REGISTRY_USER``, else the OS
    user. ``clock`` returns the current time and can be replaced in tests.
    """

    def __init__(
        self,
        home: str | os.PathLike[str] | None = None,
        *,
        increment: str | None = None,
        environment: str | None = None,
        database_url: str | None = None,
        actor: str | None = None,
        clock: Clock | None = None,
    ) -> None:
        base = Path(home if home is not None else os.environ.get("REGISTRY_HOME", ".registry"))
        if environment is not None:
            if environment not in ENVIRONMENTS:
                raise errors.InvalidInput(
                    f"invalid environment {environment!r}: expected one of {', '.join(ENVIRONMENTS)}",
                    value=environment,
                )
            base = base / "environments" / environment

        if increment is not None and (not isinstance(increment, str) or not increment.strip()):
            raise errors.InvalidInput(
                f"invalid increment {increment!r}: expected a work-item id such as '0042'",
                value=increment,
            )

        self.home = base.absolute()
        self.increment = increment
        self.environment = environment
        self.actor = _check_actor(actor) if actor is not None else None
        self._clock = clock or utc_now

        url = database_url if database_url is not None else os.environ.get("REGISTRY_DATABASE_URL") or None
        # NOTE: separate environments on PostgreSQL need one schema each; only SQLite homes are split so far.
        if url is not None and environment is not None:
            raise errors.InvalidInput(
                "environment= with a PostgreSQL database_url is not supported yet; "
                "give each environment its own database_url instead",
                value=environment,
            )
        self.database_url = url

        self._store: EventStoreApplication = open_event_store(self.home, url)
        self.artifacts = ArtifactStore(self.home / "artifacts")
        self.files_root = self.home / "models"
        self.read_models_path = self.home / "read_models.sqlite3"
        self.docs_root = self.home / "docs"

        self._runner: ProjectionRunner | None = None
        # The notification id of the last event this object wrote. Queries on read
        # models catch up to the end of the log, which includes it, so a caller
        # always reads its own writes.
        self._written_position = 0
        self._settings_exist = False

    # --- lifecycle ------------------------------------------------------------

    def close(self) -> None:
        """Close the event store's and the read models' connections."""
        if self._runner is not None:
            self._runner.close()
            self._runner = None
        self._store.close()

    def __enter__(self) -> ModelRegistry:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- commands -------------------------------------------------------------

    def register_model(
        self,
        name: str,
        model: Any,
        version: str | int | None = None,
        metadata: Mapping[str, Any] | None = None,
        stage: str = "dev",
        tags: Sequence[str] | None = None,
        *,
        input_example: Any = None,
        auto_version: bool = False,
        actor: str | None = None,
        effective_at: dt.datetime | str | None = None,
        increment: str | None = None,
    ) -> ModelVersion:
        """Store a new version of ``name`` with its artifact, metadata and signature.

        With no ``version``, or with ``auto_version=True``, the next version
        is chosen by classifying the change against the latest version.
        ``increment`` replaces the registry's increment for this one version.
        """
        check_name(name)
        check_stage(stage)
        if version is not None and auto_version:
            raise errors.InvalidInput(
                f"pass either version={version!r} or auto_version=True, not both",
                value=version,
            )
        explicit = normalize_version(version) if version is not None else None
        checked_metadata = check_metadata(metadata)
        checked_tags = check_tags(tags)
        for key in ("name", "version", "stage"):
            given = checked_metadata.pop(key, None)
            expected = {"name": name, "version": explicit, "stage": stage}[key]
            if given is not None and expected is not None and str(given) != expected:
                if key == "version" and normalize_version(given) == expected:
                    continue
                raise errors.InvalidMetadata(
                    f"metadata[{key!r}] is {given!r} but the {key} argument is {expected!r}; "
                    "drop the key from metadata or make the two agree",
                    value=given,
                )
        signature = infer_signature(model, input_example, checked_metadata.get("features"))
        settings = self._settings()
        if settings is not None and stage in REGISTRABLE_STAGES and stage in settings.policies:
            raise errors.InvalidStage(
                f"cannot register {name} directly in stage {stage!r}, which needs approvals by policy; "
                "register in 'dev', then approve and promote it",
                value=stage,
            )
        if increment is not None and (not isinstance(increment, str) or not increment.strip()):
            raise errors.InvalidInput(
                f"invalid increment {increment!r}: expected a work-item id such as '0042'", value=increment
            )
        context = self._context(actor, effective_at)
        if increment is not None:
            context = dataclasses.replace(context, increment=increment)

        # The blob is written after the aggregate accepts the version and before the
        # event that refers to it is saved. A rejected command leaves no blob, and a
        # crash leaves at most an unreferenced blob, never a version without its artifact.
        data, artifact_format, loader = serialise(model)
        artifact = self.artifacts.reference(data, artifact_format, loader)
        environment = describe_environment(model, artifact_format)

        def command(aggregate: ModelAggregate, context: Context) -> None:
            chosen, change_type, reasons = explicit, None, list[str]()
            if chosen is None:
                change_type, reasons = self._classify(aggregate, signature.inputs, checked_metadata)
                chosen = bump(aggregate.latest_version(), change_type)
            aggregate.register(
                context,
                version=chosen,
                stage=stage,
                metadata=checked_metadata,
                tags=checked_tags,
                signature=signature,
                artifact=artifact,
                environment=environment,
                version_bump=change_type,
                bump_reasons=reasons,
            )
            self.artifacts.put_bytes(data, artifact_format, loader)

        aggregate, events = self._execute(name, command, context=context, create=True)
        registered = next(e for e in events if isinstance(e, Registered))
        logger.info("registered %s %s (artifact sha256 %s)", name, registered.version, artifact.sha256)
        return self._view(aggregate, registered.version)

    def version_model(
        self,
        name: str,
        version_type: str | None = None,
        *,
        model: Any = None,
        metadata: Mapping[str, Any] | None = None,
        input_example: Any = None,
    ) -> str:
        """Return the version that comes after the latest version of ``name``.

        With ``version_type`` ("major", "minor" or "patch", in any case) the
        latest version is bumped by that part. Without it, the candidate
        described by ``model``, ``metadata`` and ``input_example`` is classified
        against the latest version.
        """
        check_name(name)
        aggregate = self._load_or_none(name, for_reading=True)
        latest = aggregate.latest_version() if aggregate else None
        if version_type is not None:
            return bump(latest, version_type.lower() if isinstance(version_type, str) else version_type)
        if aggregate is None:
            return bump(None, "major")
        if model is None and metadata is None and input_example is None:
            raise errors.InvalidInput(
                f"version_model({name!r}) needs version_type='major', 'minor' or 'patch', "
                "or a candidate to classify: pass model=, metadata= or input_example=",
                value=None,
            )
        checked = check_metadata(metadata)
        signature = infer_signature(model, input_example, checked.get("features"))
        change_type, _ = self._classify(aggregate, signature.inputs, checked)
        return bump(latest, change_type)

    def promote_model(
        self,
        name: str,
        version: str | int,
        from_stage: str,
        to_stage: str,
        approval_required: bool | None = None,
        *,
        reason: str | None = None,
        actor: str | None = None,
        effective_at: dt.datetime | str | None = None,
    ) -> ModelVersion:
        """Move ``version`` from ``from_stage`` to ``to_stage``.

        A stage with an approval policy always needs its approvals.
        ``approval_required=True`` also fails when the stage has no policy, so a
        pipeline can insist that approvals were in force.
        """
        check_name(name)
        checked_version = normalize_version(version)
        check_stage(from_stage, argument="from_stage")
        check_stage(to_stage, argument="to_stage")
        if reason is not None:
            _check_reason(reason)
        if approval_required is not None and not isinstance(approval_required, bool):
            raise errors.InvalidInput(
                f"invalid approval_required {approval_required!r}: expected True, False or None",
                value=approval_required,
            )
        settings = self._settings()
        policy = settings.policies.get(to_stage) if settings else None
        if approval_required and policy is None:
            raise errors.NoApprovalPolicy(to_stage)
        transitions = list(settings.transitions) if settings else list(DEFAULT_TRANSITIONS)
        context = self._context(actor, effective_at)

        def command(aggregate: ModelAggregate, context: Context) -> None:
            aggregate.promote(
                context,
                version=checked_version,
                from_stage=from_stage,
                to_stage=to_stage,
                transitions=transitions,
                policy=policy,
                reason=reason,
            )

        aggregate, _ = self._execute(name, command, context=context)
        logger.info("promoted %s %s from %s to %s", name, checked_version, from_stage, to_stage)
        return self._view(aggregate, checked_version)

    def set_approval_required(
        self,
        stage: str = "production",
        approvers: Sequence[str] = (),
        min_approvals: int = 1,
        *,
        actor: str | None = None,
    ) -> ApprovalPolicy:
        """Require ``min_approvals`` approvals from ``approvers`` for promotions to ``stage``."""
        check_stage(stage)
        if isinstance(approvers, str) or not isinstance(approvers, Sequence) or not approvers:
            raise errors.InvalidInput(
                f"invalid approvers {approvers!r}: expected a non-empty list of user names",
                value=approvers,
            )
        names = [_check_actor(a, argument="approver") for a in approvers]
        if len(set(names)) != len(names):
            raise errors.InvalidInput(
                f"approvers {names!r} repeat a name; list each approver once", value=names
            )
        if isinstance(min_approvals, bool) or not isinstance(min_approvals, int) or not 1 <= min_approvals <= len(names):
            raise errors.InvalidInput(
                f"invalid min_approvals {min_approvals!r}: expected a whole number from 1 to "
                f"{len(names)} (the number of approvers)",
                value=min_approvals,
            )
        policy = ApprovalPolicy(stage=stage, approvers=names, min_approvals=min_approvals)
        context = self._context(actor, None)
        self._execute_settings(lambda settings, current: settings.set_policy(current, policy), context)
        logger.info("approval policy for %s: %d of %s", stage, min_approvals, ", ".join(names))
        return policy

    def set_allowed_transitions(
        self, transitions: Sequence[tuple[str, str]], *, actor: str | None = None
    ) -> list[tuple[str, str]]:
        """Declare the allowed stage transitions; ``"*"`` as the source means any stage."""
        if isinstance(transitions, str) or not isinstance(transitions, Sequence):
            raise errors.InvalidInput(
                f"invalid transitions {transitions!r}: expected a list of pairs such as [('dev', 'staging')]",
                value=transitions,
            )
        declared: list[tuple[str, str]] = []
        for pair in transitions:
            if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                raise errors.InvalidInput(
                    f"invalid transition {pair!r}: expected a pair such as ('dev', 'staging')",
                    value=pair,
                )
            source, target = pair
            if source != "*":
                check_stage(source, argument="transition source")
            check_stage(target, argument="transition target")
            declared.append((str(source), str(target)))
        if not declared:
            raise errors.InvalidInput(
                f"invalid transitions {transitions!r}: expected at least one pair such as ('dev', 'staging')",
                value=transitions,
            )
        context = self._context(actor, None)
        self._execute_settings(
            lambda settings, current: settings.declare_transitions(current, declared), context
        )
        return declared

    def approve_model(
        self,
        name: str,
        version: str | int,
        approver: str,
        comments: str | None = None,
        *,
        stage: str = "production",
        effective_at: dt.datetime | str | None = None,
    ) -> ModelVersion:
        """Record ``approver``'s approval of promoting ``version`` to ``stage``."""
        return self._decide(name, version, approver, comments, stage, True, effective_at)

    def reject_model(
        self,
        name: str,
        version: str | int,
        approver: str,
        reason: str,
        *,
        stage: str = "production",
        effective_at: dt.datetime | str | None = None,
    ) -> ModelVersion:
        """Record ``approver``'s rejection of promoting ``version`` to ``stage``, with a reason."""
        _check_reason(reason)
        return self._decide(name, version, approver, reason, stage, False, effective_at)

    def rollback(
        self,
        name: str,
        to_version: str | int,
        reason: str,
        *,
        actor: str | None = None,
        automatic: bool = False,
        evidence: Mapping[str, Any] | None = None,
        effective_at: dt.datetime | str | None = None,
    ) -> ModelVersion:
        """Make ``to_version``, which was in production before, the production version again."""
        check_name(name)
        target = normalize_version(to_version)
        _check_reason(reason)
        if not isinstance(automatic, bool):
            raise errors.InvalidInput(f"invalid automatic {automatic!r}: expected True or False", value=automatic)
        if evidence is not None and not isinstance(evidence, Mapping):
            raise errors.InvalidInput(
                f"invalid evidence {evidence!r}: expected a dict such as {{'error_rate': 0.09}}", value=evidence
            )
        context = self._context(actor, effective_at)

        def command(aggregate: ModelAggregate, context: Context) -> None:
            aggregate.rollback(
                context,
                to_version=target,
                reason=reason,
                now=context.effective_at,
                automatic=automatic,
                evidence=evidence,
            )

        aggregate, _ = self._execute(name, command, context=context)
        logger.info("rolled %s back to %s: %s", name, target, reason)
        view = self._view(aggregate, target)
        view.check_usable()  # warns when the restored version is deprecated
        return view

    def deprecate_model(
        self,
        name: str,
        version: str | int,
        reason: str,
        end_of_life: dt.datetime | dt.date | str | None = None,
        *,
        actor: str | None = None,
        effective_at: dt.datetime | str | None = None,
    ) -> ModelVersion:
        """Mark ``version`` as deprecated; after ``end_of_life`` it can no longer be used."""
        check_name(name)
        checked_version = normalize_version(version)
        _check_reason(reason)
        end = to_utc(end_of_life, argument="end_of_life") if end_of_life is not None else None
        context = self._context(actor, effective_at)
        if end is not None and end <= context.effective_at:
            raise errors.InvalidDate(
                f"invalid end_of_life {end.isoformat(timespec='seconds')}: it is not after the deprecation "
                f"({context.effective_at.isoformat(timespec='seconds')}), so the version would be unusable at once; "
                "pass a later date, or promote the version to 'archived' to retire it now",
                value=end_of_life,
            )

        def command(aggregate: ModelAggregate, context: Context) -> None:
            aggregate.deprecate(context, version=checked_version, reason=reason, end_of_life=end)

        aggregate, _ = self._execute(name, command, context=context)
        logger.info("deprecated %s %s: %s", name, checked_version, reason)
        return self._view(aggregate, checked_version)

    def set_model_signature(
        self,
        model: str | None = None,
        inputs: Mapping[str, str] | None = None,
        outputs: Mapping[str, str] | None = None,
        *,
        name: str | None = None,
        version: str | int | None = None,
        actor: str | None = None,
    ) -> ModelVersion:
        """Record the input and output schema of a version.

        The version is given as ``model="fraud-detection-v3.1.0"``, or as
        ``name=`` and ``version=``.
        """
        if model is not None:
            name, version_text = split_reference(model)
            version = version_text
        if name is None or version is None:
            raise errors.InvalidInput(
                "name the version as model='NAME-vVERSION' or with name= and version=", value=model
            )
        check_name(name)
        checked_version = normalize_version(version)
        signature = Signature(
            inputs=check_schema(inputs or {}, argument="inputs"),
            outputs=check_schema(outputs or {}, argument="outputs"),
        )
        context = self._context(actor, None)

        def command(aggregate: ModelAggregate, context: Context) -> None:
            aggregate.set_signature(context, version=checked_version, signature=signature)

        aggregate, _ = self._execute(name, command, context=context)
        return self._view(aggregate, checked_version)

    def enforce_end_of_life(self, *, actor: str | None = None) -> dict[str, list[str]]:
        """Archive every version past its end of life; return them by model name."""
        context = self._context(actor if actor is not None else "registry-end-of-life", None)
        archived: dict[str, list[str]] = {}
        for name in self._model_names():
            expired: list[str] = []

            def command(aggregate: ModelAggregate, context: Context) -> None:
                expired[:] = aggregate.archive_expired(context, now=context.effective_at)

            self._execute(name, command, context=context)
            if expired:
                archived[name] = expired
                logger.info("archived %s %s at end of life", name, ", ".join(expired))
        return archived

    def track_experiment(
        self,
        name: str,
        *,
        increment: str | None = None,
        parameters: Mapping[str, Any] | None = None,
        actor: str | None = None,
    ) -> ExperimentRun:
        """Start a run of experiment ``name`` and return it, to use as a context manager.

        The run records its parameters, metrics and the versions it registers,
        and ends as completed when its ``with`` block exits normally, or as failed
        when the block raises. ``increment`` defaults to this registry's.
        """
        run = ExperimentRun(
            self,
            check_experiment_name(name),
            increment=increment if increment is not None else self.increment,
            actor=actor,
        )
        run.start(parameters or {})
        return run

    # --- queries --------------------------------------------------------------

    def get_model(
        self, name: str, stage: str | None = None, version: str | int | None = None
    ) -> ModelVersion:
        """Return a version by number, or the version in ``stage`` (production by default).

        A deprecated version warns with ``ModelDeprecatedWarning``; after its
        end of life this raises ``EndOfLifeReached``.
        """
        check_name(name)
        if stage is not None and version is not None:
            raise errors.InvalidInput(
                f"pass either stage={stage!r} or version={version!r}, not both", value=(stage, version)
            )
        aggregate = self._load(name, for_reading=True)
        if version is not None:
            chosen = normalize_version(version)
            aggregate.get_version(chosen)
        else:
            wanted = check_stage(stage or "production")
            holders = aggregate.holder_of(wanted)
            if not holders:
                raise errors.NoVersionInStage(name, wanted)
            chosen = holders[-1].version
        view = self._view(aggregate, chosen)
        view.check_usable()
        return view

    def get_model_by_date(
        self, name: str, date: dt.datetime | dt.date | str, stage: str = "production"
    ) -> ModelVersion:
        """Return the version that held ``stage`` at ``date``, by replaying events up to then.

        A naive datetime is UTC; a bare date means the end of that day in UTC.
        """
        check_name(name)
        check_stage(stage)
        when = to_utc(date)
        if stage == "production":
            loaded = self._load(name, for_reading=True)
            if loaded.indexed:
                return self._production_at(loaded, when)
        aggregate_id = model_id(name)
        position = self._last_position_at(aggregate_id, when)
        if position is None:
            self._load(name, for_reading=True)  # raises ModelNotFound when the model does not exist at all
            raise errors.NoVersionInStage(name, stage, when.isoformat())
        past: ModelAggregate = self._store.repository.get(aggregate_id, version=position)
        holders = past.holder_of(stage)
        if not holders:
            raise errors.NoVersionInStage(name, stage, when.isoformat())
        version = holders[-1].version
        # The view shows the past state, but loading its model happens now, so the
        # end-of-life check uses the version's current deprecation.
        current = self._view(self._load(name, for_reading=True), version)

        def load_if_usable(ref: Any, model_name: str, model_version: str) -> Any:
            current.check_usable(warn=False)
            return self.artifacts.load(ref, model_name, model_version)

        return ModelVersion(past.name, past.get_version(version), load_if_usable, self._now)

    def _production_at(self, current: ModelAggregate, when: dt.datetime) -> ModelVersion:
        """Return the production version at ``when`` by replaying only that version's events.

        The aggregate records each change of the production pointer and the
        positions of each version's events, so this reads a handful of events
        however long the model's history is.
        """
        version = current.production_at(when)
        if version is None:
            raise errors.NoVersionInStage(current.name, "production", when.isoformat())
        past = ModelAggregate(current.id, current.name, current.created_on)
        for position in current.event_positions[version]:
            (stored,) = self._store.events.get(current.id, gt=position - 1, lte=position)
            event = cast(DomainEvent, stored)
            if event.effective_at > when:
                # Effective times never decrease, so every later event is after ``when`` too.
                break
            if isinstance(event, RolledBack) and event.to_version != version:
                # A rollback away from this version also changes the version it restored,
                # which the partial aggregate does not hold, so a stand-in takes that change.
                past.versions[event.to_version] = past.versions[version]
                event.apply(past)
                del past.versions[event.to_version]
                continue
            event.apply(past)
        state = past.get_version(version)
        latest = self._view(current, version)

        def load_if_usable(ref: Any, model_name: str, model_version: str) -> Any:
            # The view shows the past state, but loading its model happens now, so the
            # end-of-life check uses the version's current deprecation.
            latest.check_usable(warn=False)
            return self.artifacts.load(ref, model_name, model_version)

        return ModelVersion(current.name, state, load_if_usable, self._now, shared=False)

    def list_models(self) -> list[ModelSummary]:
        """Return every model with its latest and production versions, by name."""
        from projections import catalog

        db = self._read_models()
        counts = catalog.stage_counts(db)
        return [
            ModelSummary(
                name=row.name,
                latest_version=row.latest_version,
                production_version=row.production_version,
                version_count=row.version_count,
                stages=counts.get(row.name, {}),
                created_at=row.created_at,
                updated_at=row.updated_at,
            )
            for row in catalog.list_model_rows(db)
        ]

    def list_versions(
        self,
        name: str,
        stage: str | None = None,
        tags: Sequence[str] | None = None,
        min_metrics: Mapping[str, float] | None = None,
        max_metrics: Mapping[str, float] | None = None,
        *,
        page_size: int | None = None,
        page_token: str | None = None,
    ) -> VersionList:
        """Return the versions of ``name``, lowest first, that pass every filter.

        ``tags`` keeps versions that carry all the given tags. ``min_metrics``
        and ``max_metrics`` bound metrics such as ``{"accuracy": 0.9}``, and a
        version without a bounded metric is left out. With ``page_size``, the
        result is one page, and its ``next_page_token`` fetches the next one.
        """
        check_name(name)
        if stage is not None:
            check_stage(stage)
        required_tags = check_tags(tags)
        lower = _check_bounds(min_metrics, "min_metrics")
        upper = _check_bounds(max_metrics, "max_metrics")
        if page_size is not None and (isinstance(page_size, bool) or not isinstance(page_size, int) or page_size < 1):
            raise errors.InvalidInput(
                f"invalid page_size {page_size!r}: expected a whole number of 1 or more", value=page_size
            )
        if page_token is not None and not isinstance(page_token, str):
            raise errors.InvalidInput(
                f"invalid page_token {page_token!r}: pass the next_page_token of the previous page",
                value=page_token,
            )
        from projections import catalog

        db = self._read_models()
        if not catalog.has_model(db, name):
            raise self._model_not_found(name)
        page = catalog.select_versions(
            db,
            name,
            stage=stage,
            tags=required_tags,
            min_metrics=lower,
            max_metrics=upper,
            page_size=page_size,
            page_token=page_token,
        )
        # Building thousands of views allocates enough containers to start several garbage
        # collections. The views form no cycles, so collection waits until the list is built.
        with _garbage_collection_paused():
            views = [ModelVersion.decoded_on_use(name, row, self.artifacts.load, self._now) for row in page.rows]
        return VersionList(views, next_page_token=page.next_page_token)

    def history(self, name: str) -> list[HistoryEntry]:
        """Return every event of ``name`` in the order it was recorded."""
        check_name(name)
        self._load(name, for_reading=True)
        return [_history_entry(event) for event in self.events(name)]

    def events(self, name: str) -> list[DomainEvent]:
        """Return the stored events of ``name``, oldest first."""
        check_name(name)
        self._load(name, for_reading=True)
        return list(self._store.events.get(model_id(name)))  # type: ignore[arg-type]

    def get_lineage(self, name: str, version: str | int) -> Lineage:
        """Return the lineage of one version: its data, features, experiments, parents and deployments.

        The result renders as an indented tree (``to_tree()``) and as
        node-link JSON (``to_node_link()``, ``to_json()``); ``graph`` is the
        networkx graph itself.
        """
        check_name(name)
        checked_version = normalize_version(version)
        from projections import catalog, lineage

        db = self._read_models()
        if not catalog.has_model(db, name):
            raise self._model_not_found(name)
        return lineage.get_lineage(db, name, checked_version)

    def models_using_feature(self, feature: str) -> list[str]:
        """Return the model versions, as ``NAME-vX.Y.Z``, that use an input column or feature set."""
        from projections import lineage

        return lineage.models_using_feature(self._read_models(), _check_feature(feature))

    def feature_impact(self, feature: str) -> dict[str, Any]:
        """Return every model version and deployment downstream of an input column or feature set."""
        from projections import lineage

        return lineage.feature_impact(self._read_models(), _check_feature(feature))

    def compare_models(self, model_a: str, model_b: str) -> Comparison:
        """Compare two versions, given as ``NAME-vX.Y.Z``, and recommend which one to serve.

        The two versions may belong to different models. Render the result with
        ``to_text()``, ``to_markdown()`` or ``to_json()``.
        """
        versions: list[ModelVersion] = []
        for reference in (model_a, model_b):
            name, version_text = split_reference(reference)
            version = normalize_version(version_text)
            # Comparing reads only metadata, so deprecated versions, even past their
            # end of life, compare without the warning or error that get_model gives.
            versions.append(self._view(self._load(name, for_reading=True), version))
        return compare_versions(versions[0], versions[1])

    def experiment_history(self, name: str) -> list[dict[str, Any]]:
        """Return the runs of experiment ``name``, oldest first.

        Each run is a dict with its ``run_id``, ``status`` ("running",
        "completed" or "failed"), ``error``, ``parameters``, ``metrics`` (the
        last value logged for each name), the ``versions`` it registered as
        ``NAME-vX.Y.Z``, ``started_at``, ``ended_at``, ``actor`` and ``increment``.
        An experiment with no runs returns an empty list.
        """
        check_experiment_name(name)
        runs = []
        for run_id in self._experiment_run_ids(name):
            run: ExperimentAggregate = self._store.repository.get(run_id)
            runs.append(
                {
                    "run_id": str(run.id),
                    "experiment": run.experiment,
                    "status": run.status,
                    "error": run.error,
                    "parameters": dict(run.parameters),
                    "metrics": dict(run.metrics),
                    "versions": [f"{model}-{version}" for model, version in run.versions],
                    "started_at": run.started_at,
                    "ended_at": run.ended_at,
                    "actor": run.started_by,
                    "increment": run.increment,
                }
            )
        return runs

    # --- read models and rebuild jobs ------------------------------------------

    def catch_up_projections(
        self, names: Sequence[str] | None = None, progress: ProgressCallback | None = None
    ) -> int:
        """Apply new events to the read models (all of them by default).

        Return the number of notifications applied, summed over the read
        models. ``progress``, if given, is called after each page with the
        position reached and the position the catch-up stops at.
        """
        from projections.runner import check_projection_names

        check_projection_names(names)
        applied = self.projection_runner().catch_up(names, progress=progress)
        logger.info("read models caught up: %d notifications applied", applied)
        return applied

    def rebuild_projections(
        self,
        names: Sequence[str] | None = None,
        *,
        as_of: dt.datetime | dt.date | str | None = None,
        position: int | None = None,
        target: str | os.PathLike[str] | None = None,
        progress: ProgressCallback | None = None,
    ) -> Path:
        """Rebuild read models from the first event and return the database they are in.

        With ``as_of`` (a time) or ``position`` (a notification id) the rebuild
        stops there, and it goes to ``target``, by default a new file under
        ``home/rebuilds/``, so the live read models keep following the log.
        The docs of a rebuild into another file go to a folder beside it,
        named after the file with ``-docs`` added. An interrupted rebuild of
        the same target resumes where it stopped. ``progress``, if given, is
        called after each page with the position reached and the position the
        rebuild stops at.
        """
        from projections.runner import Limit, ProjectionRunner, all_projections, check_projection_names

        check_projection_names(names)
        limit = Limit(
            position=_check_position(position),
            as_of=to_utc(as_of, argument="as_of") if as_of is not None else None,
        )
        path = self.read_models_path
        if target is not None:
            path = Path(target)
            if path.is_dir():
                raise errors.InvalidInput(
                    f"invalid target {str(target)!r}: it is a folder; pass the path of a SQLite file "
                    f"to write, such as {str(path / 'read_models.sqlite3')!r}",
                    value=str(target),
                )
        elif limit.position is not None or limit.as_of is not None:
            # Both limits name the default file, so rebuilds with different limits never share one.
            labels = []
            if limit.as_of is not None:
                labels.append(f"as-of-{limit.as_of:%Y%m%dT%H%M%SZ}")
            if limit.position is not None:
                labels.append(f"position-{limit.position}")
            path = self.home / "rebuilds" / f"read_models-{'-'.join(labels)}.sqlite3"

        if path.absolute() == self.read_models_path and (limit.position is not None or limit.as_of is not None):
            raise errors.InvalidInput(
                f"a rebuild as of a time or a position cannot go to the live read models in {path}, "
                "which follow the log; pass another target",
                value=str(target),
            )
        if path.absolute() == self.read_models_path:
            runner = self.projection_runner()
            runner.rebuild(names, limit, progress)
            return path
        # The docs of a separate rebuild go beside its database, never over the live docs.
        docs_root = path.parent / f"{path.stem}-docs"
        runner = ProjectionRunner(self._store.recorder, self._store.mapper, path, all_projections(docs_root, self.artifacts))
        try:
            runner.rebuild(names, limit, progress)
        finally:
            runner.close()
        return path

    def write_docs(self) -> Path:
        """Bring ``model-registry.md`` and the increments layout under ``docs_root`` up to date."""
        self.projection_runner().catch_up(["docs"])
        return self.docs_root

    # --- internals ------------------------------------------------------------

    def _context(self, actor: str | None, effective_at: dt.datetime | str | None) -> Context:
        recorded_at = to_utc(self._clock(), argument="clock reading")
        effective = to_utc(effective_at, argument="effective_at") if effective_at is not None else recorded_at
        if effective > recorded_at + FUTURE_TOLERANCE:
            raise errors.InvalidDate(
                f"invalid effective_at {effective.isoformat()}: it is later than now "
                f"({recorded_at.isoformat()}); events cannot take effect in the future",
                value=effective_at,
            )
        return Context(
            actor=self._resolve_actor(actor),
            increment=self.increment,
            recorded_at=recorded_at,
            effective_at=effective,
            backfilled=effective_at is not None,
        )

    def _reread_clock(self, context: Context) -> Context:
        """Return ``context`` recorded now; its effective time moves too unless the caller gave one."""
        now = self._now()
        effective = context.effective_at if context.backfilled else now
        return dataclasses.replace(context, recorded_at=now, effective_at=effective)

    def _resolve_actor(self, actor: str | None) -> str:
        if actor is not None:
            return _check_actor(actor)
        if self.actor is not None:
            return self.actor
        configured = os.environ.get("REGISTRY_USER")
        if configured:
            return _check_actor(configured)
        return getpass.getuser()

    def projection_runner(self) -> ProjectionRunner:
        """Return the runner that keeps this registry's read models in ``read_models_path``."""
        from projections.runner import ProjectionRunner, all_projections

        if self._runner is None:
            self._runner = ProjectionRunner(
                self._store.recorder,
                self._store.mapper,
                self.read_models_path,
                all_projections(self.docs_root, self.artifacts),
                serves_queries=True,
            )
        return self._runner

    def _read_models(self) -> sqlite_utils.Database:
        """Catch the read models up with the event log and return their database."""
        from projections.runner import QUERY_PROJECTIONS

        runner = self.projection_runner()
        runner.catch_up(QUERY_PROJECTIONS)
        # The catch-up reads the end of the log after this object's last commit, so
        # it includes this object's writes. A lagging read model would be a bug.
        positions = runner.positions(p for p in runner.projections if p.name in QUERY_PROJECTIONS)
        lagging = [name for name, position in positions.items() if position < self._written_position]
        if lagging:
            raise errors.BackendError(
                f"read models {', '.join(lagging)} stopped before notification {self._written_position}, "
                "which this registry wrote; rebuild them with rebuild_projections()"
            )
        return runner.db

    def _load_or_none(self, name: str, *, for_reading: bool = False) -> ModelAggregate | None:
        """Return the model's aggregate, or None when the model does not exist.

        A command gets its own copy of the cached aggregate, so a command that
        fails leaves the cache as it was. A query (``for_reading=True``) gets
        the cached object itself and must not change it; the views copy what
        they expose.
        """
        try:
            return self._store.repository.get(  # type: ignore[no-any-return]
                model_id(name), deepcopy_from_cache=not for_reading
            )
        except AggregateNotFoundError:
            return None

    def _load(self, name: str, *, for_reading: bool = False) -> ModelAggregate:
        aggregate = self._load_or_none(name, for_reading=for_reading)
        if aggregate is None:
            raise self._model_not_found(name)
        return aggregate

    def _model_not_found(self, name: str) -> errors.ModelNotFound:
        close = difflib.get_close_matches(name, self._model_names(), n=3)
        return errors.ModelNotFound(name, close)

    def _cache(self, aggregate: ModelAggregate) -> None:
        """Keep a just-saved aggregate as the cached one, so the next load need not replay its events.

        It matches the stored stream up to its version. When another writer has
        appended since, the next load reads those events, as it would anyway.
        """
        cache = self._store.repository.cache
        if cache is not None:
            cache.put(aggregate.id, aggregate)

    def _settings(self, *, for_reading: bool = True) -> RegistrySettings | None:
        """Return the registry settings, or None before the first policy or transition is set.

        Like ``_load``, a query gets the cached object itself, which it must not change.
        """
        # Until the settings exist, one query for their first event is cheaper than the
        # repository lookup, which also queries for a snapshot and then raises.
        if not self._settings_exist:
            if not self._store.recorder.select_events(RegistrySettings.ID, limit=1):
                return None
            self._settings_exist = True
        try:
            return self._store.repository.get(  # type: ignore[no-any-return]
                RegistrySettings.ID, deepcopy_from_cache=not for_reading
            )
        except AggregateNotFoundError:
            return None

    def _execute(
        self,
        name: str,
        command: Callable[[ModelAggregate, Context], None],
        *,
        context: Context,
        create: bool = False,
    ) -> tuple[ModelAggregate, list[DomainEvent]]:
        """Run ``command`` on the model's aggregate and save its events, retrying on conflicts."""
        for attempt in range(1, MAX_ATTEMPTS + 1):
            aggregate = self._load_or_none(name)
            # Reading the clock after loading dates the new events after the events just loaded,
            # unless the caller gave an effective time or the writers' clocks disagree.
            attempt_context = self._reread_clock(context)
            if aggregate is None:
                if not create:
                    raise errors.ModelNotFound(name)
                aggregate = ModelAggregate.create(attempt_context, model_id(name), name)
            command(aggregate, attempt_context)
            pending = list(aggregate._pending)
            if not pending:
                return aggregate, []
            try:
                recordings = self._store.save(aggregate)
            except RecordConflictError:
                logger.info("model %s changed during a command; retrying (attempt %d)", name, attempt)
                time.sleep(random.uniform(0.001, 0.01 * attempt))
                continue
            self._written_position = max(self._written_position, recordings[-1].notification.id)
            self._cache(aggregate)
            self._write_files(aggregate, pending)
            return aggregate, pending
        raise errors.ConcurrencyConflict(name, MAX_ATTEMPTS)

    def _execute_settings(self, command: Callable[[RegistrySettings, Context], None], context: Context) -> None:
        for _ in range(MAX_ATTEMPTS):
            settings = self._settings(for_reading=False)
            attempt_context = self._reread_clock(context)
            settings = settings or RegistrySettings.create(attempt_context)
            command(settings, attempt_context)
            try:
                self._store.save(settings)
                return
            except RecordConflictError:
                time.sleep(random.uniform(0.001, 0.01))
        raise errors.ConcurrencyConflict("registry settings", MAX_ATTEMPTS)

    def _execute_experiment(
        self,
        run_id: uuid.UUID,
        command: Callable[[ExperimentAggregate | None, Context], ExperimentAggregate],
        context: Context,
    ) -> ExperimentAggregate:
        """Run ``command`` on an experiment run (None before its start) and save its events."""
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                current: ExperimentAggregate | None = self._store.repository.get(run_id)
            except AggregateNotFoundError:
                current = None
            aggregate = command(current, self._reread_clock(context))
            try:
                recordings = self._store.save(aggregate)
            except RecordConflictError:
                logger.info("experiment run %s changed during a command; retrying (attempt %d)", run_id, attempt)
                time.sleep(random.uniform(0.001, 0.01 * attempt))
                continue
            if recordings:
                self._written_position = max(self._written_position, recordings[-1].notification.id)
            return aggregate
        raise errors.ConcurrencyConflict(f"experiment run {run_id}", MAX_ATTEMPTS)

    def _experiment_run_ids(self, experiment: str) -> list[uuid.UUID]:
        """Return the ids of the runs of ``experiment``, from their start events, oldest first."""
        topic = get_topic(ExperimentStarted)
        run_ids: list[uuid.UUID] = []
        start = 1
        while True:
            page = self._store.recorder.select_notifications(start=start, limit=500, topics=[topic])
            if not page:
                return run_ids
            run_ids.extend(
                uuid.UUID(str(n.originator_id)) for n in page if orjson.loads(n.state)["experiment"] == experiment
            )
            start = page[-1].id + 1

    def _decide(
        self,
        name: str,
        version: str | int,
        approver: str,
        text: str | None,
        stage: str,
        approve: bool,
        effective_at: dt.datetime | str | None,
    ) -> ModelVersion:
        check_name(name)
        checked_version = normalize_version(version)
        checked_approver = _check_actor(approver, argument="approver")
        check_stage(stage)
        if text is not None and not isinstance(text, str):
            raise errors.InvalidInput(f"invalid comments {text!r}: expected text", value=text)
        settings = self._settings()
        policy = settings.policies.get(stage) if settings else None
        # The approver is the one who acts, so the event records them as its actor.
        context = self._context(checked_approver, effective_at)

        def command(aggregate: ModelAggregate, context: Context) -> None:
            aggregate.decide(
                context,
                version=checked_version,
                stage=stage,
                approver=checked_approver,
                approve=approve,
                text=text,
                policy=policy,
            )

        aggregate, _ = self._execute(name, command, context=context)
        logger.info(
            "%s %s %s %s for %s", checked_approver, "approved" if approve else "rejected", name, checked_version, stage
        )
        return self._view(aggregate, checked_version)

    def _classify(
        self, aggregate: ModelAggregate, inputs: Mapping[str, str], metadata: Mapping[str, Any]
    ) -> tuple[str, list[str]]:
        latest = aggregate.latest_version()
        if latest is None:
            return "major", ["first version"]
        previous = aggregate.versions[latest]
        change = classify_change(
            previous.signature.inputs, metrics_of(previous.metadata), inputs, metrics_of(metadata)
        )
        return change.version_type, change.reasons

    def _view(self, aggregate: ModelAggregate, version: str) -> ModelVersion:
        return ModelVersion(aggregate.name, aggregate.get_version(version), self.artifacts.load, self._now)

    def _now(self) -> dt.datetime:
        return to_utc(self._clock(), argument="clock reading")

    def _write_files(self, aggregate: ModelAggregate, events: Sequence[DomainEvent]) -> None:
        from projections.version_files import write_version_files

        touched = set().union(*(event.named_versions() for event in events))
        registered = {event.version for event in events if isinstance(event, Registered)}
        for version in sorted(touched):
            # The files only read the view, so it can share the aggregate's state.
            view = ModelVersion(aggregate.name, aggregate.get_version(version), self.artifacts.load, self._now, shared=False)
            write_version_files(self.files_root, view, new=version in registered)

    def _model_names(self) -> list[str]:
        """Return the names of all models, from their creation events."""
        topic = get_topic(ModelCreated)
        names: list[str] = []
        start = 1
        while True:
            page = self._store.recorder.select_notifications(start=start, limit=500, topics=[topic])
            if not page:
                return names
            names.extend(orjson.loads(n.state)["name"] for n in page)
            start = page[-1].id + 1

    def _last_position_at(self, aggregate_id: uuid.UUID, when: dt.datetime) -> int | None:
        """Return the position of the model's last event effective at or before ``when``.

        Effective times never decrease along a model's events, so a binary search
        over positions finds it with a logarithmic number of primary-key lookups.
        """
        recorder = self._store.events.recorder
        newest = recorder.select_events(aggregate_id, desc=True, limit=1)
        if not newest:
            return None
        low, high = 1, newest[0].originator_version
        found: int | None = None
        while low <= high:
            middle = (low + high) // 2
            stored = recorder.select_events(aggregate_id, gt=middle - 1, lte=middle, limit=1)
            effective = dt.datetime.fromisoformat(orjson.loads(stored[0].state)["effective_at"])
            if effective <= when:
                found, low = middle, middle + 1
            else:
                high = middle - 1
        return found


def _check_actor(actor: object, *, argument: str = "actor") -> str:
    if not isinstance(actor, str) or not actor.strip() or len(actor) > 256:
        raise errors.InvalidInput(
            f"invalid {argument} {actor!r}: expected a non-empty user name of at most 256 characters",
            value=actor,
        )
    return actor.strip()


# Metadata fields that list_versions can filter on; the catalog indexes only these.
FILTERABLE_METRICS = FRACTION_METRICS + NON_NEGATIVE


def _check_feature(feature: object) -> str:
    if not isinstance(feature, str) or not feature.strip():
        raise errors.InvalidInput(
            f"invalid feature {feature!r}: expected a column name such as 'amount' or a feature set such as 'fe-v2'",
            value=feature,
        )
    return feature


def _check_position(position: object) -> int | None:
    if position is None:
        return None
    if isinstance(position, bool) or not isinstance(position, int) or position < 0:
        raise errors.InvalidInput(
            f"invalid position {position!r}: expected a notification id of 0 or more", value=position
        )
    return position


def _check_reason(reason: object) -> str:
    if not isinstance(reason, str) or not reason.strip():
        raise errors.InvalidInput(
            f"invalid reason {reason!r}: expected a non-empty explanation, which the audit trail keeps",
            value=reason,
        )
    return reason


def _check_bounds(bounds: Mapping[str, float] | None, argument: str) -> dict[str, float]:
    if bounds is None:
        return {}
    if not isinstance(bounds, Mapping):
        raise errors.InvalidInput(
            f"invalid {argument} {bounds!r}: expected a dict such as {{'accuracy': 0.9}}", value=bounds
        )
    checked = {}
    for key, value in bounds.items():
        if key not in FILTERABLE_METRICS:
            raise errors.InvalidInput(
                f"invalid {argument} key {key!r}: expected one of {', '.join(FILTERABLE_METRICS)}",
                value=key,
            )
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise errors.InvalidInput(
                f"invalid {argument}[{key!r}] = {value!r}: expected a number", value=value
            )
        if math.isnan(value):
            raise errors.InvalidInput(
                f"invalid {argument}[{key!r}] = nan: expected a number, because no metric compares "
                "with NaN and the filter would match no version",
                value=value,
            )
        checked[str(key)] = float(value)
    return checked


@contextlib.contextmanager
def _garbage_collection_paused() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _history_entry(event: DomainEvent) -> HistoryEntry:
    common: dict[str, Any] = {
        "position": event.originator_version,
        "event": type(event).__name__,
        "actor": event.actor,
        "effective_at": event.effective_at,
        "recorded_at": event.timestamp,
        "increment": event.increment,
    }
    if isinstance(event, Registered):
        return HistoryEntry(
            **common,
            version=event.version,
            to_stage=event.stage,
            details={"sha256": event.artifact.sha256, "version_bump": event.version_bump},
        )
    if isinstance(event, Promoted):
        return HistoryEntry(
            **common,
            version=event.version,
            from_stage=event.from_stage,
            to_stage=event.to_stage,
            reason=event.reason,
            details={"approved_by": list(event.approved_by)},
        )
    if isinstance(event, (Approved, Rejected)):
        text = event.comments if isinstance(event, Approved) else event.reason
        return HistoryEntry(
            **common, version=event.version, reason=text, details={"stage": event.stage, "approver": event.approver}
        )
    if isinstance(event, RolledBack):
        return HistoryEntry(
            **common,
            version=event.to_version,
            from_stage=None,
            to_stage="production",
            reason=event.reason,
            details={"from_version": event.from_version, "automatic": event.automatic, "evidence": event.evidence},
        )
    if isinstance(event, Deprecated):
        return HistoryEntry(
            **common,
            version=event.version,
            reason=event.reason,
            details={"end_of_life": event.end_of_life.isoformat() if event.end_of_life else None},
        )
    if isinstance(event, SignatureSet):
        return HistoryEntry(**common, version=event.version, details=event.signature.model_dump())
    return HistoryEntry(**common, version=None)


