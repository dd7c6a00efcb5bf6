"""A content-addressed store of serialised models, checked on every load.

Blobs live at ``<root>/sha256/<first two hex digits>/<digest>``. A blob is
written to a hidden temporary file and renamed into place, so a crash leaves
at most an unreferenced hidden file, and an existing blob is never rewritten.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import tempfile
from pathlib import Path
from typing import Any

from eventsourcing.utils import get_topic, resolve_topic

from registry.errors import ArtifactError, ArtifactIntegrityError, UnsupportedModel
from registry.files import write_atomically
from registry.records import ArtifactRef

logger = logging.getLogger(__name__)


def serialise(model: Any) -> tuple[bytes, str, str | None]:
    """Serialise ``model`` and return its bytes, format name and loader class topic.

    XGBoost models use XGBoost's own UBJSON format, scikit-learn estimators use
    skops, and anything else is pickled.
    """
    module = type(model).__module__
    if module.startswith("xgboost"):
        return _serialise_xgboost(model), "xgboost-ubj", get_topic(type(model))
    if module.startswith("sklearn"):
        try:
            import skops.io

            return skops.io.dumps(model), "skops", None
        except Exception as error:  # noqa: BLE001 - skops rejects some custom steps; pickle still works
            logger.info("skops could not save %s (%s); saving it with pickle", type(model).__name__, error)
    try:
        return pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL), "pickle", None
    except Exception as error:
        raise UnsupportedModel(
            f"cannot serialise model of type {type(model).__name__}: {error}. "
            "Pass a scikit-learn estimator, an XGBoost model or a picklable object"
        ) from error


def deserialise(data: bytes, artifact_format: str, loader: str | None) -> Any:
    """Rebuild a model from bytes written by ``serialise``."""
    if artifact_format == "xgboost-ubj":
        assert loader is not None
        model = resolve_topic(loader)()
        model.load_model(bytearray(data))
        return model
    if artifact_format == "skops":
        import skops.io

        # The bytes matched the digest recorded when the registry wrote them,
        # so the types they name are the ones the registry saved.
        return skops.io.loads(data, trusted=skops.io.get_untrusted_types(data=data))
    if artifact_format == "pickle":
        return pickle.loads(data)  # noqa: S301 - digest-checked bytes that this registry wrote
    raise ArtifactError(
        f"unknown artifact format {artifact_format!r}; upgrade the registry package to read it"
    )


def _serialise_xgboost(model: Any) -> bytes:
    # save_model keeps the scikit-learn wrapper's attributes, which save_raw drops.
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "model.ubj")
        model.save_model(path)
        return Path(path).read_bytes()


class ArtifactStore:
    """Serialised models on the local disk, named by their SHA-256 digest."""

    def __init__(self, root: Path) -> None:
        self.root = root
        # Resolved once: resolving costs a system call per path component.
        self._uri_root = root.resolve()

    def path_of(self, sha256: str) -> Path:
        return self.root / "sha256" / sha256[:2] / sha256

    def put(self, model: Any) -> ArtifactRef:
        """Store ``model`` and return a reference to its blob."""
        data, artifact_format, loader = serialise(model)
        return self.put_bytes(data, artifact_format, loader)

    def reference(self, data: bytes, artifact_format: str, loader: str | None = None) -> ArtifactRef:
        """Return the reference that ``put_bytes`` returns for ``data``, without writing anything."""
        digest = hashlib.sha256(data).hexdigest()
        return ArtifactRef(
            uri=(self._uri_root / "sha256" / digest[:2] / digest).as_uri(),
            sha256=digest,
            size=len(data),
            format=artifact_format,
            loader=loader,
        )

    def put_bytes(self, data: bytes, artifact_format: str, loader: str | None = None) -> ArtifactRef:
        """Store ``data`` unless a blob with its digest exists, and return a reference to it."""
        ref = self.reference(data, artifact_format, loader)
        path = self.path_of(ref.sha256)
        if not path.exists():
            self._write_atomically(path, data)
        return ref

    def read_verified(self, ref: ArtifactRef, name: str, version: str) -> bytes:
        """Return the blob's bytes after checking them against the recorded digest."""
        path = self.path_of(ref.sha256)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise ArtifactIntegrityError(name, version, ref.sha256, f"missing (no file at {path})") from None
        actual = hashlib.sha256(data).hexdigest()
        if actual != ref.sha256:
            raise ArtifactIntegrityError(name, version, ref.sha256, actual)
        return data

    def load(self, ref: ArtifactRef, name: str, version: str) -> Any:
        """Load the model of ``name`` ``version``, checking its digest first."""
        data = self.read_verified(ref, name, version)
        return deserialise(data, ref.format, ref.loader)

    def _write_atomically(self, path: Path, data: bytes) -> None:
        write_atomically(path, data, durable=True)


__all__ = ["ArtifactStore", "deserialise", "serialise"]
