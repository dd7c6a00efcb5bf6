"""The per-version files: ``metadata.json``, ``requirements.txt`` and ``features.yaml``.

They live at ``<root>/<name>/<version>/`` and are rewritten whenever an event
changes the version, so they always match the event store. Each file is
written to a hidden temporary name and renamed, so a reader never sees half a file.
"""

from __future__ import annotations

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


def write_version_files(root: Path, model_version: ModelVersion) -> Path:
    """Write the three files of ``model_version`` and return their folder."""
    folder = version_folder(root, model_version.name, model_version.version)
    folder.mkdir(parents=True, exist_ok=True)
    _write(folder / "metadata.json", orjson.dumps(model_version.metadata, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
    _write(folder / "requirements.txt", requirements_text(model_version.environment).encode())
    _write(folder / "features.yaml", features_yaml(model_version).encode())
    return folder


def features_yaml(model_version: ModelVersion) -> str:
    """Render the version's input features and outputs as YAML."""
    document: dict[str, Any] = {
        "model": model_version.name,
        "version": model_version.version,
        "num_features": len(model_version.signature.inputs),
        "features": [{"name": n, "type": t} for n, t in model_version.signature.inputs.items()],
        "outputs": [{"name": n, "type": t} for n, t in model_version.signature.outputs.items()],
    }
    return yaml.dump(document, Dumper=YAML_DUMPER, sort_keys=False)


def _write(path: Path, data: bytes) -> None:
    # Most events change only metadata.json, and reading a small file costs far less than replacing it.
    try:
        if path.read_bytes() == data:
            return
    except FileNotFoundError:
        pass
    write_atomically(path, data)
