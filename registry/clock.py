"""UTC times: the injectable clock and the parsing of user-given dates."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from registry.errors import InvalidDate

Clock = Callable[[], dt.datetime]


def utc_now() -> dt.datetime:
    """Return the current time in UTC."""
    return dt.datetime.now(dt.timezone.utc)


def to_utc(value: object, *, argument: str = "date") -> dt.datetime:
    """Convert a user-given time to an aware UTC datetime.

    A naive datetime is taken as UTC. A bare date, as a ``date`` or as text such
    as ``"2024-06-01"``, means the end of that day in UTC.
    """
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.timezone.utc)
        return value.astimezone(dt.timezone.utc)
    if isinstance(value, dt.date):
        return _end_of_day(value)
    if isinstance(value, str):
        text = value.strip()
        try:
            if len(text) == 10:
                return _end_of_day(dt.date.fromisoformat(text))
            return to_utc(dt.datetime.fromisoformat(text.replace("Z", "+00:00")))
        except ValueError:
            pass
    raise InvalidDate(
        f"invalid {argument} {value!r}: expected a datetime, a date, or ISO 8601 text such as "
        "'2024-06-01' or '2024-06-01T12:00:00+00:00'",
        value=value,
    )


def _end_of_day(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.max, tzinfo=dt.timezone.utc)


def checked_clock_reading(clock: Clock) -> dt.datetime:
    """Read ``clock`` and return its time in UTC; a naive reading is taken as UTC."""
    return to_utc(clock(), argument="clock reading")
