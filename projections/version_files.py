"""The per-version files: ``metadata.json``, ``requirements.txt`` and ``features.yaml``.

They live at ``<root>/<name>/<version>/`` and are rewritten whenever an event
changes the version, so they always match the event store. Each file is
written to a hidden temporary name and renamed, so a reader never sees half a file.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import orjson
import yaml

from registry.environment import requirements_text
from registry.files import YAML_DUMPER, write_atomically
from registry.views import ModelVersion


def version_folder(root: Path, name: str, version: str) -> Path:
    """Return the folder of one version's files."""
    return root / name / version


def write_version_files(root: Path, model_version: ModelVersion, *, new: bool = False) -> Path:
    """Write the three files of ``model_version`` and return their folder.

    With ``new``, the version was just registered, so there are no files to compare with.
    """
    folder = version_folder(root, model_version.name, model_version.version)
    metadata = orjson.dumps(model_version.metadata, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
    _write(folder / "metadata.json", metadata, compare=not new)
    _write(folder / "requirements.txt", requirements_text(model_version.environment).encode(), compare=not new)
    _write(folder / "features.yaml", features_yaml(model_version).encode(), compare=not new)
    return folder


def features_yaml(model_version: ModelVersion) -> str:
    """Render the version's input features and outputs as YAML."""
    header = yaml.dump({"model": model_version.name, "version": model_version.version}, Dumper=YAML_DUMPER, sort_keys=False)
    signature = model_version.signature
    return header + _schema_yaml(tuple(signature.inputs.items()), tuple(signature.outputs.items()))


@functools.lru_cache(maxsize=256)
def _schema_yaml(inputs: tuple[tuple[str, str], ...], outputs: tuple[tuple[str, str], ...]) -> str:
    # Versions of a model mostly share one schema, and each event that touches a version renders
    # its files again, so the larger part of the document is rendered once per schema.
    document: dict[str, Any] = {
        "num_features": len(inputs),
        "features": [{"name": n, "type": t} for n, t in inputs],
        "outputs": [{"name": n, "type": t} for n, t in outputs],
    }
    return yaml.dump(document, Dumper=YAML_DUMPER, sort_keys=False)


def _write(path: Path, data: bytes, *, compare: bool) -> None:
    # Most events change only metadata.json, and reading a small file costs far less than replacing it.
    if compare:
        try:
            if path.read_bytes() == data:
                return
        except FileNotFoundError:
            pass
    write_atomically(path, data)
