"""The hash chain that makes the event log tamper-evident.

Each event carries ``event_hash``, the SHA-256 of its canonical content, and
``previous_hash``, the ``event_hash`` of the event before it in the same
stream. The canonical content is the event's topic, stream id, position and
stored fields (all but ``event_hash`` itself), encoded as JSON with sorted keys.
A changed field, a removed event or two swapped events then break the chain.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

import orjson

# The field with an event's own hash, which is left out of the hashed content.
HASH_FIELD = "event_hash"


def content_hash(topic: str, originator_id: uuid.UUID | str, position: int, state: dict[str, Any]) -> str:
    """Return the hex SHA-256 of one event's canonical content.

    ``state`` is the event's stored fields as decoded JSON values; its
    ``event_hash`` entry, if any, is ignored.
    """
    fields = {key: value for key, value in state.items() if key != HASH_FIELD}
    canonical = orjson.dumps(
        {"topic": topic, "stream": str(originator_id), "position": position, "fields": fields},
        option=orjson.OPT_SORT_KEYS,
    )
    return hashlib.sha256(canonical).hexdigest()
