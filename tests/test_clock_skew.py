"""Writers whose clocks disagree still append events in time order."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from registry import InvalidDate

NAME = "fraud-detection"


class FixedClock:
    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


def test_slow_clock_takes_last_event_time(make_registry: Any, clock: Any) -> None:
    fast = make_registry()
    slow = make_registry(clock=FixedClock(clock.now - dt.timedelta(seconds=10)))
    fast.register_model(NAME, {"rule": 1}, version="v1")

    promoted = slow.promote_model(NAME, "v1", "dev", "staging")

    last = slow.history(NAME)[-1]
    assert promoted.stage == "staging"
    assert last.effective_at == clock.now
    assert last.recorded_at == clock.now - dt.timedelta(seconds=10)


def test_backfill_before_last_event_rejected(make_registry: Any, clock: Any) -> None:
    registry = make_registry()
    registry.register_model(NAME, {"rule": 1}, version="v1")
    before = len(registry.history(NAME))

    with pytest.raises(InvalidDate, match="backfilled events must be appended in time order"):
        registry.promote_model(NAME, "v1", "dev", "staging", effective_at=clock.now - dt.timedelta(days=1))

    assert len(registry.history(NAME)) == before
