"""The catalog read model: models and versions with their current state.

It serves ``list_models`` and ``list_versions``. Each event is applied to a
partial model aggregate that holds only the versions the event names and the
production pointer, using the aggregate's own event handlers, so the catalog
cannot drift from the rules of the write side.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import orjson
import sqlite_utils

from projections.rows import query_rows
from registry.aggregate import ModelAggregate
from registry.errors import InvalidInput
from registry.events import DomainEvent, ModelCreated, Registered
from registry.metadata import metrics_of
from registry.records import VersionState
from registry.versioning import precedence_key
from registry.views import full_metadata

MODELS = "catalog_models"
VERSIONS = "catalog_versions"
METRICS = "catalog_metrics"
TAGS = "catalog_tags"


class CatalogProjection:
    """Keeps one row per model and per version, plus metric and tag index tables."""

    name: ClassVar[str] = "catalog"

    def __init__(self) -> None:
        # The models that the current page's events changed, by aggregate id; None marks other streams.
        self._page: dict[str, _PageEntry | None] = {}

    def create_schema(self, db: sqlite_utils.Database) -> None:
        db[MODELS].create(  # type: ignore[union-attr]
            {
                "name": str,
                "id": str,
                "aggregate_version": int,
                "production_version": str,
                "latest_version": str,
                "latest_key": str,
                "version_count": int,
                "created_at": str,
                "updated_at": str,
                "last_effective_at": str,
            },
            pk="name",
            if_not_exists=True,
        )
        db[VERSIONS].create(  # type: ignore[union-attr]
            {
                "name": str,
                "version": str,
                "precedence": str,
                "stage": str,
                "deprecated": int,
                "end_of_life": str,
                "registered_by": str,
                "created_at": str,
                "updated_at": str,
                "deployed_at": str,
                "state": str,
                "metadata": str,
            },
            pk=("name", "version"),
            if_not_exists=True,
        )
        # Catalogs written before the metadata column get it empty, and a view of such a row
        # builds its metadata from the state instead.
        if "metadata" not in db[VERSIONS].columns_dict:  # type: ignore[union-attr]
            db[VERSIONS].add_column("metadata", str)  # type: ignore[union-attr]
        db[METRICS].create(  # type: ignore[union-attr]
            {"name": str, "version": str, "metric": str, "value": float},
            pk=("name", "version", "metric"),
            if_not_exists=True,
        )
        db[TAGS].create(  # type: ignore[union-attr]
            {"name": str, "version": str, "tag": str},
            pk=("name", "version", "tag"),
            if_not_exists=True,
        )
        db.execute(f"CREATE UNIQUE INDEX IF NOT EXISTS {MODELS}_id ON {MODELS} (id)")
        db.execute(f"CREATE INDEX IF NOT EXISTS {VERSIONS}_order ON {VERSIONS} (name, precedence)")
        db.execute(f"CREATE INDEX IF NOT EXISTS {VERSIONS}_stage ON {VERSIONS} (stage, name)")
        db.execute(f"CREATE INDEX IF NOT EXISTS {METRICS}_value ON {METRICS} (metric, value)")
        db.execute(f"CREATE INDEX IF NOT EXISTS {TAGS}_tag ON {TAGS} (tag)")
        # Filters of list_versions find a model's versions with a tag, or within a metric's bounds, here.
        db.execute(f"CREATE INDEX IF NOT EXISTS {TAGS}_lookup ON {TAGS} (name, tag, version)")
        db.execute(f"CREATE INDEX IF NOT EXISTS {METRICS}_lookup ON {METRICS} (name, metric, value, version)")

    def reset(self, db: sqlite_utils.Database) -> None:
        for table in (MODELS, VERSIONS, METRICS, TAGS):
            db.execute(f"DELETE FROM {table}")

    def after_batch(self, db: sqlite_utils.Database) -> None:
        return None

    def apply(self, db: sqlite_utils.Database, event: DomainEvent, position: int) -> None:
        if isinstance(event, ModelCreated):
            db.execute(
                f"INSERT INTO {MODELS} (name, id, aggregate_version, version_count, created_at, updated_at, "
                "last_effective_at) VALUES (?, ?, ?, 0, ?, ?, ?)",
                [event.name, str(event.originator_id), event.originator_version, event.timestamp.isoformat(), event.timestamp.isoformat(),
                 event.effective_at.isoformat()],
            )
            return
        entry = self._entry(db, event)
        if entry is None:
            # Registry settings events and events of other aggregates have no catalog rows.
            return
        touched = event.named_versions()
        _load_versions(db, entry.aggregate, touched)
        event.mutate(entry.aggregate)
        entry.changed.update(touched & entry.aggregate.versions.keys())
        if isinstance(event, Registered):
            entry.registered.append(event.version)
            entry.row["version_count"] += 1
            key = precedence_key(event.version)
            if entry.row["latest_key"] is None or key > entry.row["latest_key"]:
                entry.row["latest_version"], entry.row["latest_key"] = event.version, key

    def end_page(self, db: sqlite_utils.Database) -> None:
        """Write the rows of the models and versions that the page's events changed."""
        for entry in self._page.values():
            if entry is None:
                continue
            aggregate, row = entry.aggregate, entry.row
            for version in sorted(entry.changed):
                _upsert_version(db, aggregate.name, aggregate.versions[version])
            for version in entry.registered:
                _replace_index_rows(db, aggregate.name, aggregate.versions[version])
            db.execute(
                f"UPDATE {MODELS} SET aggregate_version = ?, production_version = ?, latest_version = ?, "
                "latest_key = ?, version_count = ?, updated_at = ?, last_effective_at = ? WHERE name = ?",
                [aggregate.version, aggregate.production, row["latest_version"], row["latest_key"],
                 row["version_count"], aggregate.modified_on.isoformat(), aggregate.last_effective_at.isoformat(),
                 aggregate.name],
            )  # fmt: skip
        self._page = {}

    def discard_page(self) -> None:
        self._page = {}

    def _entry(self, db: sqlite_utils.Database, event: DomainEvent) -> _PageEntry | None:
        """Return the page's state of the event's model, loading its row on first use; None if not a model."""
        key = str(event.originator_id)
        if key not in self._page:
            row = _model_row_by_id(db, event)
            self._page[key] = None if row is None else _PageEntry(row, _partial_aggregate(row, event))
        return self._page[key]


