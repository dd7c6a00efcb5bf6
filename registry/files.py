"""Atomic file writes and the YAML emitter, shared by the artifact store and the projections."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable
from pathlib import Path

import yaml

TEMPORARY_PREFIX = ".partial-"

# libyaml's emitter when PyYAML was built with it, which is several times faster than the pure Python one.
YAML_DUMPER: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def write_atomically(path: Path, data: bytes | Iterable[bytes], *, durable: bool = False) -> None:
    """Write ``data``, bytes or chunks of bytes, to ``path`` through a hidden temporary file and a rename.

    A reader sees the old file or the new one, never half of one. The file gets
    the usual permissions for the process's umask (0644 under umask 022). With
    ``durable``, the bytes are flushed to disk before the rename. Missing
    parent folders are created.
    """
    descriptor, temporary = _open_temporary(path)
    try:
        with os.fdopen(descriptor, "wb") as stream:
            for chunk in [data] if isinstance(data, bytes) else data:
                stream.write(chunk)
            if durable:
                stream.flush()
                os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _open_temporary(path: Path) -> tuple[int, Path]:
    """Create a new hidden file beside ``path`` and return its descriptor and path.

    The name contains the process id and a counter, which is cheaper than
    tempfile's random names. Creating it exclusively still guards against a
    name taken by another host's process on a shared folder.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    while True:
        temporary = path.parent / f"{TEMPORARY_PREFIX}{path.name}.{os.getpid()}.{next(_NAMES)}"
        try:
            # The kernel applies the umask to 0o666, as it does for any new file.
            return os.open(temporary, flags, 0o666), temporary
        except FileNotFoundError:
            path.parent.mkdir(parents=True, exist_ok=True)
        except FileExistsError:
            continue


_NAMES = itertools.count()
