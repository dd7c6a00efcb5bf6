"""Atomic file writes and the YAML emitter, shared by the artifact store and the projections."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

import yaml

TEMPORARY_PREFIX = ".partial-"

# libyaml's emitter when PyYAML was built with it, which is several times faster than the pure Python one.
YAML_DUMPER: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def write_atomically(path: Path, data: bytes | Iterable[bytes], *, durable: bool = False) -> None:
    """Write ``data``, bytes or chunks of bytes, to ``path`` through a hidden temporary file and a rename.

    A reader sees the old file or the new one, never half of one. The file gets
    the usual permissions for the process's umask (0644 under umask 022), not
    the 0600 of a temporary file. With ``durable``, the bytes are flushed to
    disk before the rename.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=TEMPORARY_PREFIX, dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            for chunk in [data] if isinstance(data, bytes) else data:
                stream.write(chunk)
            if durable:
                stream.flush()
                os.fsync(stream.fileno())
        os.chmod(temporary, 0o666 & ~_umask())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _umask() -> int:
    # os.umask can only be read by setting it, so it is set back at once.
    current = os.umask(0o022)
    os.umask(current)
    return current