@dataclass
class _PageEntry:
    """One model's row and partial aggregate while a page of events is applied."""

    row: dict[str, Any]
    aggregate: ModelAggregate
    changed: set[str] = field(default_factory=set)
    registered: list[str] = field(default_factory=list)


def _model_row_by_id(db: sqlite_utils.Database, event: DomainEvent) -> dict[str, Any] | None:
    rows = list(query_rows(db, f"SELECT * FROM {MODELS} WHERE id = ?", [str(event.originator_id)]))
    return rows[0] if rows else None


def _partial_aggregate(row: Mapping[str, Any], event: DomainEvent) -> ModelAggregate:
    """Return the model's aggregate with no versions loaded yet; ``_load_versions`` adds them."""
    aggregate = ModelAggregate(event.originator_id, row["name"], dt.datetime.fromisoformat(row["created_at"]))
    aggregate.version = row["aggregate_version"]
    aggregate.production = row["production_version"]
    aggregate.last_effective_at = dt.datetime.fromisoformat(row["last_effective_at"])
    return aggregate


def _load_versions(db: sqlite_utils.Database, aggregate: ModelAggregate, versions: set[str]) -> None:
    for version in versions - aggregate.versions.keys():
        sql = f"SELECT state FROM {VERSIONS} WHERE name = ? AND version = ?"
        state_rows = list(query_rows(db, sql, [aggregate.name, version]))
        if state_rows:
            aggregate.versions[version] = VersionState.model_validate_json(state_rows[0]["state"])


def _upsert_version(db: sqlite_utils.Database, name: str, state: VersionState) -> None:
    deprecation = state.deprecation
    db.execute(
        f"INSERT INTO {VERSIONS} (name, version, precedence, stage, deprecated, end_of_life, registered_by, "
        "created_at, updated_at, deployed_at, state, metadata) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT(name, version) DO UPDATE SET stage = excluded.stage, deprecated = excluded.deprecated, "
        "end_of_life = excluded.end_of_life, updated_at = excluded.updated_at, "
        "deployed_at = excluded.deployed_at, state = excluded.state, metadata = excluded.metadata",
        [
            name,
            state.version,
            precedence_key(state.version),
            state.stage,
            int(deprecation is not None),
            deprecation.end_of_life.isoformat() if deprecation and deprecation.end_of_life else None,
            state.registered_by,
            state.created_at.isoformat(),
            state.updated_at.isoformat(),
            state.deployed_at.isoformat() if state.deployed_at else None,
            state.model_dump_json(),
            orjson.dumps(full_metadata(name, state, shared=False)).decode(),
        ],
    )


def _replace_index_rows(db: sqlite_utils.Database, name: str, state: VersionState) -> None:
    db.execute(f"DELETE FROM {METRICS} WHERE name = ? AND version = ?", [name, state.version])
    db.execute(f"DELETE FROM {TAGS} WHERE name = ? AND version = ?", [name, state.version])
    for metric, value in metrics_of(state.metadata).items():
        db.execute(f"INSERT INTO {METRICS} (name, version, metric, value) VALUES (?, ?, ?, ?)", [name, state.version, metric, value])
    for tag in state.tags:
        db.execute(f"INSERT INTO {TAGS} (name, version, tag) VALUES (?, ?, ?)", [name, state.version, tag])


# --- queries --------------------------------------------------------------------


@dataclass(frozen=True)
class CatalogModel:
    """One row of the models table."""

    name: str
    latest_version: str | None
    production_version: str | None
    version_count: int
    created_at: dt.datetime
    updated_at: dt.datetime


