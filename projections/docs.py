"""The docs read model: one ``model-registry.md`` per model and the files of each increment.

The projection writes this layout under its root::

    <name>/model-registry.md
    increments/<increment>/models/<name>-<version>/model.<ext>, metadata.json,
                                                    requirements.txt, features.yaml
    increments/<increment>/registry/model_catalog.yaml, lineage_graph.json,
                                    deployment_history.md

The artifact is named by its format: ``model.skops``, ``model.ubj`` for XGBoost
or ``model.pkl`` for pickle. A version belongs to the increment of its
``Registered`` event, and later events of other increments do not move it.
Versions registered without an increment go to ``increments/_unassigned/``.

An increment id is used as the folder name when it is a safe file name
(letters, digits, ``.``, ``_`` and ``-``, starting with a letter or digit, at
most 100 characters). Any other id is percent-encoded behind a leading ``_``,
and a very long one is replaced by ``_sha256-`` and its digest. So no id names
a path outside ``increments/``, and two ids share a folder only if their
digests collide, or if they differ only in case on a case-insensitive file
system. Model names follow the registry's naming rule, so they are safe path
parts.

The projection keeps its own tables and reads no other projection's. ``apply``
updates them and records in ``docs_pending`` which models, versions and
increments an event changed. ``after_batch`` renders those targets and then
clears them. If rendering fails, the targets stay pending until the runner
calls ``after_batch`` again, which it does at the start of its next catch-up.
Every file is written to a hidden temporary file and renamed, so a reader never
sees half a file. ``docs_files`` records each file before it is written, and
``reset`` deletes those files and the temporary files left next to them. The
files depend only on the events and the blobs, so a rebuild writes the same
bytes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import logging
import re
import urllib.parse
import uuid
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, ClassVar

import networkx as nx
import orjson
import sqlite_utils
import yaml

from projections import lineage
from projections.rows import query_rows
from projections.runner import immediate_transaction
from projections.version_files import features_yaml
from registry.aggregate import ModelAggregate
from registry.artifacts import ArtifactStore
from registry.clock import utc_now
from registry.environment import requirements_text
from registry.errors import InvalidInput
from registry.events import (
    Approved,
    Deprecated,
    DomainEvent,
    ModelCreated,
    Promoted,
    Registered,
    Rejected,
    RolledBack,
    SignatureSet,
)
from registry.files import YAML_DUMPER, TEMPORARY_PREFIX as FILES_TEMPORARY_PREFIX
from registry.files import write_atomically
from registry.metadata import metrics_of
from registry.records import VersionState
from registry.versioning import sort_key
from registry.views import ModelVersion

logger = logging.getLogger(__name__)

MODEL_DOC = "model-registry.md"
INCREMENTS = "increments"
UNASSIGNED = "_unassigned"

# The artifact's file name in a version folder, by the artifact format that registry.artifacts writes.
ARTIFACT_FILE_NAMES = {"skops": "model.skops", "xgboost-ubj": "model.ubj", "pickle": "model.pkl"}
UNKNOWN_FORMAT_FILE_NAME = "model.bin"

# Prefix of the temporary files. reset() finds the leftovers of interrupted writes by it.
TEMPORARY_PREFIX = FILES_TEMPORARY_PREFIX

# How many render targets are read from the pending table at once.
RENDER_CHUNK = 1000

# The bytes of rendered files held in memory before they are written. One target's files may pass the limit,
# because it is checked between targets. The three files of an increment of 100 versions take about 170 kB,
# so a chunk of 1,000 such increments would otherwise hold about 170 MB.
QUEUED_BYTES = 8 * 1024 * 1024

_SAFE_FOLDER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
MAX_FOLDER_NAME = 100

# Model events whose version fields name every version they change. Any other
# model event is applied to a copy of all the model's versions.
_KNOWN_MODEL_EVENTS = (Registered, Promoted, Approved, Rejected, RolledBack, Deprecated, SignatureSet)
_LIFECYCLE_EVENTS = (Registered, Promoted, RolledBack, Deprecated)

_TABLES = ("docs_models", "docs_versions", "docs_deployments", "docs_pending", "docs_files")

# Bytes read at a time when an artifact is copied.
_COPY_CHUNK = 1 << 20


def increment_folder_name(increment: str | None) -> str:
    """Return the folder under ``increments/`` that contains the versions of ``increment``."""
    if increment is None:
        return UNASSIGNED
    if _SAFE_FOLDER.fullmatch(increment) and increment != MODEL_DOC:
        return increment
    encoded = "_" + urllib.parse.quote(increment, safe="")
    if len(encoded) > MAX_FOLDER_NAME:
        return "_sha256-" + hashlib.sha256(increment.encode()).hexdigest()
    return encoded


def artifact_file_name(artifact_format: str) -> str:
    """Return the file name of an artifact of ``artifact_format`` in a version folder."""
    return ARTIFACT_FILE_NAMES.get(artifact_format, UNKNOWN_FORMAT_FILE_NAME)


@dataclass(frozen=True)
class Transition:
    """One lifecycle event of a version: registration, stage change, rollback or deprecation."""

    position: int
    name: str
    version: str
    event: str
    actor: str
    effective_at: dt.datetime
    increment: str | None = None
    from_version: str | None = None
    from_stage: str | None = None
    to_stage: str | None = None
    reason: str | None = None
    approved_by: tuple[str, ...] = ()
    automatic: bool = False
    end_of_life: dt.datetime | None = None


class DocsProjection:
    """Writes ``model-registry.md`` per model and the increments layout under ``root``."""

    name: ClassVar[str] = "docs"

    def __init__(self, root: Path, artifacts: ArtifactStore) -> None:
        self.root = Path(root)
        self.artifacts = artifacts
        self._checked_folders: set[Path] = set()
        self._made_folders: set[Path] = set()
        self._root_resolved: Path | None = None
        # The files that the chunk being rendered writes, with their bytes or the blob to copy.
        self._queued: list[tuple[PurePosixPath, bytes | _ArtifactCopy]] = []
        self._queued_bytes = 0
        # The models, changed versions and render targets of the page being applied.
        self.discard_page()

    # --- schema ---------------------------------------------------------------

    def create_schema(self, db: sqlite_utils.Database) -> None:
        """Create the projection's tables when they are missing."""
        db.execute(
            "CREATE TABLE IF NOT EXISTS docs_models (model_id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, "
            "created_on TEXT NOT NULL, production TEXT, last_effective_at TEXT NOT NULL)"
        )
        db.execute(
            "CREATE TABLE IF NOT EXISTS docs_versions (name TEXT NOT NULL, version TEXT NOT NULL, "
            "stage TEXT NOT NULL, increment TEXT, accuracy REAL, inference_latency_p50 REAL, "
            "deployed_at TEXT, state TEXT NOT NULL, PRIMARY KEY (name, version))"
        )
        db.execute("CREATE INDEX IF NOT EXISTS docs_versions_increment ON docs_versions (increment)")
        db.execute(
            "CREATE TABLE IF NOT EXISTS docs_deployments (position INTEGER PRIMARY KEY, name TEXT NOT NULL, "
            "version TEXT NOT NULL, from_version TEXT, event TEXT NOT NULL, from_stage TEXT, to_stage TEXT, "
            "actor TEXT NOT NULL, reason TEXT, approved_by TEXT NOT NULL, automatic INTEGER NOT NULL, "
            "end_of_life TEXT, effective_at TEXT NOT NULL, increment TEXT)"
        )
        db.execute("CREATE INDEX IF NOT EXISTS docs_deployments_name ON docs_deployments (name)")
        db.execute("CREATE INDEX IF NOT EXISTS docs_deployments_version ON docs_deployments (name, version)")
        db.execute(
            "CREATE INDEX IF NOT EXISTS docs_deployments_from_version ON docs_deployments (name, from_version)"
        )
        db.execute("CREATE TABLE IF NOT EXISTS docs_pending (target TEXT PRIMARY KEY)")
        db.execute("CREATE TABLE IF NOT EXISTS docs_files (path TEXT PRIMARY KEY)")

    def reset(self, db: sqlite_utils.Database) -> None:
        """Delete the projection's rows and every file it wrote under the root."""
        self._forget_checked_folders()
        folders: set[Path] = set()
        paths = [PurePosixPath(row["path"]) for row in query_rows(db, "SELECT path FROM docs_files")]
        for relative in paths:
            path = self._checked_path(relative)
            path.unlink(missing_ok=True)
            folders.add(path.parent)

        # Interrupted writes leave hidden temporary files next to the files they replace.
        for folder in folders:
            if folder.is_dir():
                for leftover in folder.glob(TEMPORARY_PREFIX + "*"):
                    leftover.unlink(missing_ok=True)
        for folder in sorted(folders, key=lambda p: len(p.parts), reverse=True):
            self._remove_empty_folders(folder)
        self._forget_checked_folders()

        for table in _TABLES:
            db.execute(f"DELETE FROM {table}")
        logger.info("reset the docs projection: deleted %d files under %s", len(paths), self.root)

    # --- applying events --------------------------------------------------------

    def apply(self, db: sqlite_utils.Database, event: DomainEvent, position: int) -> None:
        """Apply one event to the projection's tables and mark what it changed for rendering."""
        if isinstance(event, ModelCreated):
            db["docs_models"].insert(  # type: ignore[union-attr]
                {
                    "model_id": str(event.originator_id),
                    "name": event.name,
                    "created_on": event.timestamp.isoformat(),
                    "production": None,
                    "last_effective_at": event.effective_at.isoformat(),
                },
                replace=True,
            )
            _mark(db, ["model", event.name])
            return

        aggregate = self._aggregate(db, event)
        if aggregate is None:
            # Registry settings and any aggregate other than a model have no docs.
            return
        touched = _load_versions(db, aggregate, event)
        previous_stages = {version: aggregate.versions[version].stage for version in touched}

        # The aggregate's own handler changes the state, so the docs and the registry agree.
        event.apply(aggregate)
        aggregate.last_effective_at = event.effective_at
        if isinstance(event, Registered):
            touched.add(event.version)

        self._changed.setdefault(str(aggregate.id), set()).update(touched)
        if isinstance(event, _LIFECYCLE_EVENTS):
            _record_transition(db, aggregate.name, event, position, previous_stages)
        self._marks.add(_target(["model", aggregate.name]))
        for version in touched:
            self._marks.add(_target(["version", aggregate.name, version]))
            self._marks.add(_target(["increment", aggregate.versions[version].increment]))

    def end_page(self, db: sqlite_utils.Database) -> None:
        """Write the version states and model rows that the page changed, and the targets to render."""
        for key, aggregate in self._page.items():
            if aggregate is not None:
                _save(db, aggregate, sorted(self._changed.get(key, ())))
        db.conn.executemany(
            "INSERT OR IGNORE INTO docs_pending (target) VALUES (?)", [(target,) for target in sorted(self._marks)]
        )
        self.discard_page()

    def discard_page(self) -> None:
        self._page: dict[str, ModelAggregate | None] = {}
        self._changed: dict[str, set[str]] = {}
        self._marks: set[str] = set()

    def _aggregate(self, db: sqlite_utils.Database, event: DomainEvent) -> ModelAggregate | None:
        """Return the page's partial aggregate of the event's model, or None for other streams."""
        key = str(event.originator_id)
        if key not in self._page:
            model = _one(db, "SELECT * FROM docs_models WHERE model_id = ?", [key])
            self._page[key] = None if model is None else _partial_aggregate(model)
        return self._page[key]

    # --- rendering --------------------------------------------------------------

    def after_batch(self, db: sqlite_utils.Database) -> None:
        """Render the models, versions and increments that the committed batch changed."""
        rendered = 0
        while True:
            # Targets are read a chunk at a time, because a rebuild leaves one per version pending.
            # Each chunk is deleted once its files are written, so the next query starts after it.
            sql = "SELECT target FROM docs_pending ORDER BY target LIMIT ?"
            pending = [row["target"] for row in query_rows(db, sql, [RENDER_CHUNK])]
            if not pending:
                break
            # The folders checked and made are kept for one chunk only: kept for a whole
            # rebuild, they would take memory in proportion to the number of versions.
            self._forget_checked_folders()
            self._queued = []
            self._queued_bytes = 0
            for target in pending:
                self._render(db, orjson.loads(target))
                # An increment's files grow with its versions, so a chunk of them is written in parts.
                if self._queued_bytes > QUEUED_BYTES:
                    self._write_queued(db)
            self._write_queued(db)
            with immediate_transaction(db):
                db.conn.executemany(
                    "DELETE FROM docs_pending WHERE target = ?", [(target,) for target in pending]
                )
            rendered += len(pending)
        self._forget_checked_folders()
        if rendered:
            logger.info("rendered %d docs targets under %s", rendered, self.root)

    def _render(self, db: sqlite_utils.Database, target: list[Any]) -> None:
        kind = target[0]
        if kind == "model":
            self._render_model(db, target[1])
        elif kind == "version":
            self._render_version(db, target[1], target[2])
        elif kind == "increment":
            self._render_increment(db, target[1])

    def _render_model(self, db: sqlite_utils.Database, name: str) -> None:
        model = _one(db, "SELECT * FROM docs_models WHERE name = ?", [name])
        if model is None:
            return
        versions = _versions(db, "SELECT state FROM docs_versions WHERE name = ?", [name])
        transitions = _transitions(
            db, "SELECT * FROM docs_deployments WHERE name = ? ORDER BY position", [name]
        )
        text = render_model_doc(
            name,
            versions,
            model["production"],
            transitions,
            as_of=dt.datetime.fromisoformat(model["last_effective_at"]),
        )
        self._write(PurePosixPath(name, MODEL_DOC), text.encode())

    def _render_version(self, db: sqlite_utils.Database, name: str, version: str) -> None:
        found = _versions(
            db, "SELECT state FROM docs_versions WHERE name = ? AND version = ?", [name, version]
        )
        if not found:
            return
        state = found[0]
        # The view serves only its data here, so its loader and clock are not called.
        view = ModelVersion(name, state, self.artifacts.load, utc_now)
        folder = _version_folder(state.increment, name, version)

        self._copy_artifact(folder / artifact_file_name(state.artifact.format), state, name)
        metadata = orjson.dumps(view.metadata, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
        self._write(folder / "metadata.json", metadata)
        self._write(folder / "requirements.txt", requirements_text(view.environment).encode())
        self._write(folder / "features.yaml", features_yaml(view).encode())

    def _render_increment(self, db: sqlite_utils.Database, increment: str | None) -> None:
        by_model: dict[str, list[VersionState]] = {}
        for row in query_rows(db, "SELECT name, state FROM docs_versions WHERE increment IS ?", [increment]):
            by_model.setdefault(row["name"], []).append(VersionState.model_validate_json(row["state"]))
        if not by_model:
            return
        for states in by_model.values():
            states.sort(key=lambda s: sort_key(s.version))
        transitions = _transitions(
            db,
            # Driven by the increment's versions through the deployments' (name, version) indexes,
            # so the cost grows with the increment, not with every deployment of the registry.
            "SELECT d.* FROM docs_versions v JOIN docs_deployments d ON d.name = v.name AND d.version = v.version "
            "WHERE v.increment IS ? "
            "UNION SELECT d.* FROM docs_versions v JOIN docs_deployments d "
            "ON d.name = v.name AND d.from_version = v.version WHERE v.increment IS ? "
            "ORDER BY position",
            [increment, increment],
        )

        folder = PurePosixPath(INCREMENTS, increment_folder_name(increment), "registry")
        self._write(folder / "model_catalog.yaml", render_catalog(increment, by_model).encode())
        graph_data = nx.node_link_data(lineage_graph(increment, by_model), edges="edges")
        self._write(folder / "lineage_graph.json", orjson.dumps(graph_data, option=orjson.OPT_INDENT_2))
        history = render_deployment_history(increment, transitions)
        self._write(folder / "deployment_history.md", history.encode())

    # --- files ------------------------------------------------------------------

    def _checked_path(self, relative: PurePosixPath) -> Path:
        """Return ``root / relative`` after checking that it stays under the root.

        Neither its folder nor a symbolic link at the path itself may lead
        outside the root. A folder checked once is not checked again until the
        next render or reset.
        """
        path = self.root / relative
        if relative.is_absolute() or ".." in relative.parts:
            raise self._outside_root(relative)
        root = self._resolved_root()
        folder = path.parent
        if folder not in self._checked_folders:
            if not folder.resolve().is_relative_to(root):
                raise self._outside_root(relative)
            self._checked_folders.add(folder)
        if path.is_symlink() and not path.resolve().is_relative_to(root):
            raise self._outside_root(relative)
        return path

    def _resolved_root(self) -> Path:
        if self._root_resolved is None:
            self._root_resolved = self.root.resolve()
        return self._root_resolved

    def _outside_root(self, relative: PurePosixPath) -> InvalidInput:
        return InvalidInput(
            f"docs path {relative} is outside the docs root {self._resolved_root()}; "
            "check the folder for symbolic links that point elsewhere",
            value=str(relative),
        )

    def _forget_checked_folders(self) -> None:
        """Check folders again from now on, since a user may have replaced one with a link meanwhile."""
        self._checked_folders = set()
        self._made_folders = set()
        self._root_resolved = None

    def _write(self, relative: PurePosixPath, data: bytes) -> None:
        """Queue a file of the chunk being rendered; ``_write_queued`` writes it."""
        self._queued.append((relative, data))
        self._queued_bytes += len(data)

    def _copy_artifact(self, relative: PurePosixPath, state: VersionState, name: str) -> None:
        """Queue the copy of the version's blob into its folder; ``_write_queued`` copies it."""
        self._queued.append((relative, _ArtifactCopy(state, name)))

    def _write_queued(self, db: sqlite_utils.Database) -> None:
        """Write the files queued by the chunk's renders, after recording them all in one transaction.

        A file is recorded before it is written, so reset() finds it even after a crash.
        """
        queued, self._queued = self._queued, []
        self._queued_bytes = 0
        checked = [(self._checked_path(relative), relative, content) for relative, content in queued]
        with immediate_transaction(db):
            db.conn.executemany(
                "INSERT OR IGNORE INTO docs_files (path) VALUES (?)",
                [(relative.as_posix(),) for _, relative, _ in checked],
            )
        for path, relative, content in checked:
            if path.parent not in self._made_folders:
                path.parent.mkdir(parents=True, exist_ok=True)
                self._made_folders.add(path.parent)
            if isinstance(content, bytes):
                _write_atomically(path, [content])
            else:
                self._copy_blob(path, relative, content)

    def _copy_blob(self, path: Path, relative: PurePosixPath, copy: _ArtifactCopy) -> None:
        """Copy the version's blob to ``path``, checking the digest on the way."""
        state, name = copy.state, copy.name
        # The registry never rewrites a blob, so a copy of the recorded size is taken as this blob's copy.
        if path.is_file() and path.stat().st_size == state.artifact.size:
            return
        source = self.artifacts.path_of(state.artifact.sha256)
        digest = hashlib.sha256()

        def chunks() -> Iterable[bytes]:
            with source.open("rb") as stream:
                while chunk := stream.read(_COPY_CHUNK):
                    digest.update(chunk)
                    yield chunk
            if digest.hexdigest() != state.artifact.sha256:
                raise _DigestMismatch(digest.hexdigest())

        try:
            _write_atomically(path, chunks())
        except FileNotFoundError:
            logger.error(
                "artifact of %s %s is missing from %s, so %s was not written; "
                "restore the blob, then rebuild the docs projection",
                name,
                state.version,
                source,
                relative,
            )
        except _DigestMismatch as mismatch:
            logger.error(
                "artifact of %s %s at %s has sha256 %s, but the registry recorded %s, so %s was not written; "
                "restore the blob, then rebuild the docs projection",
                name,
                state.version,
                source,
                mismatch.actual,
                state.artifact.sha256,
                relative,
            )

    def _remove_empty_folders(self, folder: Path) -> None:
        root = self.root.resolve()
        while folder.resolve() != root and folder.resolve().is_relative_to(root):
            try:
                folder.rmdir()
            except OSError:  # not empty, or already gone
                return
            folder = folder.parent


@dataclass(frozen=True)
class _ArtifactCopy:
    """A queued copy of a version's blob into its docs folder."""

    state: VersionState
    name: str


class _DigestMismatch(Exception):
    def __init__(self, actual: str) -> None:
        super().__init__(actual)
        self.actual = actual


def _write_atomically(path: Path, chunks: Iterable[bytes]) -> None:
    write_atomically(path, chunks)


def _version_folder(increment: str | None, name: str, version: str) -> PurePosixPath:
    return PurePosixPath(INCREMENTS, increment_folder_name(increment), "models", f"{name}-{version}")


# --- state in the projection's tables -------------------------------------------


def _one(db: sqlite_utils.Database, sql: str, parameters: Sequence[Any]) -> dict[str, Any] | None:
    rows = list(query_rows(db, sql, parameters))
    return rows[0] if rows else None


def _versions(db: sqlite_utils.Database, sql: str, parameters: Sequence[Any]) -> list[VersionState]:
    return [VersionState.model_validate_json(row["state"]) for row in query_rows(db, sql, parameters)]


def _target(target: list[Any]) -> str:
    return orjson.dumps(target).decode()


def _mark(db: sqlite_utils.Database, target: list[Any]) -> None:
    db.execute("INSERT OR IGNORE INTO docs_pending (target) VALUES (?)", [_target(target)])


def _partial_aggregate(model: dict[str, Any]) -> ModelAggregate:
    """Return a model aggregate with no versions loaded yet; ``_load_versions`` adds them.

    The model events' handlers change only the versions the event names and the
    model's production version, so the other versions can stay in the table.
    """
    aggregate = ModelAggregate(
        uuid.UUID(model["model_id"]), model["name"], dt.datetime.fromisoformat(model["created_on"])
    )
    aggregate.production = model["production"]
    aggregate.last_effective_at = dt.datetime.fromisoformat(model["last_effective_at"])
    return aggregate


def _load_versions(db: sqlite_utils.Database, aggregate: ModelAggregate, event: DomainEvent) -> set[str]:
    """Load the versions ``event`` reads and changes that are not loaded yet, and return their numbers.

    An event the projection does not know may change any version, so it gets all of them.
    """
    if isinstance(event, _KNOWN_MODEL_EVENTS):
        versions = event.named_versions()
        missing = sorted(versions - aggregate.versions.keys())
        placeholders = ", ".join("?" for _ in missing)
        sql = f"SELECT state FROM docs_versions WHERE name = ? AND version IN ({placeholders})"
        states = _versions(db, sql, [aggregate.name, *missing]) if missing else []
    else:
        states = _versions(db, "SELECT state FROM docs_versions WHERE name = ?", [aggregate.name])
    for state in states:
        aggregate.versions.setdefault(state.version, state)
    if not isinstance(event, _KNOWN_MODEL_EVENTS):
        return set(aggregate.versions)
    return versions & aggregate.versions.keys()


def _save(db: sqlite_utils.Database, aggregate: ModelAggregate, versions: Sequence[str]) -> None:
    rows = []
    for version in versions:
        state = aggregate.versions[version]
        metrics = metrics_of(state.metadata)
        rows.append(
            (
                aggregate.name,
                state.version,
                state.stage,
                state.increment,
                metrics.get("accuracy"),
                metrics.get("inference_latency_p50"),
                state.deployed_at.isoformat() if state.deployed_at else None,
                state.model_dump_json(),
            )
        )
    # Plain SQL, as for the deployments: sqlite-utils' insert inspects the table on each call.
    db.conn.executemany(
        "INSERT OR REPLACE INTO docs_versions (name, version, stage, increment, accuracy, "
        "inference_latency_p50, deployed_at, state) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    db.execute(
        "UPDATE docs_models SET production = ?, last_effective_at = ? WHERE model_id = ?",
        [aggregate.production, aggregate.last_effective_at.isoformat(), str(aggregate.id)],
    )


def _record_transition(
    db: sqlite_utils.Database, name: str, event: DomainEvent, position: int, previous_stages: dict[str, str]
) -> None:
    row: dict[str, Any] = {
        "position": position,
        "name": name,
        "event": type(event).__name__,
        "actor": event.actor,
        "effective_at": event.effective_at.isoformat(),
        "increment": event.increment,
        "from_version": None,
        "from_stage": None,
        "to_stage": None,
        "reason": None,
        "approved_by": "[]",
        "automatic": 0,
        "end_of_life": None,
    }
    if isinstance(event, Registered):
        row.update(version=event.version, to_stage=event.stage)
    elif isinstance(event, Promoted):
        row.update(
            version=event.version,
            from_stage=event.from_stage,
            to_stage=event.to_stage,
            reason=event.reason,
            approved_by=orjson.dumps(event.approved_by).decode(),
        )
    elif isinstance(event, RolledBack):
        row.update(
            version=event.to_version,
            from_version=event.from_version,
            from_stage=previous_stages.get(event.to_version),
            to_stage="production",
            reason=event.reason,
            automatic=int(event.automatic),
        )
    elif isinstance(event, Deprecated):
        row.update(
            version=event.version,
            reason=event.reason,
            end_of_life=event.end_of_life.isoformat() if event.end_of_life else None,
        )
    columns = ", ".join(row)
    placeholders = ", ".join("?" for _ in row)
    # Plain SQL: sqlite-utils' insert inspects the table on each call, which costs more than the insert.
    db.execute(f"INSERT OR REPLACE INTO docs_deployments ({columns}) VALUES ({placeholders})", list(row.values()))


def _transitions(db: sqlite_utils.Database, sql: str, parameters: Sequence[Any]) -> list[Transition]:
    return [
        Transition(
            position=row["position"],
            name=row["name"],
            version=row["version"],
            event=row["event"],
            actor=row["actor"],
            effective_at=dt.datetime.fromisoformat(row["effective_at"]),
            increment=row["increment"],
            from_version=row["from_version"],
            from_stage=row["from_stage"],
            to_stage=row["to_stage"],
            reason=row["reason"],
            approved_by=tuple(orjson.loads(row["approved_by"])),
            automatic=bool(row["automatic"]),
            end_of_life=dt.datetime.fromisoformat(row["end_of_life"]) if row["end_of_life"] else None,
        )
        for row in query_rows(db, sql, parameters)
    ]


# --- model-registry.md ------------------------------------------------------------


def render_model_doc(
    name: str,
    versions: Sequence[VersionState],
    production: str | None,
    transitions: Sequence[Transition],
    *,
    as_of: dt.datetime,
) -> str:
    """Render ``model-registry.md``: the production model, the version history and the rollback plan.

    ``as_of`` is the effective time of the model's last event. It decides whether
    an end of life has passed, so the same events always give the same file.
    """
    by_version = {state.version: state for state in versions}
    lines = [
        f"# {name}",
        "",
        (
            f"Generated from the registry's events up to {_time(as_of)}. "
            "The docs projection rewrites this file, so edits to it are lost."
        ),
        "",
        "## Current production model",
        "",
    ]
    lines += _production_section(by_version.get(production) if production else None)
    lines += ["", "## Version history", ""]
    lines += _history_table(versions, transitions, as_of)
    lines += ["", "## Rollback plan", ""]
    lines += _rollback_section(name, versions, production, transitions, as_of)
    return "\n".join(lines) + "\n"


def _production_section(state: VersionState | None) -> list[str]:
    if state is None:
        return ["No version is in production."]
    metrics = metrics_of(state.metadata)
    approvers = [a for a, d in state.decisions.get("production", {}).items() if d.decision == "approved"]
    lines = [
        f"- Version: {state.version}",
        f"- Deployed: {_time(state.deployed_at)}",
        f"- Accuracy: {_number(metrics.get('accuracy'))}",
        f"- p50 latency: {_number(metrics.get('inference_latency_p50'), ' ms')}",
        f"- Registered by {state.registered_by} in {_increment_label(state.increment)}",
    ]
    if approvers:
        lines.append(f"- Approved for production by {', '.join(approvers)}")
    if state.deprecation is not None:
        lines.append(f"- Deprecated: {_cell(state.deprecation.reason)}")
    return lines


def _history_table(
    versions: Sequence[VersionState], transitions: Sequence[Transition], as_of: dt.datetime
) -> list[str]:
    if not versions:
        return ["No version is registered."]
    lines = ["| Version | Stage | Accuracy | Deployed | Notes |", "|---|---|---|---|---|"]
    for state in sorted(versions, key=lambda s: sort_key(s.version), reverse=True):
        accuracy = _number(metrics_of(state.metadata).get("accuracy"))
        deployed = _time(state.deployed_at) if state.deployed_at else "never"
        notes = " ".join(version_notes(state.version, transitions, as_of))
        lines.append(f"| {state.version} | {state.stage} | {accuracy} | {deployed} | {_cell(notes)} |")
    return lines


def version_notes(version: str, transitions: Sequence[Transition], as_of: dt.datetime) -> list[str]:
    """Summarise what happened to ``version``: replacements, rollbacks and deprecation, oldest first."""
    notes = []
    for index, transition in enumerate(transitions):
        if transition.version != version and transition.from_version != version:
            continue
        when = _time(transition.effective_at)
        if transition.event == "RolledBack" and transition.from_version == version:
            notes.append(f"Rolled back to {transition.version} on {when}: {transition.reason}.")
        elif transition.version != version:
            continue
        elif transition.event == "RolledBack":
            kind = "an automatic rollback" if transition.automatic else "a rollback"
            notes.append(f"Restored to production by {kind} on {when}: {transition.reason}.")
        elif transition.event == "Promoted" and transition.from_stage == "production":
            successor = next(
                (t for t in transitions[index + 1 :] if t.to_stage == "production" and t.version != version),
                None,
            )
            if successor is not None and successor.event == "Promoted":
                notes.append(f"Replaced by {successor.version} on {_time(successor.effective_at)}.")
            else:
                notes.append(
                    f"Left production on {when}" + (f": {transition.reason}." if transition.reason else ".")
                )
        elif transition.event == "Deprecated":
            notes.append(_deprecation_note(transition, as_of))
    return notes


def _deprecation_note(transition: Transition, as_of: dt.datetime) -> str:
    end_of_life = transition.end_of_life
    if end_of_life is None:
        return f"Deprecated on {_time(transition.effective_at)}: {transition.reason}."
    reached = "reached on " if end_of_life <= as_of else ""
    return (
        f"Deprecated on {_time(transition.effective_at)} (end of life {reached}{_time(end_of_life)}): "
        f"{transition.reason}."
    )


def rollback_candidate(
    versions: Sequence[VersionState],
    production: str | None,
    as_of: dt.datetime,
    rolled_back_from: Collection[str] = (),
) -> VersionState | None:
    """Return the stable version to roll back to, or None when there is none.

    It is the most recently deployed version, other than ``production``, that
    was in production, is not deprecated, and is not a version that production
    was rolled back away from (those listed in ``rolled_back_from``).
    """
    candidates = [
        state
        for state in versions
        if state.version != production and not _unstable_reasons(state, as_of, rolled_back_from)
        and state.ever_in_production
    ]
    if not candidates:
        return None
    return max(candidates, key=lambda s: (s.deployed_at or s.created_at, sort_key(s.version)))


def _unstable_reasons(state: VersionState, as_of: dt.datetime, rolled_back_from: Collection[str]) -> list[str]:
    reasons = []
    if state.version in rolled_back_from:
        reasons.append("production was rolled back away from it")
    if _past_end_of_life(state, as_of):
        assert state.deprecation is not None
        reasons.append(f"it is past its end of life ({_time(state.deprecation.end_of_life)})")
    elif state.deprecation is not None:
        reasons.append(f"it is deprecated ({state.deprecation.reason})")
    return reasons


def _rollback_section(
    name: str,
    versions: Sequence[VersionState],
    production: str | None,
    transitions: Sequence[Transition],
    as_of: dt.datetime,
) -> list[str]:
    rolled_back_from = {t.from_version for t in transitions if t.event == "RolledBack" and t.from_version}
    candidate = rollback_candidate(versions, production, as_of, rolled_back_from)
    if candidate is None:
        return [_no_candidate_reason(versions, production, as_of, rolled_back_from)]

    target = candidate.version
    return [
        (
            f"Return to **{target}**, the most recently deployed other version that was in production "
            f"and is neither deprecated nor rolled back from (last deployed {_time(candidate.deployed_at)})."
        ),
        "",
        'From the command line, with the reason in place of "...", which the audit trail keeps:',
        "",
        "```sh",
        f'registry rollback {name} --to {target} --reason "..."',
        "```",
        "",
        "From Python:",
        "",
        "```python",
        f'registry.rollback("{name}", to_version="{target}", reason="...")',
        "```",
    ]


def _no_candidate_reason(
    versions: Sequence[VersionState], production: str | None, as_of: dt.datetime, rolled_back_from: Collection[str]
) -> str:
    earlier = [s for s in versions if s.ever_in_production and s.version != production]
    if not earlier:
        others = f"other than {production} " if production else ""
        return f"No rollback candidate: no version {others}has been in production."
    listed = "; ".join(
        f"{s.version}: {' and '.join(_unstable_reasons(s, as_of, rolled_back_from))}"
        for s in sorted(earlier, key=lambda s: sort_key(s.version))
    )
    return f"No rollback candidate: no other version that was in production is stable ({listed})."


def _past_end_of_life(state: VersionState, as_of: dt.datetime) -> bool:
    deprecation = state.deprecation
    return bool(deprecation and deprecation.end_of_life and deprecation.end_of_life <= as_of)


# --- the increment's registry files -----------------------------------------------


def render_catalog(increment: str | None, by_model: dict[str, list[VersionState]]) -> str:
    """Render ``model_catalog.yaml``: the versions registered under ``increment``, by model."""
    models: dict[str, Any] = {}
    for name in sorted(by_model):
        entries = []
        for state in by_model[name]:
            folder = PurePosixPath("models", f"{name}-{state.version}")
            entries.append(
                {
                    "version": state.version,
                    "stage": state.stage,
                    "registered_at": _time(state.created_at),
                    "registered_by": state.registered_by,
                    "deployed_at": _time(state.deployed_at) if state.deployed_at else None,
                    "metrics": metrics_of(state.metadata),
                    "tags": list(state.tags),
                    "artifact": {
                        "sha256": state.artifact.sha256,
                        "size": state.artifact.size,
                        "format": state.artifact.format,
                        "file": (folder / artifact_file_name(state.artifact.format)).as_posix(),
                    },
                    "deprecation": (
                        {
                            "reason": state.deprecation.reason,
                            "end_of_life": _time(state.deprecation.end_of_life)
                            if state.deprecation.end_of_life
                            else None,
                        }
                        if state.deprecation
                        else None
                    ),
                }
            )
        models[name] = {"versions": entries}
    document = {"increment": increment, "models": models}
    return yaml.dump(document, Dumper=YAML_DUMPER, sort_keys=False, allow_unicode=True)


def lineage_graph(increment: str | None, by_model: dict[str, list[VersionState]]) -> nx.DiGraph:
    """Build the lineage of the increment's versions from their metadata.

    Each version contributes the chain data → feature engineering → experiment
    → model → deployment, skipping the links its metadata lacks. A version with
    a ``parent_model`` gets an edge from the parent's model node. The deployment
    node is per model (``deployment:NAME:production``), so models do not share it.
    """
    graph = nx.DiGraph(increment=increment)
    for name in sorted(by_model):
        for state in by_model[name]:
            _add_version_lineage(graph, name, state)
    return graph


def _add_version_lineage(graph: nx.DiGraph, name: str, state: VersionState) -> None:
    # Node ids, kinds and relations are those of the lineage projection, so this
    # file and get_lineage() describe the same graph.
    metadata = state.metadata
    model = lineage.model_node(name, state.version)
    graph.add_node(
        model,
        kind=lineage.MODEL,
        label=f"{name}-{state.version}",
        name=name,
        version=state.version,
        stage=state.stage,
        increment=state.increment,
    )

    chain = []
    for key, kind in (
        ("training_data_version", lineage.DATA),
        ("feature_engineering_version", lineage.FEATURE_SET),
        ("experiment", lineage.EXPERIMENT),
    ):
        value = metadata.get(key)
        if value:
            node = f"{kind}:{value}"
            graph.add_node(node, kind=kind, label=str(value))
            chain.append((kind, node))
    chain.append((lineage.MODEL, model))
    for (source_kind, source), (target_kind, target) in itertools.pairwise(chain):
        graph.add_edge(source, target, relation=_relation(source_kind, target_kind))

    parent = metadata.get("parent_model")
    if parent:
        parent_node = f"{lineage.MODEL}:{parent}"
        if parent_node not in graph:
            # The parent may belong to another increment, and then its node carries only its label.
            graph.add_node(parent_node, kind=lineage.MODEL, label=str(parent))
        graph.add_edge(parent_node, model, relation=lineage.PARENT_OF)

    if state.ever_in_production:
        deployment = lineage.deployment_node(name)
        graph.add_node(
            deployment, kind=lineage.DEPLOYMENT, label=f"{name}/production", name=name, stage="production"
        )
        graph.add_edge(
            model,
            deployment,
            relation=lineage.DEPLOYED_TO,
            current=state.stage == "production",
            last_deployed_at=_time(state.deployed_at) if state.deployed_at else None,
        )


def render_deployment_history(increment: str | None, transitions: Sequence[Transition]) -> str:
    """Render ``deployment_history.md``: the lifecycle events of the increment's versions."""
    lines = [
        f"# Deployment history of {_increment_label(increment)}",
        "",
        (
            f"Registrations, stage transitions, rollbacks and deprecations of the versions registered in "
            f"{_increment_label(increment)}, oldest first. Times are when each change took effect."
        ),
        "",
        "| Time | Model | Version | Event | From | To | Actor | Approved by | Reason |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for t in transitions:
        event = t.event
        if t.event == "RolledBack":
            event = f"RolledBack from {t.from_version or 'no production version'}"
            if t.automatic:
                event += " (automatic)"
        elif t.event == "Deprecated" and t.end_of_life is not None:
            event = f"Deprecated (end of life {_time(t.end_of_life)})"
        cells = [
            _time(t.effective_at),
            t.name,
            t.version,
            event,
            t.from_stage or "",
            t.to_stage or "",
            t.actor,
            ", ".join(t.approved_by),
            t.reason or "",
        ]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


# --- formatting -------------------------------------------------------------------


def _time(value: dt.datetime | None) -> str:
    return value.isoformat(timespec="seconds") if value is not None else "unknown"


def _number(value: float | None, unit: str = "") -> str:
    return f"{value:g}{unit}" if value is not None else "not recorded"


def _cell(text: object) -> str:
    """Return ``text`` on one line with its pipes escaped, so it fits a Markdown table cell."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _increment_label(increment: str | None) -> str:
    return f"increment {increment}" if increment is not None else "no increment"


def _relation(source_kind: str, target_kind: str) -> str:
    """Return the lineage projection's relation between two kinds of chain node."""
    if target_kind == lineage.MODEL:
        return lineage.PRODUCED if source_kind == lineage.EXPERIMENT else lineage.TRAINED
    if target_kind == lineage.EXPERIMENT:
        return lineage.USED_BY
    return lineage.PROCESSED_BY
