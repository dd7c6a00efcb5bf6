"""The projection runner: follows the event store's notification log.

Each projection keeps its position in a ``tracking`` table of the read-model
database. The runner reads notifications in pages and applies each page in
one transaction that also moves the position, so an event is applied exactly
once even when the runner is killed between two pages.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import logging
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Protocol

import sqlite_utils
from eventsourcing.persistence import ApplicationRecorder, Mapper

from registry.artifacts import ArtifactStore
from registry.errors import InvalidInput
from registry.events import DomainEvent

logger = logging.getLogger(__name__)

# Notifications read and applied per transaction.
DEFAULT_BATCH_SIZE = 500

# The read database's page cache, at most, and the part of its file that is read through a memory map.
READ_CACHE_KIBIBYTES = 32 * 1024
READ_MAP_BYTES = 256 * 1024 * 1024

# Tries to switch a new read database to WAL while other processes open it too (about 5 s in all).
WAL_SWITCH_ATTEMPTS = 14


class Projection(Protocol):
    """A read model that derives its tables, or files, from the registry's events."""

    name: ClassVar[str]

    def create_schema(self, db: sqlite_utils.Database) -> None:
        """Create the projection's tables when they are missing."""

    def reset(self, db: sqlite_utils.Database) -> None:
        """Delete every row the projection wrote, inside the caller's transaction."""

    def apply(self, db: sqlite_utils.Database, event: DomainEvent, position: int) -> None:
        """Apply one event, inside the caller's transaction."""

    def end_page(self, db: sqlite_utils.Database) -> None:
        """Write what the page's events changed, inside the page's transaction; may do nothing.

        A projection may keep the state that a page's events change in memory
        and write it here once, rather than once per event.
        """

    def discard_page(self) -> None:
        """Forget the state kept for a page whose transaction rolled back."""

    def after_batch(self, db: sqlite_utils.Database) -> None:
        """Act after the last page of a catch-up commits, for example to write files; may do nothing."""


@dataclasses.dataclass(frozen=True)
class Limit:
    """The stopping point of a catch-up or rebuild: a log position, an effective time, or neither."""

    position: int | None = None
    as_of: dt.datetime | None = None

    def admits(self, event: DomainEvent) -> bool:
        return self.as_of is None or event.effective_at <= self.as_of


ProgressCallback = Callable[[int, int], None]


