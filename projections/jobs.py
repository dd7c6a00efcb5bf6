"""Scheduled jobs: read-model catch-up and end-of-life enforcement, on APScheduler.

Each run opens its own ``ModelRegistry``, because the registry's connections
belong to the thread that opened them and APScheduler runs jobs on worker threads.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler

logger = logging.getLogger(__name__)


def catch_up_once(home: Path, database_url: str | None = None) -> int:
    """Open the registry at ``home``, bring every read model up to date, and return the events applied."""
    from registry import ModelRegistry

    with ModelRegistry(home=home, database_url=database_url) as registry:
        return registry.catch_up_projections()


def enforce_end_of_life_once(home: Path, database_url: str | None = None) -> dict[str, list[str]]:
    """Open the registry at ``home`` and archive every version past its end of life."""
    from registry import ModelRegistry

    with ModelRegistry(home=home, database_url=database_url) as registry:
        return registry.enforce_end_of_life(actor="registry-scheduler")


def schedule_jobs(
    scheduler: BaseScheduler,
    home: Path,
    database_url: str | None = None,
    *,
    catch_up_seconds: float = 5.0,
    end_of_life_minutes: float = 60.0,
) -> None:
    """Add the catch-up and end-of-life jobs to ``scheduler``.

    Each job runs at most once at a time, and runs missed while the process was
    busy are merged into one.
    """
    _add(scheduler, "catch-up", catch_up_once, (home, database_url), seconds=catch_up_seconds)
    _add(scheduler, "end-of-life", enforce_end_of_life_once, (home, database_url), seconds=end_of_life_minutes * 60)


def run_forever(home: Path, database_url: str | None = None, **intervals: float) -> None:
    """Run the jobs in the foreground until the process is stopped."""
    scheduler = BlockingScheduler(timezone="UTC")
    schedule_jobs(scheduler, home, database_url, **intervals)
    logger.info("scheduler started for %s", home)
    scheduler.start()


def _add(
    scheduler: BaseScheduler, job_id: str, job: Callable[..., object], args: tuple[object, ...], *, seconds: float
) -> None:
    scheduler.add_job(
        job,
        "interval",
        args=args,
        name=job_id,
        seconds=seconds,
        id=job_id,
        max_instances=1,
        coalesce=True,
        replace_existing=True,
    )
