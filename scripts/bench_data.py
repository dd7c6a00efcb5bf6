"""Build large registry histories for the benchmark, faster than one command at a time.

The events are made by the model aggregate's own command methods, so every
rule check, hash and event field is the one a live command produces. The
registry's event store and mapper store them, EVENTS_PER_SAVE to a
transaction. What this skips, compared with the public API, is per-command
overhead: reloading the aggregate, serialising a model, and rewriting the
per-version files under ``home/models/``. All versions share one artifact blob.

Snapshots are stored at the same positions and with the same content as the
event store's own snapshotting (``snapshot_due``). Each is the snapshot of a
replica aggregate, folded from the same events, serialised without copying its
versions. ``_stored_snapshot`` compares the bytes with those of the package's
own ``ModelSnapshot.take`` for the small snapshots and those of the last batch.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import pickle
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

from eventsourcing.persistence import Mapper, StoredEvent

from registry import ModelRegistry
from registry.aggregate import DEFAULT_TRANSITIONS, Context, ModelAggregate, ModelSnapshot
from registry.environment import describe_environment
from registry.naming import model_id
from registry.persistence import snapshot_due
from registry.records import ApprovalPolicy, ArtifactRef, Environment, Signature

# Events saved per call of the event store's save, as one transaction.
EVENTS_PER_SAVE = 500

# The maximum number of events that the cycle below makes for one version.
MAX_EVENTS_PER_VERSION = 10

# Versions per increment (work item). Each increment contains consecutive versions of one model, as a
# team's project increment would. The docs projection renders each increment's files as a whole.
VERSIONS_PER_INCREMENT = 100

# A small picklable model: the same bytes every time, so its blob is stored once.
TINY_MODEL = {"kind": "linear", "coefficients": [0.25, -0.5, 0.75, 1.0], "intercept": 0.1}

SIGNATURE = Signature(
    inputs={"amount": "float", "merchant_category": "str", "hour": "int", "card_present": "bool"},
    outputs={"prediction": "int"},
)

HISTORY_START = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
EVENT_SPACING = dt.timedelta(seconds=30)


def version_metrics(index: int) -> tuple[float, list[str]]:
    """Return the accuracy and tags of the version at ``index``; both registries get the same."""
    rng = random.Random(index)
    accuracy = round(0.70 + 0.29 * rng.random(), 4)
    tags = [f"team-{'ab'[index % 2]}"]
    if index % 10 == 0:
        tags.append("candidate")
    return accuracy, tags


@dataclasses.dataclass(frozen=True)
class History:
    """A generated store: its folder, model names, counts and the span of effective times."""

    home: Path
    models: list[str]
    versions_per_model: int
    events: int
    first_effective_at: dt.datetime
    last_effective_at: dt.datetime


@dataclasses.dataclass
class _Writer:
    """The shared parts of every generated event: policies, artifact, environment and the clock."""

    registry: ModelRegistry
    staging_policy: ApprovalPolicy
    production_policy: ApprovalPolicy
    artifact: ArtifactRef
    environment: Environment
    now: dt.datetime = HISTORY_START
    increments: int = 0
    increment: str = ""

    def context(self, actor: str = "alice") -> Context:
        self.now += EVENT_SPACING
        return Context(
            actor=actor,
            increment=self.increment,
            recorded_at=self.now,
            effective_at=self.now,
            backfilled=True,
        )

    def next_increment(self) -> None:
        self.increment = f"increment-{self.increments:05d}"
        self.increments += 1


def build_history(
    home: Path,
    models: list[str],
    versions_per_model: int,
    events_per_version: int,
    progress: Callable[[int], None] | None = None,
) -> History:
    """Write ``versions_per_model`` versions of each model, each with up to 10 events.

    A version is registered in dev, gets its signature, is approved for staging
    and promoted to staging. Then it is rejected and approved twice for
    production and promoted to production, which archives the previous
    production version in a second event. Last, the previous version is
    deprecated. ``events_per_version`` below 10 keeps only the first steps.
    """
    steps = max(1, min(events_per_version, MAX_EVENTS_PER_VERSION))
    registry = ModelRegistry(home=home, actor="alice", increment="bench")
    try:
        staging_policy = registry.set_approval_required(stage="staging", approvers=["bob"], min_approvals=1)
        production_policy = registry.set_approval_required(
            stage="production", approvers=["bob", "carol"], min_approvals=2
        )
        data = pickle.dumps(TINY_MODEL, protocol=pickle.HIGHEST_PROTOCOL)
        writer = _Writer(
            registry=registry,
            staging_policy=staging_policy,
            production_policy=production_policy,
            artifact=registry.artifacts.put_bytes(data, "pickle"),
            environment=describe_environment(TINY_MODEL, "pickle"),
        )
        first = writer.now + EVENT_SPACING
        for name in models:
            _write_model(writer, name, versions_per_model, steps, progress)
        events = registry._store.recorder.max_notification_id() or 0
        return History(home, models, versions_per_model, events, first, writer.now)
    finally:
        registry.close()


def _write_model(
    writer: _Writer, name: str, versions: int, steps: int, progress: Callable[[int], None] | None
) -> None:
    store = writer.registry._store
    writer.next_increment()
    aggregate = ModelAggregate.create(writer.context(), model_id(name), name)
    replica: ModelAggregate | None = None
    previous: str | None = None
    for index in range(versions):
        if index and index % VERSIONS_PER_INCREMENT == 0:
            writer.next_increment()
        version = f"v1.{index}.0"
        _version_cycle(writer, aggregate, index, version, previous, steps)
        previous = version
        last = index == versions - 1
        if len(aggregate._pending) < EVENTS_PER_SAVE and not last:
            continue

        events = aggregate.collect_events()
        store.events.put(events)
        snapshots = []
        for event in events:
            replica = event.mutate(replica)
            assert replica is not None
            if snapshot_due(replica, replica.version):
                check = len(replica.versions) <= 200 or last
                snapshots.append(_stored_snapshot(store.mapper, replica, check=check))
        if snapshots:
            assert store.snapshots is not None, "the registry's event store takes snapshots"
            store.snapshots.recorder.insert_events(snapshots)
        if progress is not None:
            progress(len(events))


def _stored_snapshot(mapper: Mapper[Any], aggregate: ModelAggregate, *, check: bool) -> StoredEvent:
    """Return the stored form of a snapshot of ``aggregate``, without copying its versions.

    The snapshot is taken of a shallow copy that has no versions, and then the
    versions are put in by reference. Because it is serialised right away, the
    bytes are those of the package's own snapshot, which ``check`` compares.
    """
    bare = copy.copy(aggregate)
    bare.versions = {}
    empty = ModelSnapshot.take(bare)
    snapshot = empty.model_copy(
        update={"state": empty.state.model_copy(update={"versions": aggregate.versions})}
    )
    stored = mapper.to_stored_event(snapshot)
    if check:
        expected = mapper.to_stored_event(ModelSnapshot.take(aggregate))
        if stored != expected:
            raise AssertionError(
                f"the generated snapshot of {aggregate.name} at position {aggregate.version} differs from "
                "ModelSnapshot.take; update scripts/bench_data.py to the package's snapshot format"
            )
    return stored


def _version_cycle(
    writer: _Writer, aggregate: ModelAggregate, index: int, version: str, previous: str | None, steps: int
) -> None:
    accuracy, tags = version_metrics(index)
    metadata = {
        "accuracy": accuracy,
        "f1_score": round(accuracy - 0.02, 4),
        "algorithm": "logistic_regression",
        "experiment": f"exp-{index // 100:03d}",
        "training_data_version": "v2024-01",
    }
    production = writer.production_policy
    cycle: list[Callable[[], None]] = [
        lambda: aggregate.register(
            writer.context(),
            version=version,
            stage="dev",
            metadata=metadata,
            tags=tags,
            signature=SIGNATURE,
            artifact=writer.artifact,
            environment=writer.environment,
        ),
        lambda: aggregate.set_signature(writer.context(), version=version, signature=SIGNATURE),
        lambda: _decide(writer, aggregate, version, "staging", "bob", True, writer.staging_policy),
        lambda: aggregate.promote(
            writer.context(),
            version=version,
            from_stage="dev",
            to_stage="staging",
            transitions=DEFAULT_TRANSITIONS,
            policy=writer.staging_policy,
        ),
        lambda: _decide(writer, aggregate, version, "production", "carol", False, production),
        lambda: _decide(writer, aggregate, version, "production", "bob", True, production),
        lambda: _decide(writer, aggregate, version, "production", "carol", True, production),
        lambda: aggregate.promote(
            writer.context(),
            version=version,
            from_stage="staging",
            to_stage="production",
            transitions=DEFAULT_TRANSITIONS,
            policy=production,
            reason="passed the offline evaluation",
        ),
    ]
    if previous is not None:
        cycle.append(
            lambda: aggregate.deprecate(
                writer.context(), version=previous, reason=f"replaced by {version}", end_of_life=None
            )
        )
    # The promotion to production counts for two events when it archives a previous version.
    budget = steps
    for step in cycle:
        if budget <= 0:
            break
        step()
        budget -= 2 if step is cycle[7] and previous is not None else 1


def _decide(
    writer: _Writer,
    aggregate: ModelAggregate,
    version: str,
    stage: str,
    approver: str,
    approve: bool,
    policy: ApprovalPolicy,
) -> None:
    text = "checked the evaluation report" if approve else "recall below the threshold"
    aggregate.decide(
        writer.context(approver),
        version=version,
        stage=stage,
        approver=approver,
        approve=approve,
        text=text,
        policy=policy,
    )