class ProjectionRunner:
    """Applies the event store's notifications to projections, exactly once each."""

    TRACKING_TABLE: ClassVar[str] = "tracking"

    def __init__(
        self,
        recorder: ApplicationRecorder,
        mapper: Mapper[Any],
        database_path: Path,
        projections: Sequence[Projection],
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        serves_queries: bool = False,
    ) -> None:
        """With ``serves_queries``, the database gets a larger page cache and a memory map for reading.

        They speed up listing a large model's versions, and they make the
        process's resident memory grow with the database, so a rebuild into a
        new file goes without them.
        """
        self.recorder = recorder
        self.mapper = mapper
        self.database_path = database_path
        self.projections = list(projections)
        self.batch_size = batch_size
        database_path.parent.mkdir(parents=True, exist_ok=True)
        self.db = open_read_database(database_path, serves_queries=serves_queries)
        with immediate_transaction(self.db):
            self.db[self.TRACKING_TABLE].create(  # type: ignore[union-attr]
                {
                    "projection": str,
                    "position": int,
                    "rebuilding": int,
                    "as_of": str,
                    "stop_position": int,
                    "frozen": int,
                },
                pk="projection",
                if_not_exists=True,
            )
            tracking = self.db.table(self.TRACKING_TABLE)
            for column in ("stop_position", "frozen"):
                if column not in tracking.columns_dict:
                    tracking.add_column(column, int)
            for projection in self.projections:
                projection.create_schema(self.db)

    def close(self) -> None:
        self.db.close()

    # --- positions ------------------------------------------------------------

    def position(self, projection: Projection) -> int:
        """Return the notification id of the last event applied to ``projection``."""
        row = self._tracking().get(projection.name)
        return row.position if row else 0

    def is_rebuilding(self, projection: Projection) -> bool:
        row = self._tracking().get(projection.name)
        return bool(row and row.rebuilding)

    def positions(self, projections: Iterable[Projection] | None = None) -> dict[str, int]:
        """Return the position of each projection (all by default), read in one query."""
        tracked = self._tracking()
        chosen = self.projections if projections is None else projections
        return {p.name: tracked[p.name].position if p.name in tracked else 0 for p in chosen}

    def _tracking(self) -> dict[str, _Tracked]:
        rows = self.db.conn.execute(
            f"SELECT projection, position, rebuilding, as_of, stop_position, frozen FROM {self.TRACKING_TABLE}"
        ).fetchall()
        return {
            row[0]: _Tracked(
                position=int(row[1]),
                rebuilding=bool(row[2]),
                as_of=dt.datetime.fromisoformat(row[3]) if row[3] else None,
                stop_position=row[4],
                frozen=bool(row[5]),
            )
            for row in rows
        }

    def _set_position(self, projection: Projection, position: int, *, rebuilding: bool, limit: Limit) -> None:
        frozen = limit.position is not None or limit.as_of is not None
        self.db.conn.execute(
            f"INSERT INTO {self.TRACKING_TABLE} (projection, position, rebuilding, as_of, stop_position, frozen) "
            "VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(projection) DO UPDATE SET position = excluded.position, "
            "rebuilding = excluded.rebuilding, as_of = excluded.as_of, "
            "stop_position = excluded.stop_position, frozen = excluded.frozen",
            [
                projection.name,
                position,
                int(rebuilding),
                limit.as_of.isoformat() if limit.as_of else None,
                limit.position,
                int(frozen),
            ],
        )

    def _check_not_frozen(self, projection: Projection, tracked: _Tracked | None) -> None:
        if tracked is not None and tracked.frozen:
            stop = f"as of {tracked.as_of.isoformat()}" if tracked.as_of else f"at position {tracked.position}"
            raise InvalidInput(
                f"projection {projection.name!r} in {self.database_path} was rebuilt {stop} and does not "
                "follow the log; rebuild it without as_of or position to follow the log again",
                value=projection.name,
            )

    # --- following the log ------------------------------------------------------

    def catch_up(
        self,
        names: Iterable[str] | None = None,
        limit: Limit = Limit(),
        progress: ProgressCallback | None = None,
    ) -> int:
        """Apply every new notification up to ``limit`` to the named projections (all by default).

        Return the number of notifications applied, summed over the projections.
        """
        chosen = self._select(names)
        tracked = self._tracking()
        rebuilding = {}
        for projection in chosen:
            row = tracked.get(projection.name)
            rebuilding[projection.name] = bool(row and row.rebuilding)
            if not rebuilding[projection.name]:
                self._check_not_frozen(projection, row)
        return sum(self._follow(chosen, limit, progress, rebuilding).values())

    def rebuild(
        self,
        names: Iterable[str] | None = None,
        limit: Limit = Limit(),
        progress: ProgressCallback | None = None,
        *,
        resume: bool = True,
    ) -> int:
        """Rebuild projections from the first event, up to ``limit``; return the events applied.

        The projections are rebuilt together, in one pass over the log. A
        rebuild that was interrupted resumes from its last committed page when
        ``resume`` is true, so no event is applied twice.
        """
        chosen = self._select(names)
        tracked = self._tracking()
        for projection in chosen:
            row = tracked.get(projection.name)
            # A rebuild resumes only with the limit it started with; another limit starts over.
            resumable = (
                resume
                and row is not None
                and row.rebuilding
                and Limit(position=row.stop_position, as_of=row.as_of) == limit
            )
            if not resumable:
                with immediate_transaction(self.db):
                    projection.reset(self.db)
                    self._set_position(projection, 0, rebuilding=True, limit=limit)
                logger.info("rebuilding projection %s from the first event", projection.name)
            else:
                assert row is not None
                logger.info("resuming the rebuild of projection %s at %d", projection.name, row.position)
        counts = self._follow(chosen, limit, progress, dict.fromkeys((p.name for p in chosen), True))
        positions = self.positions(chosen)
        with immediate_transaction(self.db):
            for projection in chosen:
                self._set_position(projection, positions[projection.name], rebuilding=False, limit=limit)
        for projection in chosen:
            logger.info("rebuilt projection %s: %d notifications read", projection.name, counts[projection.name])
        return sum(counts.values())

    def _select(self, names: Iterable[str] | None) -> list[Projection]:
        if names is None:
            return list(self.projections)
        _check_not_text(names)
        known = {p.name: p for p in self.projections}
        chosen = []
        for name in names:
            if name not in known:
                raise InvalidInput(
                    f"unknown projection {name!r}: expected one of {', '.join(sorted(known))}", value=name
                )
            chosen.append(known[name])
        return chosen

    def _follow(
        self,
        projections: Sequence[Projection],
        limit: Limit,
        progress: ProgressCallback | None,
        rebuilding: Mapping[str, bool],
    ) -> dict[str, int]:
        """Apply the log from the lowest position of ``projections`` to ``limit``, each page once to all.

        Each notification is read and decoded once, whatever the number of
        projections. Return the notifications applied to each projection.
        """
        # Work left over from a failed after_batch, such as files still to render, is retried first.
        for projection in projections:
            projection.after_batch(self.db)
        applied = {p.name: 0 for p in projections}
        if not projections:
            return applied
        positions = self.positions(projections)
        last = self.recorder.max_notification_id() or 0
        stop = min(last, limit.position) if limit.position is not None else last
        while (start := min(positions.values())) < stop:
            page = self.recorder.select_notifications(start=start + 1, limit=self.batch_size, stop=stop)
            if not page:
                break
            events = [(notification.id, self.mapper.to_domain_event(notification)) for notification in page]
            for name, count in self._apply_page(projections, events, positions, limit, rebuilding).items():
                applied[name] += count
            positions = self.positions(projections)
            if progress is not None:
                progress(min(positions.values()), stop)
        # Work such as rendering files runs once after the last page, so a long catch-up or
        # rebuild renders each changed file once. A projection keeps that work in its own
        # tables, committed with each page, so a crash before this line loses none of it.
        for projection in projections:
            if applied[projection.name]:
                projection.after_batch(self.db)
        return applied

    def _apply_page(
        self,
        projections: Sequence[Projection],
        events: Sequence[tuple[int, object]],
        expected: Mapping[str, int],
        limit: Limit,
        rebuilding: Mapping[str, bool],
    ) -> dict[str, int]:
        """Apply a page of decoded notifications and move the positions in one transaction.

        A projection whose position another runner moved since ``expected``
        was read is left out of this page. Return the notifications applied to
        each projection that took part.
        """
        last = events[-1][0]
        counts: dict[str, int] = {}
        with immediate_transaction(self.db):
            # BEGIN IMMEDIATE takes the write lock first, so no other runner can
            # move a position between this read and the commit.
            current = self.positions(projections)
            try:
                for projection in projections:
                    position = current[projection.name]
                    if position != expected[projection.name] or position >= last:
                        continue
                    count = 0
                    for notification_id, event in events:
                        if notification_id <= position:
                            continue
                        count += 1
                        if isinstance(event, DomainEvent) and limit.admits(event):
                            projection.apply(self.db, event, notification_id)
                    projection.end_page(self.db)
                    self._set_position(projection, last, rebuilding=rebuilding[projection.name], limit=limit)
                    counts[projection.name] = count
            except BaseException:
                for projection in projections:
                    projection.discard_page()
                raise
        return counts


