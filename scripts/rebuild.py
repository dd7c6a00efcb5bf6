"""Rebuild the registry's read models from the event log, with a progress bar.

Examples:
    python scripts/rebuild.py --home .registry
    python scripts/rebuild.py --home .registry --projection catalog --as-of 2024-03-10
    python scripts/rebuild.py --home .registry --position 1200 --target past.sqlite3
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from _options import resolve_home
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from registry import ModelRegistry, RegistryError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Rebuild the registry's read models from its event log.")
    parser.add_argument("--home", type=Path, default=None, help="registry home (default: REGISTRY_HOME or ./.registry)")
    parser.add_argument("--database-url", default=None, help="PostgreSQL URL of the event store (default: REGISTRY_DATABASE_URL)")
    parser.add_argument("--projection", action="append", dest="projections", help="projection to rebuild (repeatable; default: all)")
    parser.add_argument("--as-of", default=None, help="stop at this time: ISO 8601, a bare date means the end of that day UTC")
    parser.add_argument("--position", type=int, default=None, help="stop at this notification id")
    parser.add_argument("--target", type=Path, default=None, help="database file to rebuild into")
    parser.add_argument("--quiet", action="store_true", help="print no progress bar and no log lines")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if args.as_of is not None and args.position is not None:
        print("error: pass either --as-of or --position, not both", file=sys.stderr)
        return 1
    home = resolve_home(args.home, args.database_url)

    try:
        with ModelRegistry(home=home, database_url=args.database_url) as registry:
            with Progress(
                TextColumn("rebuilding"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), disable=args.quiet
            ) as progress:
                task = progress.add_task("rebuild", total=None)

                def report(position: int, stop: int) -> None:
                    progress.update(task, completed=position, total=stop)

                path = registry.rebuild_projections(
                    args.projections, as_of=args.as_of, position=args.position, target=args.target, progress=report
                )
    except RegistryError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"rebuilt read models in {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
