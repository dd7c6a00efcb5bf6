"""The event store: an eventsourcing application with pydantic events in orjson.

SQLite is the embedded default; a ``postgresql://`` URL selects PostgreSQL.
"""

from __future__ import annotations

import logging
import random
import re
import sqlite3
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Any, ClassVar

import orjson
from eventsourcing.application import Application
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import IntegrityError as PersistenceIntegrityError
from eventsourcing.persistence import InternalError as PersistenceInternalError
from eventsourcing.persistence import Mapper, StoredEvent, Transcoder
from eventsourcing.persistence import OperationalError as PersistenceOperationalError
from eventsourcing.persistence import ProgrammingError as PersistenceProgrammingError
from eventsourcing.utils import get_topic, resolve_topic
from pydantic import BaseModel

from registry.aggregate import ModelAggregate, ModelSnapshot
from registry.errors import BackendError, InvalidInput
from registry.events import DomainEvent

# Take a snapshot every this many events of a small model; see snapshot_interval for larger ones.
SNAPSHOT_INTERVAL = 50

# Seconds a writer waits for SQLite's write lock before giving up.
SQLITE_LOCK_TIMEOUT_SECONDS = 30

# How often opening a store is tried when another writer creates its tables at the same time.
OPEN_ATTEMPTS = 5

logger = logging.getLogger(__name__)


class OrjsonTranscoder(Transcoder):
    """Encodes JSON-ready Python values with orjson."""

    def encode(self, obj: Any) -> bytes:
        return orjson.dumps(obj)

    def decode(self, data: bytes) -> Any:
        return orjson.loads(data)


class PydanticMapper(Mapper[Any]):
    """Maps pydantic events and snapshots to stored events and back.

    Pydantic turns an event into JSON-ready values and validates them again on
    the way back, so nested value objects come back as their own classes.
    """

    def to_stored_event(self, domain_event: DomainEventProtocol[Any]) -> StoredEvent:
        assert isinstance(domain_event, BaseModel)
        if isinstance(domain_event, DomainEvent):
            state = domain_event.stored_state()
        else:  # a snapshot
            state = domain_event.model_dump(mode="json", exclude={"originator_id", "originator_version"})
        return StoredEvent(
            originator_id=domain_event.originator_id,
            originator_version=domain_event.originator_version,
            topic=get_topic(type(domain_event)),
            state=self.transcoder.encode(state),
        )

    def to_domain_event(self, stored_event: StoredEvent) -> DomainEventProtocol[Any]:
        event_class = resolve_topic(stored_event.topic)
        state = self.transcoder.decode(stored_event.state)
        # Old stored shapes are brought up to the current class version step by step.
        from_version = state.pop("class_version", 1)
        class_version = getattr(event_class, "class_version", 1)
        while from_version < class_version:
            getattr(event_class, f"upcast_v{from_version}_v{from_version + 1}")(state)
            from_version += 1
        state["originator_id"] = stored_event.originator_id
        state["originator_version"] = stored_event.originator_version
        return event_class.model_validate(state)  # type: ignore[no-any-return]


def snapshot_interval(version_count: int) -> int:
    """Return the number of events between two snapshots of a model with ``version_count`` versions.

    A snapshot contains every version, so its size grows with the model. The
    interval doubles from SNAPSHOT_INTERVAL until it reaches the version count.
    So the snapshot bytes written per event stay about the same as a model
    grows, and a load replays fewer than twice as many events as the model has versions.
    """
    interval = SNAPSHOT_INTERVAL
    while interval < version_count:
        interval *= 2
    return interval


def snapshot_due(aggregate: ModelAggregate, version: int) -> bool:
    """Return whether the event at ``version`` of ``aggregate``'s stream is followed by a snapshot."""
    return version % snapshot_interval(len(aggregate.versions)) == 0


class EventStoreApplication(Application[Any]):
    """The registry's event store, repository, snapshots and notification log."""

    name = "ModelRegistry"
    snapshotting_intervals: ClassVar[dict[type[Any], int]] = {ModelAggregate: SNAPSHOT_INTERVAL}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The model aggregates being saved by this thread, by id, so that a snapshot is
        # taken from the state in memory rather than by loading the aggregate again.
        self._saving = threading.local()

    def construct_mapper(self) -> Mapper[Any]:
        return PydanticMapper(transcoder=OrjsonTranscoder())

    def save(self, *objs: Any, **kwargs: Any) -> Any:
        self._saving.aggregates = {obj.id: obj for obj in objs if isinstance(obj, ModelAggregate)}
        try:
            return super().save(*objs, **kwargs)
        finally:
            self._saving.aggregates = {}

    def take_snapshot(self, aggregate_id: Any, version: int | None = None, *args: Any, **kwargs: Any) -> None:
        aggregate = getattr(self._saving, "aggregates", {}).get(aggregate_id)
        # The base class calls this at every SNAPSHOT_INTERVAL-th event, and larger models skip some of those.
        if aggregate is not None and version is not None and not snapshot_due(aggregate, version):
            return
        if aggregate is None or version is None or aggregate.version != version or self.snapshots is None:
            super().take_snapshot(aggregate_id, version, *args, **kwargs)
            return
        self.snapshots.put([ModelSnapshot.take(aggregate)])


