"""Experiment tracking: one ``ExperimentRun`` per run, recorded as its own event stream.

A run records its start and parameters, the metrics it logs, the model
versions it registers and its end. The versions it registers carry the
experiment's name, metrics and increment in their metadata, so the lineage
of a version leads back to its experiment.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import uuid
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any

from registry import errors
from registry.aggregate import Context, ExperimentAggregate
from registry.errors import ExperimentAlreadyEnded
from registry.metadata import check_metadata

if TYPE_CHECKING:
    from registry.api import ModelRegistry
    from registry.views import ModelVersion

logger = logging.getLogger(__name__)

MAX_EXPERIMENT_NAME_LENGTH = 128


def check_experiment_name(name: object) -> str:
    """Return ``name`` if it is a usable experiment name, else raise ``InvalidInput``."""
    if not isinstance(name, str) or not name.strip() or name != name.strip() or len(name) > MAX_EXPERIMENT_NAME_LENGTH:
        raise errors.InvalidInput(
            f"invalid experiment name {name!r}: expected text of 1 to {MAX_EXPERIMENT_NAME_LENGTH} characters "
            "without leading or trailing spaces, such as 'xgboost-v1'",
            value=name,
        )
    return name


class ExperimentRun:
    """One run of an experiment, started by ``track_experiment()``.

    Use it as a context manager: a normal exit ends the run as completed, and
    an exception ends it as failed with the error's type and message, then
    propagates. After the end, every logging call raises ``ExperimentAlreadyEnded``.
    """

    def __init__(
        self,
        registry: ModelRegistry,
        experiment: str,
        *,
        increment: str | None = None,
        actor: str | None = None,
        owns_registry: bool = False,
    ) -> None:
        self.registry = registry
        self.experiment = experiment
        self.increment = increment
        self.actor = actor
        self.id = uuid.uuid4()
        self._owns_registry = owns_registry
        self._state: ExperimentAggregate | None = None

    # --- state ----------------------------------------------------------------

    @property
    def status(self) -> str:
        """The run's status: "running", "completed" or "failed"."""
        return self._current().status

    @property
    def parameters(self) -> dict[str, Any]:
        """The parameters logged so far."""
        return dict(self._current().parameters)

    @property
    def metrics(self) -> dict[str, float]:
        """The last value logged for each metric."""
        return dict(self._current().metrics)

    # --- commands -------------------------------------------------------------

    def start(self, parameters: Mapping[str, Any]) -> None:
        """Record the run's start. ``track_experiment()`` calls this."""
        if self._state is not None:
            raise errors.InvalidInput(
                f"experiment run {self.id} has already started; start another run with track_experiment()",
                value=str(self.id),
            )
        self._state = self._execute(
            lambda _, context: ExperimentAggregate.start(context, self.id, self.experiment, parameters)
        )
        logger.info("started experiment %s run %s", self.experiment, self.id)

    def log_params(self, **parameters: Any) -> None:
        """Record parameters given as keyword arguments. A name logged again takes the new value."""
        self.log_parameters(parameters)

    def log_parameters(self, parameters: Mapping[str, Any]) -> None:
        """Record parameters given as a mapping. A name logged again takes the new value."""
        self._update(lambda run, context: run.log_parameters(context, parameters))

    def log_metrics(self, **metrics: float) -> None:
        """Record metrics, which must be finite numbers. A name logged again takes the new value."""
        self._update(lambda run, context: run.log_metrics(context, metrics))

    def register_model(
        self,
        model: Any,
        name: str,
        *,
        version: str | int | None = None,
        metadata: Mapping[str, Any] | None = None,
        tags: Sequence[str] | None = None,
        input_example: Any = None,
        auto_version: bool = True,
        stage: str = "dev",
    ) -> ModelVersion:
        """Register a version of ``name`` produced by this run, and record it on the run.

        The version's metadata gets ``experiment`` and ``increment`` from the
        run, and the run's metrics as defaults that ``metadata`` overrides.
        An explicit ``version`` turns ``auto_version`` off.
        """
        current = self._current()
        if current.status != "running":
            raise ExperimentAlreadyEnded(current.experiment, current.id, current.status)
        merged = self._lineage_metadata(check_metadata(metadata))

        registered = self.registry.register_model(
            name,
            model,
            version=version,
            metadata=merged,
            stage=stage,
            tags=tags,
            input_example=input_example,
            auto_version=auto_version and version is None,
            actor=self.actor,
            increment=self.increment,
        )
        # NOTE: the version and this record are two transactions. If this one fails,
        # the version keeps its experiment metadata, but the run does not list it.
        self._update(lambda run, context: run.record_version(context, model=name, version=registered.version))
        return registered

    def end(self, error: BaseException | None = None) -> None:
        """Record the end of the run: completed, or failed with ``error``."""
        text = f"{type(error).__name__}: {error}" if error is not None else None
        self._update(lambda run, context: run.end(context, error=text))
        logger.info("ended experiment %s run %s: %s", self.experiment, self.id, self.status)

    # --- context manager ------------------------------------------------------

    def __enter__(self) -> ExperimentRun:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            if self._current().status != "running":
                return
            if exc is None:
                self.end()
                return
            try:
                self.end(exc)
            except errors.RegistryError:
                # The block's own exception is the one the caller must see.
                logger.exception("failed to record the failure of experiment %s run %s", self.experiment, self.id)
        finally:
            if self._owns_registry:
                self.registry.close()

    # --- internals ------------------------------------------------------------

    def _current(self) -> ExperimentAggregate:
        if self._state is None:
            raise errors.InvalidInput(
                f"experiment run {self.id} has not started; create runs with track_experiment()",
                value=str(self.id),
            )
        return self._state

    def _context(self) -> Context:
        context = self.registry._context(self.actor, None)
        return dataclasses.replace(context, increment=self.increment)

    def _execute(
        self, command: Callable[[ExperimentAggregate | None, Context], ExperimentAggregate]
    ) -> ExperimentAggregate:
        self._state = self.registry._execute_experiment(self.id, command, self._context())
        return self._state

    def _update(self, action: Callable[[ExperimentAggregate, Context], None]) -> None:
        """Apply ``action`` to the stored run, which start() saved first, and save its events."""

        def command(run: ExperimentAggregate | None, context: Context) -> ExperimentAggregate:
            assert run is not None
            action(run, context)
            return run

        self._execute(command)

    def _lineage_metadata(self, metadata: dict[str, Any]) -> dict[str, Any]:
        lineage = {"experiment": self.experiment}
        if self.increment is not None:
            lineage["increment"] = self.increment
        for key, value in lineage.items():
            given = metadata.get(key)
            if given is not None and given != value:
                raise errors.InvalidMetadata(
                    f"metadata[{key!r}] is {given!r} but this experiment run records {value!r}; "
                    "drop the key from metadata or make the two agree",
                    value=given,
                )
        return {**self.metrics, **metadata, **lineage}


def track_experiment(
    name: str,
    *,
    increment: str | None = None,
    parameters: Mapping[str, Any] | None = None,
    actor: str | None = None,
    registry: ModelRegistry | None = None,
    home: str | os.PathLike[str] | None = None,
) -> ExperimentRun:
    """Start a run of experiment ``name``, to use as ``with track_experiment(...) as run:``.

    Without ``registry``, the run opens ``ModelRegistry(home=home, increment=increment)``
    and closes it when the ``with`` block exits.
    """
    if registry is not None:
        return registry.track_experiment(name, increment=increment, parameters=parameters, actor=actor)

    from registry.api import ModelRegistry

    opened = ModelRegistry(home=home, increment=increment)
    try:
        run = ExperimentRun(
            opened, check_experiment_name(name), increment=opened.increment, actor=actor, owns_registry=True
        )
        run.start(parameters or {})
    except BaseException:
        opened.close()
        raise
    return run

