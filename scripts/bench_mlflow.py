"""MLflow's model registry on a local SQLite file, set up to make no network connection.

``configure_offline`` must run before anything imports mlflow, because MLflow
reads its logging level when it is imported.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

# MLflow 3.17 sends usage telemetry to its servers unless one of the first two
# variables is set (is_telemetry_disabled in mlflow/telemetry/utils.py).
OFFLINE_ENVIRONMENT = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    # MLflow logs every run and model at INFO, and its errors are still shown at ERROR.
    "MLFLOW_LOGGING_LEVEL": "ERROR",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    # MLflow records the git commit of the running script, and this keeps GitPython quiet when git is missing.
    "GIT_PYTHON_REFRESH": "quiet",
}

EXPERIMENT = "benchmark"

# Tag values are text in MLflow, so the accuracy is kept as a tag and compared as a number on the client.
ACCURACY_TAG = "accuracy"


def configure_offline() -> None:
    """Set the environment that keeps MLflow local and quiet, and hide its Python warnings."""
    os.environ.update(OFFLINE_ENVIRONMENT)
    warnings.filterwarnings("ignore", module=r"mlflow(\.|$)")
    warnings.filterwarnings("ignore", module=r"alembic(\.|$)")
    logging.getLogger("alembic").setLevel(logging.WARNING)


def mlflow_tags(accuracy: float, tags: list[str]) -> dict[str, str]:
    """Return MLflow version tags for our tags: ``team-a`` becomes ``team=a``, other tags ``name=true``."""
    converted = {ACCURACY_TAG: str(accuracy)}
    for tag in tags:
        key, _, value = tag.partition("-")
        converted[key] = value if value else "true"
    return converted


class RegistrationNoiseFilter(io.TextIOBase):
    """A stand-in for stderr that drops MLflow's lines about each registered version and passes on the rest.

    ``mlflow.register_model`` prints those lines itself, outside its logging.
    """

    NOISE = ("Successfully registered model ", "Registered model ", "Created version ")

    def __init__(self, target: TextIO) -> None:
        self.target = target
        self.dropped_line = False

    def write(self, text: str) -> int:
        # print() writes the newline in a second call, which goes with the line it ends.
        if text == "\n" and self.dropped_line:
            self.dropped_line = False
            return len(text)
        self.dropped_line = text.startswith(self.NOISE)
        if not self.dropped_line:
            self.target.write(text)
        return len(text)

    def flush(self) -> None:
        self.target.flush()


class MlflowRegistry:
    """An MLflow tracking store and model registry in one SQLite file, with artifacts in a folder."""

    def __init__(self, folder: Path) -> None:
        import mlflow
        from mlflow import MlflowClient

        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.uri = f"sqlite:///{folder / 'mlflow.db'}"
        self.client = MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)
        self.activate()
        experiment = self.client.get_experiment_by_name(EXPERIMENT)
        if experiment is None:
            # Without an explicit location, MLflow would put artifacts in ./mlruns of the working directory.
            self.experiment_id = self.client.create_experiment(
                EXPERIMENT, artifact_location=(folder / "artifacts").as_uri()
            )
        else:
            self.experiment_id = experiment.experiment_id
        self._mlflow = mlflow

    def activate(self) -> None:
        """Point MLflow's module-level API (start_run, log_model) at this store."""
        import mlflow

        mlflow.set_tracking_uri(self.uri)
        mlflow.set_registry_uri(self.uri)

    def log_sklearn(
        self,
        model: Any,
        *,
        signature: Any,
        requirements: list[str],
        accuracy: float,
        registered_model_name: str | None = None,
    ) -> Any:
        """Log ``model`` and its accuracy in a new run, register it when a name is given, and return the model info."""
        mlflow = self._mlflow
        quiet = contextlib.redirect_stderr(RegistrationNoiseFilter(sys.stderr))
        with quiet, mlflow.start_run(experiment_id=self.experiment_id):
            mlflow.log_metric(ACCURACY_TAG, accuracy)
            return mlflow.sklearn.log_model(
                model,
                name="model",
                signature=signature,
                pip_requirements=requirements,
                registered_model_name=registered_model_name,
            )

    def source_of(self, model_info: Any) -> str:
        """Return the artifact location of a logged model, to register versions of it by reference."""
        return str(self._mlflow.get_logged_model(model_info.model_id).artifact_location)

    def search(self, filter_string: str) -> Iterator[Any]:
        """Yield every model version that matches ``filter_string``, page by page."""
        token = None
        while True:
            page = self.client.search_model_versions(filter_string, max_results=10_000, page_token=token)
            yield from page
            token = page.token
            if not token:
                return