def store_environment(home: Path, database_url: str | None) -> dict[str, str]:
    """Return the eventsourcing settings for SQLite under ``home`` or for ``database_url``."""
    settings = {
        "AGGREGATE_CACHE_MAXSIZE": "64",
        "IS_SNAPSHOTTING_ENABLED": "y",
    }
    if database_url is None:
        settings.update(
            PERSISTENCE_MODULE="eventsourcing.sqlite",
            SQLITE_DBNAME=str(home / "events.sqlite3"),
            SQLITE_LOCK_TIMEOUT=str(SQLITE_LOCK_TIMEOUT_SECONDS),
        )
        return settings
    settings.update(_postgres_settings(database_url))
    return settings


def _postgres_settings(database_url: str) -> dict[str, str]:
    expected = "expected postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?schema=NAME]"
    try:
        url = urllib.parse.urlsplit(database_url)
        port = url.port
    except ValueError as error:  # a malformed IPv6 host, or a port that is not a number from 0 to 65535
        raise InvalidInput(
            f"invalid database_url {redact_url(database_url)!r}: {error}; {expected}",
            value=redact_url(database_url),
        ) from None
    if url.scheme not in ("postgresql", "postgres") or not url.path.strip("/"):
        raise InvalidInput(
            f"invalid database_url {redact_url(database_url)!r}: {expected}",
            value=redact_url(database_url),
        )
    query = urllib.parse.parse_qs(url.query)
    settings = {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": urllib.parse.unquote(url.path.strip("/")),
        "POSTGRES_HOST": url.hostname or "127.0.0.1",
        "POSTGRES_PORT": str(port or 5432),
        "POSTGRES_USER": urllib.parse.unquote(url.username or "postgres"),
        "POSTGRES_PASSWORD": urllib.parse.unquote(url.password or ""),
        "POSTGRES_CONNECT_TIMEOUT": "10",
        "POSTGRES_LOCK_TIMEOUT": "10",
    }
    if "schema" in query:
        settings["POSTGRES_SCHEMA"] = query["schema"][0]
    return settings


# A "password" parameter in the query string, as libpq URLs allow.
_QUERY_PASSWORD = re.compile(r"(^|&)(password=)[^&]*")


def redact_url(database_url: str) -> str:
    """Return ``database_url`` with any password replaced, for messages and logs."""
    try:
        url = urllib.parse.urlsplit(database_url)
        password = url.password
    except ValueError:
        # The URL cannot be parsed, so everything between "://" and the last "@" may be a password.
        scheme, separator, rest = database_url.partition("://")
        if "@" not in rest:
            return database_url
        return f"{scheme}{separator}***@{rest.rpartition('@')[2]}"
    netloc = url.netloc
    if password is not None:
        netloc = netloc.replace(f":{password}@", ":***@")
    query = _QUERY_PASSWORD.sub(r"\1\2***", url.query)
    return urllib.parse.urlunsplit(url._replace(netloc=netloc, query=query))


def open_event_store(home: Path, database_url: str | None) -> EventStoreApplication:
    """Open (and create when needed) the event store.

    Writers that open a store at the same moment can collide while creating its
    tables, so such a collision is retried up to OPEN_ATTEMPTS times.
    """
    if database_url is None:
        home.mkdir(parents=True, exist_ok=True)
    for attempt in range(1, OPEN_ATTEMPTS + 1):
        try:
            return EventStoreApplication(env=store_environment(home, database_url))
        except InvalidInput:
            raise
        except Exception as error:
            if attempt == OPEN_ATTEMPTS or not _is_creation_conflict(error, database_url):
                raise _open_failed(home, database_url, error) from error
            logger.info("opening the event store conflicted with another writer (%s); retrying (attempt %d)",
                        error, attempt)  # fmt: skip
            time.sleep(random.uniform(0.01, 0.1) * attempt)
    raise AssertionError("unreachable: the last attempt returns or raises")


def _is_creation_conflict(error: Exception, database_url: str | None) -> bool:
    """Return whether ``error`` comes from another writer creating the same tables at the same time."""
    if database_url is None:
        # SQLite raises "database is locked" at once, without waiting, when two
        # connections switch a new database to WAL mode or change its schema together.
        # eventsourcing wraps some sqlite3 errors and passes others on unwrapped.
        # NOTE: a lock that another process holds for longer than SQLITE_LOCK_TIMEOUT_SECONDS
        # raises the same error, so opening can then wait OPEN_ATTEMPTS times that long.
        locked = isinstance(error, (PersistenceOperationalError, sqlite3.OperationalError))
        return locked and "database is locked" in str(error)
    # PostgreSQL raises "tuple concurrently updated" for concurrent CREATE OR REPLACE
    # FUNCTION, and a unique violation, or "type ... already exists", when two
    # writers run CREATE TABLE IF NOT EXISTS for the same table at once.
    if isinstance(error, (PersistenceInternalError, PersistenceIntegrityError)):
        return True
    return isinstance(error, PersistenceProgrammingError) and "already exists" in str(error)


def _open_failed(home: Path, database_url: str | None, error: Exception) -> BackendError:
    where = redact_url(database_url) if database_url else str(home / "events.sqlite3")
    return BackendError(
        f"cannot open the event store at {where}: {type(error).__name__}: {error}. "
        "Check that the database is reachable and writable"
    )
