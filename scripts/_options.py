"""Options shared by the command-line scripts in this folder."""

from __future__ import annotations

import os
from pathlib import Path


def resolve_home(home: Path | None, database_url: str | None) -> Path:
    """Return the registry home the options name, and exit with an error when no registry is there."""
    resolved = (home or Path(os.environ.get("REGISTRY_HOME", ".registry"))).absolute()
    if database_url is None and not os.environ.get("REGISTRY_DATABASE_URL"):
        if not (resolved / "events.sqlite3").is_file():
            raise SystemExit(
                f"error: no registry at {resolved} (no events.sqlite3 there); "
                "pass --home with the folder a ModelRegistry uses, or set REGISTRY_HOME"
            )
    return resolved
