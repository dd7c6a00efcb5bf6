"""The history read model: every stage transition, decision and deprecation, in log order."""

from __future__ import annotations

from typing import Any, ClassVar

import orjson
import sqlite_utils

from registry.events import (
    Approved,
    Deprecated,
    DomainEvent,
    ModelCreated,
    Promoted,
    Registered,
    Rejected,
    RolledBack,
)

HISTORY = "history_transitions"
NAMES = "history_models"


class HistoryProjection:
    """Keeps one row per model event that changes a stage or records a decision."""

    name: ClassVar[str] = "history"

    def create_schema(self, db: sqlite_utils.Database) -> None:
        db[HISTORY].create(  # type: ignore[union-attr]
            {
                "position": int,
                "name": str,
                "version": str,
                "event": str,
                "from_stage": str,
                "to_stage": str,
                "actor": str,
                "reason": str,
                "effective_at": str,
                "recorded_at": str,
                "increment": str,
                "details": str,
            },
            pk="position",
            if_not_exists=True,
        )
        db.execute(f"CREATE INDEX IF NOT EXISTS {HISTORY}_model ON {HISTORY} (name, position)")
        db[NAMES].create({"id": str, "name": str}, pk="id", if_not_exists=True)  # type: ignore[union-attr]

    def reset(self, db: sqlite_utils.Database) -> None:
        db.execute(f"DELETE FROM {HISTORY}")
        db.execute(f"DELETE FROM {NAMES}")

    def end_page(self, db: sqlite_utils.Database) -> None:
        """Do nothing, because each event is written as it is applied."""

    def discard_page(self) -> None:
        """Do nothing, because no state is kept between events."""

    def after_batch(self, db: sqlite_utils.Database) -> None:
        return None

    def apply(self, db: sqlite_utils.Database, event: DomainEvent, position: int) -> None:
        if isinstance(event, ModelCreated):
            db.execute(f"INSERT INTO {NAMES} (id, name) VALUES (?, ?)", [str(event.originator_id), event.name])
            return
        row = _row(event)
        if row is None:
            return
        name = _model_name(db, event)
        db.execute(
            f"INSERT INTO {HISTORY} (position, name, version, event, from_stage, to_stage, actor, reason, "
            "effective_at, recorded_at, increment, details) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                position,
                name,
                row["version"],
                type(event).__name__,
                row.get("from_stage"),
                row.get("to_stage"),
                event.actor,
                row.get("reason"),
                event.effective_at.isoformat(),
                event.timestamp.isoformat(),
                event.increment,
                orjson.dumps(row.get("details", {})).decode(),
            ],
        )


def _model_name(db: sqlite_utils.Database, event: DomainEvent) -> str:
    found = db.execute(f"SELECT name FROM {NAMES} WHERE id = ?", [str(event.originator_id)]).fetchone()
    # Every model's first event is ModelCreated, so the name is always there.
    assert found is not None, event.originator_id
    return str(found[0])


def _row(event: DomainEvent) -> dict[str, Any] | None:
    if isinstance(event, Registered):
        return {"version": event.version, "to_stage": event.stage, "details": {"sha256": event.artifact.sha256}}
    if isinstance(event, Promoted):
        return {
            "version": event.version,
            "from_stage": event.from_stage,
            "to_stage": event.to_stage,
            "reason": event.reason,
            "details": {"approved_by": event.approved_by},
        }
    if isinstance(event, Approved):
        return {"version": event.version, "reason": event.comments, "details": {"stage": event.stage, "approver": event.approver}}
    if isinstance(event, Rejected):
        return {"version": event.version, "reason": event.reason, "details": {"stage": event.stage, "approver": event.approver}}
    if isinstance(event, RolledBack):
        return {
            "version": event.to_version,
            "from_stage": "production" if event.from_version else None,
            "to_stage": "production",
            "reason": event.reason,
            "details": {"from_version": event.from_version, "automatic": event.automatic, "evidence": event.evidence},
        }
    if isinstance(event, Deprecated):
        return {
            "version": event.version,
            "reason": event.reason,
            "details": {"end_of_life": event.end_of_life.isoformat() if event.end_of_life else None},
        }
    return None