def list_model_rows(db: sqlite_utils.Database) -> list[CatalogModel]:
    """Return every model, by name."""
    return [
        CatalogModel(
            name=row["name"],
            latest_version=row["latest_version"],
            production_version=row["production_version"],
            version_count=row["version_count"],
            created_at=dt.datetime.fromisoformat(row["created_at"]),
            updated_at=dt.datetime.fromisoformat(row["updated_at"]),
        )
        for row in query_rows(db, f"SELECT * FROM {MODELS} ORDER BY name")
    ]


def stage_counts(db: sqlite_utils.Database) -> dict[str, dict[str, int]]:
    """Return, per model, how many versions are in each stage."""
    counts: dict[str, dict[str, int]] = {}
    for row in query_rows(db, f"SELECT name, stage, COUNT(*) AS n FROM {VERSIONS} GROUP BY name, stage"):
        counts.setdefault(row["name"], {})[row["stage"]] = row["n"]
    return counts


def has_model(db: sqlite_utils.Database, name: str) -> bool:
    return db.execute(f"SELECT 1 FROM {MODELS} WHERE name = ?", [name]).fetchone() is not None


# One version as the catalog stores it: version, stage, metadata JSON (None in catalogs older
# than that column) and state JSON. Plain tuples, because a list can hold thousands of them.
VersionRow = tuple[str, str, "str | None", str]


@dataclass(frozen=True)
class VersionPage:
    """Version rows in precedence order, and the token of the next page (None on the last)."""

    rows: list[VersionRow]
    next_page_token: str | None


def select_versions(
    db: sqlite_utils.Database,
    name: str,
    *,
    stage: str | None = None,
    tags: Sequence[str] = (),
    min_metrics: Mapping[str, float] | None = None,
    max_metrics: Mapping[str, float] | None = None,
    page_size: int | None = None,
    page_token: str | None = None,
) -> VersionPage:
    """Return the versions of ``name`` that pass every filter, lowest first.

    Paging is by key, not offset: a page starts after the last version of the
    previous page, so rows are never repeated or skipped while writes go on.
    Tag and metric filters select from their index tables, so a filter that
    keeps few versions reads few rows.
    """
    # Each tag and metric bound selects a set of versions from its index table. The first set
    # drives the query, so that only its rows of the versions table are read, and the others are
    # tested by membership. CROSS JOIN fixes that order: without it, SQLite's planner walks
    # all of the model's versions in precedence order to save a sort.
    filters: list[tuple[str, list[Any]]] = [
        (f"SELECT version FROM {TAGS} WHERE name = ? AND tag = ?", [name, tag]) for tag in tags
    ]
    for bounds, operator in ((min_metrics or {}, ">="), (max_metrics or {}, "<=")):
        for metric, bound in bounds.items():
            filters.append(
                (f"SELECT version FROM {METRICS} WHERE name = ? AND metric = ? AND value {operator} ?", [name, metric, bound])
            )
    params: list[Any] = []
    source = f"{VERSIONS} v"
    if filters:
        driver, driver_params = filters[0]
        params = list(driver_params)
        source = f"({driver}) f CROSS JOIN {VERSIONS} v"
    clauses = ["v.name = ?"]
    params.append(name)
    if filters:
        clauses.append("v.version = f.version")
    for subquery, subquery_params in filters[1:]:
        clauses.append(f"v.version IN ({subquery})")
        params += subquery_params
    if stage is not None:
        clauses.append("v.stage = ?")
        params.append(stage)
    if page_token is not None:
        clauses.append("v.precedence > ?")
        params.append(_decode_token(page_token))
    where = f"FROM {source} WHERE {' AND '.join(clauses)} ORDER BY v.precedence"
    if page_size is None:
        # The rows are returned as SQLite gives them, with no copy.
        sql = f"SELECT v.version, v.stage, v.metadata, v.state {where}"
        return VersionPage(db.conn.execute(sql, params).fetchall(), None)
    params.append(page_size + 1)
    sql = f"SELECT v.precedence, v.version, v.stage, v.metadata, v.state {where} LIMIT ?"
    rows = db.conn.execute(sql, params).fetchall()
    next_token = None
    if len(rows) > page_size:
        rows = rows[:page_size]
        next_token = _encode_token(rows[-1][0])
    return VersionPage([row[1:] for row in rows], next_token)


def _encode_token(precedence: str) -> str:
    return base64.urlsafe_b64encode(orjson.dumps({"after": precedence})).decode()


def _decode_token(token: str) -> str:
    try:
        after = orjson.loads(base64.urlsafe_b64decode(token.encode()))["after"]
    except (ValueError, KeyError, TypeError):
        raise InvalidInput(
            f"invalid page_token {token!r}: pass the next_page_token of the previous page unchanged",
            value=token,
        ) from None
    # A token contains the sort key of a version, which must rebuild from the version it names.
    if not isinstance(after, str) or not _is_precedence_key(after):
        raise InvalidInput(
            f"invalid page_token {token!r}: pass the next_page_token of the previous page unchanged", value=token
        )
    return after


def _is_precedence_key(text: str) -> bool:
    try:
        return precedence_key(text.rsplit("|", 1)[-1]) == text
    except InvalidInput:
        return False



