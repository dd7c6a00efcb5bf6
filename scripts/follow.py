"""Keep the read models and docs up to date, and enforce end-of-life dates, on a schedule.

Runs APScheduler in the foreground; stop it with Ctrl-C. ``--once`` runs each
job once and exits, for cron or for a check.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from _options import resolve_home

from projections.jobs import catch_up_once, enforce_end_of_life_once, run_forever


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Follow the event log with the registry's projections.")
    parser.add_argument("--home", type=Path, default=None, help="registry home (default: REGISTRY_HOME or ./.registry)")
    parser.add_argument("--database-url", default=None, help="PostgreSQL URL of the event store (default: REGISTRY_DATABASE_URL)")
    parser.add_argument("--catch-up-seconds", type=float, default=5.0, help="seconds between catch-up runs")
    parser.add_argument("--end-of-life-minutes", type=float, default=60.0, help="minutes between end-of-life runs")
    parser.add_argument("--once", action="store_true", help="run each job once and exit")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    # APScheduler logs every run at INFO; the jobs log their own results.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    home = resolve_home(args.home, args.database_url)

    if args.once:
        applied = catch_up_once(home, args.database_url)
        archived = enforce_end_of_life_once(home, args.database_url)
        print(f"applied {applied} notifications; archived at end of life: {archived or 'none'}")
        return 0
    try:
        run_forever(
            home,
            args.database_url,
            catch_up_seconds=args.catch_up_seconds,
            end_of_life_minutes=args.end_of_life_minutes,
        )
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