@dataclasses.dataclass(frozen=True)
class _Tracked:
    """One projection's row of the tracking table."""

    position: int
    rebuilding: bool
    as_of: dt.datetime | None
    stop_position: int | None
    frozen: bool


# The read models that queries read; the docs projection only writes files.
QUERY_PROJECTIONS = ("catalog", "history", "lineage")

# The names of the projections that all_projections returns.
PROJECTION_NAMES = (*QUERY_PROJECTIONS, "docs")


def check_projection_names(names: Iterable[str] | None) -> None:
    """Raise InvalidInput unless ``names`` is None or a collection of names from PROJECTION_NAMES.

    The registry checks the names before it opens a read-model database, so a
    rejected call leaves no file behind.
    """
    if names is None:
        return
    _check_not_text(names)
    for name in names:
        if name not in PROJECTION_NAMES:
            raise InvalidInput(
                f"unknown projection {name!r}: expected one of {', '.join(sorted(PROJECTION_NAMES))}", value=name
            )


def _check_not_text(names: Iterable[str]) -> None:
    # A string is iterable too, and its letters would be taken as names.
    if isinstance(names, str):
        raise InvalidInput(
            f"invalid projection names {names!r}: expected a list of names, such as [{names!r}]", value=names
        )


def all_projections(docs_root: Path, artifacts: ArtifactStore) -> list[Projection]:
    """Return every projection: catalog, history, lineage and docs."""
    from projections.catalog import CatalogProjection
    from projections.docs import DocsProjection
    from projections.history import HistoryProjection
    from projections.lineage import LineageProjection

    return [CatalogProjection(), HistoryProjection(), LineageProjection(), DocsProjection(docs_root, artifacts)]


@contextlib.contextmanager
def immediate_transaction(db: sqlite_utils.Database) -> Iterator[sqlite_utils.Database]:
    """Run a block in a transaction that holds SQLite's write lock from its start."""
    db.conn.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.conn.execute("ROLLBACK")
        raise
    db.conn.execute("COMMIT")


def open_read_database(path: Path, *, serves_queries: bool = False) -> sqlite_utils.Database:
    """Open a read-model database in WAL mode, so readers never block the runner.

    ``serves_queries`` sets the larger page cache and the memory map (see ProjectionRunner).
    """
    db = sqlite_utils.Database(path)
    db.execute("PRAGMA busy_timeout=30000")
    # Switching a new file to WAL needs an exclusive lock, and SQLite reports
    # "database is locked" at once, without the busy timeout, while another
    # process opening the same file holds it. So the switch is retried briefly.
    for attempt in range(1, WAL_SWITCH_ATTEMPTS + 1):
        try:
            db.execute("PRAGMA journal_mode=WAL")
            break
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or attempt == WAL_SWITCH_ATTEMPTS:
                raise
            logger.info("read database %s is locked while switching to WAL; retrying (attempt %d)", path, attempt)
            time.sleep(0.05 * attempt)
    # Read models can be rebuilt from the event store, so their commits need not wait for
    # the disk. In WAL mode a power failure can then lose the last commits, rows and
    # tracking positions together, but it cannot leave the database inconsistent.
    db.execute("PRAGMA synchronous=NORMAL")
    if serves_queries:
        # Listing the versions of a large model reads megabytes of rows. A page cache of up to
        # 32 MiB and reads through a memory map serve them without a system call per page,
        # which about halved the SQL time of such a query on 10,000 versions.
        db.execute(f"PRAGMA cache_size=-{READ_CACHE_KIBIBYTES}")
        db.execute(f"PRAGMA mmap_size={READ_MAP_BYTES}")
    return db
