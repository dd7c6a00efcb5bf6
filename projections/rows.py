"""Read queries on a read-model database, run on its connection directly.

sqlite-utils' ``Database.query`` wraps each statement in a savepoint, so that a
statement which returns no rows can be rolled back. That makes three statements
of every lookup, and the projections run hundreds of thousands of lookups in a
rebuild. Their queries are plain SELECTs, so they need no such guard.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import sqlite_utils


def query_rows(
    db: sqlite_utils.Database, sql: str, parameters: Sequence[Any] = ()
) -> Iterator[dict[str, Any]]:
    """Run the SELECT ``sql`` and return its rows, as dicts by column name, fetched as they are read."""
    cursor = db.conn.execute(sql, parameters)
    if cursor.description is None:
        raise ValueError(f"query_rows expects a statement that returns rows, such as a SELECT: {sql}")
    keys = [column[0] for column in cursor.description]
    return (dict(zip(keys, row)) for row in cursor)
