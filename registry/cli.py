"""The ``registry`` command line: a thin layer over ``ModelRegistry``.

Each command opens the registry, calls one API function and prints the result
as a rich table, or as one JSON document with ``--json``. A ``RegistryError``
or a usage error prints one ``error:`` line on stderr. Exit codes: 0 on
success, 1 when the registry rejects the command or a check fails, 2 for
usage errors.
"""

from __future__ import annotations

import json
import os
import pickle
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import orjson
import yaml
from rich.console import Console
from rich.table import Table

from registry.api import ModelRegistry
from registry.clock import to_utc
from registry.errors import NoVersionInStage, RegistryError
from registry.files import write_atomically
from registry.governance import ModelGovernance
from registry.metadata import FRACTION_METRICS, metrics_of
from registry.persistence import redact_url
from registry.views import ModelVersion

DEBUG_VARIABLE = "REGISTRY_DEBUG"


class CliError(Exception):
    """Raised for a bad command-line input that never reaches the registry, such as an unreadable file."""


@dataclass(frozen=True)
class Options:
    """The global options, shared by every command through the click context."""

    home: Path | None
    as_json: bool
    actor: str | None

    def open(self) -> ModelRegistry:
        return ModelRegistry(home=self.home, actor=self.actor)


class RegistryGroup(click.Group):
    """A click group that prints every error as one line on stderr."""

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        # standalone_mode=False makes click raise its errors here instead of printing usage text.
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.UsageError as error:
            command = error.ctx.command_path if error.ctx else "registry"
            _exit_with_error(f"{error.format_message()} (see '{command} --help')", error.exit_code)
        except click.ClickException as error:
            _exit_with_error(error.format_message(), error.exit_code)
        except click.Abort:
            _exit_with_error("aborted", 1)
        except (RegistryError, CliError) as error:
            _exit_with_error(str(error), 1)
        except Exception as error:
            if os.environ.get(DEBUG_VARIABLE) == "1":
                raise
            _exit_with_error(
                f"unexpected {type(error).__name__}: {error}. Set {DEBUG_VARIABLE}=1 to see the traceback", 1
            )
        sys.exit(code if isinstance(code, int) else 0)


def _exit_with_error(message: str, code: int) -> None:
    click.echo("error: " + " ".join(message.split()), err=True)
    sys.exit(code)


def _show_warning(message: Warning | str, category: type[Warning], *args: Any, **kwargs: Any) -> None:
    # A deprecated version warns; keep that to one line on stderr as well.
    click.echo("warning: " + " ".join(str(message).split()), err=True)


@click.group(cls=RegistryGroup)
@click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder of the registry store. Default: $REGISTRY_HOME, else ./.registry.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout instead of tables.")
@click.option("--actor", default=None, help="Who runs the command. Default: $REGISTRY_USER, else the OS user.")
@click.pass_context
def main(ctx: click.Context, home: Path | None, as_json: bool, actor: str | None) -> None:
    """Manage model versions, stages, approvals and history in an event-sourced registry."""
    warnings.showwarning = _show_warning
    ctx.obj = Options(home=home, as_json=as_json, actor=actor)


# --- output helpers -----------------------------------------------------------


def _print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=True, default=str))


def _print_table(title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    table = Table(title=title)
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*("" if cell is None else str(cell) for cell in row))
    Console().print(table)


def _versions_table(title: str | None, versions: Sequence[ModelVersion]) -> None:
    rows = [
        (
            version.version,
            version.stage,
            ", ".join(version.tags),
            _metrics_text(version.metadata),
            version.registered_by,
            version.created_at.strftime("%Y-%m-%d %H:%M"),
            "yes" if version.deprecation else "",
        )
        for version in versions
    ]
    _print_table(title, ["version", "stage", "tags", "metrics", "registered by", "created (UTC)", "deprecated"], rows)


def _metrics_text(metadata: dict[str, Any]) -> str:
    metrics = {key: value for key, value in metrics_of(metadata).items() if key in FRACTION_METRICS}
    return ", ".join(f"{key}={value:.4g}" for key, value in metrics.items())


def _print_version(options: Options, action: str, version: ModelVersion) -> None:
    if options.as_json:
        _print_json(version.to_dict())
    else:
        click.echo(f"{action} {version.name} {version.version} (stage: {version.stage})")


# --- reading input files ------------------------------------------------------


def _read_metadata(path: Path) -> dict[str, Any]:
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(text)
        elif path.suffix.lower() in (".yaml", ".yml"):
            data = yaml.safe_load(text)
        else:
            raise CliError(f"invalid metadata file {path}: expected a .json, .yaml or .yml file")
    except (json.JSONDecodeError, yaml.YAMLError) as error:
        raise CliError(f"invalid metadata file {path}: {error}") from error
    if not isinstance(data, dict):
        raise CliError(f"invalid metadata file {path}: expected a mapping such as {{\"accuracy\": 0.95}}")
    return data


def _load_model_file(path: Path) -> Any:
    """Load a model from a joblib or pickle, XGBoost or skops file, chosen by its suffix."""
    suffix = path.suffix.lower()
    try:
        if suffix in (".pkl", ".pickle", ".joblib"):
            import joblib

            return joblib.load(path)  # noqa: S301 - the user names a file they trust
        if suffix in (".json", ".ubj"):
            import xgboost

            booster = xgboost.Booster()
            booster.load_model(str(path))
            return booster
        if suffix == ".skops":
            import skops.io

            return skops.io.load(path, trusted=skops.io.get_untrusted_types(file=path))
    except ImportError as error:
        raise CliError(f"failed to load {path}: {error.name} is not installed; install it to read {suffix} files") from error
    except (OSError, ValueError, EOFError, pickle.UnpicklingError) as error:
        raise CliError(f"failed to load model file {path}: {error}") from error
    raise CliError(
        f"unsupported model file {path}: expected .pkl or .joblib (joblib or pickle), "
        ".json or .ubj (XGBoost) or .skops"
    )


# --- commands -----------------------------------------------------------------


@main.command("list")
@click.pass_obj
def list_command(options: Options) -> None:
    """List every model with its latest and production versions."""
    with options.open() as registry:
        models = registry.list_models()
    if options.as_json:
        _print_json({"models": [model.to_dict() for model in models]})
        return
    rows = [
        (model.name, model.latest_version, model.production_version, model.version_count,
         model.updated_at.strftime("%Y-%m-%d %H:%M"))
        for model in models
    ]
    _print_table("Models", ["name", "latest", "production", "versions", "updated (UTC)"], rows)


@main.command()
@click.argument("name")
@click.pass_obj
def info(options: Options, name: str) -> None:
    """Show the production version of NAME, if any, and all its versions."""
    with options.open() as registry:
        versions = registry.list_versions(name)
        try:
            production: ModelVersion | None = registry.get_model(name, stage="production")
        except NoVersionInStage:
            production = None
    if options.as_json:
        _print_json({
            "name": name,
            "production": production.to_dict() if production else None,
            "versions": [version.to_dict() for version in versions],
        })
        return
    click.echo(f"{name}: production version {production.version if production else 'none'}")
    _versions_table(f"Versions of {name}", versions)


@main.command()
@click.argument("name")
@click.argument("model_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--metadata", "metadata_file", required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="JSON or YAML file of metadata: metrics such as accuracy, algorithm, experiment.",
)
@click.option("--version", default=None, help="Version such as v1.2.0. Default: the next version by the change rule.")
@click.option("--stage", default="dev", show_default=True, help="Stage to register in: dev or staging.")
@click.option("--tag", "tags", multiple=True, help="Tag of the version; repeat for several tags.")
@click.pass_obj
def register(
    options: Options, name: str, model_file: Path, metadata_file: Path,
    version: str | None, stage: str, tags: tuple[str, ...],
) -> None:
    """Register MODEL_FILE as a new version of NAME.

    MODEL_FILE is a joblib or pickle file (.pkl, .joblib), an XGBoost model
    (.json, .ubj), loaded as a plain xgboost.Booster without the scikit-learn
    wrapper, or a skops file (.skops). Loading a pickle or skops file runs code
    from it, so register only files you trust.
    """
    model = _load_model_file(model_file)
    metadata = _read_metadata(metadata_file)
    with options.open() as registry:
        registered = registry.register_model(name, model, version=version, metadata=metadata, stage=stage, tags=list(tags))
    _print_version(options, "registered", registered)


@main.command()
@click.argument("name")
@click.argument("version")
@click.option("--to", "to_stage", required=True, help="Stage to move the version to: staging, production or archived.")
@click.option("--from", "from_stage", default=None, help="Stage the version is in now. Default: its current stage.")
@click.option("--reason", default=None, help="Why the version moves, kept in the history.")
@click.pass_obj
def promote(
    options: Options, name: str, version: str, to_stage: str, from_stage: str | None, reason: str | None
) -> None:
    """Move VERSION of NAME to another stage."""
    with options.open() as registry:
        if from_stage is None:
            from_stage = registry.get_model(name, version=version).stage
        promoted = registry.promote_model(name, version, from_stage=from_stage, to_stage=to_stage, reason=reason)
    _print_version(options, "promoted", promoted)


@main.command()
@click.argument("name")
@click.argument("version")
@click.option("--approver", required=True, help="Who approves; must be on the stage's approver list.")
@click.option("--comments", default=None, help="Comments kept with the approval.")
@click.option("--stage", default="production", show_default=True, help="Stage the approval is for.")
@click.pass_obj
def approve(options: Options, name: str, version: str, approver: str, comments: str | None, stage: str) -> None:
    """Approve promoting VERSION of NAME to a stage."""
    with options.open() as registry:
        approved = registry.approve_model(name, version, approver=approver, comments=comments, stage=stage)
    _print_version(options, f"{approver} approved", approved)


@main.command()
@click.argument("name")
@click.argument("version")
@click.option("--approver", required=True, help="Who rejects; must be on the stage's approver list.")
@click.option("--reason", required=True, help="Why the promotion is rejected.")
@click.option("--stage", default="production", show_default=True, help="Stage the rejection is for.")
@click.pass_obj
def reject(options: Options, name: str, version: str, approver: str, reason: str, stage: str) -> None:
    """Reject promoting VERSION of NAME to a stage."""
    with options.open() as registry:
        rejected = registry.reject_model(name, version, approver=approver, reason=reason, stage=stage)
    _print_version(options, f"{approver} rejected", rejected)


@main.command()
@click.argument("name")
@click.option("--to", "to_version", required=True, help="Earlier production version to restore, such as v3.0.0.")
@click.option("--reason", required=True, help="Why production is rolled back, kept in the history.")
@click.pass_obj
def rollback(options: Options, name: str, to_version: str, reason: str) -> None:
    """Make an earlier production version of NAME production again."""
    with options.open() as registry:
        restored = registry.rollback(name, to_version, reason)
    _print_version(options, "rolled back to", restored)


@main.command()
@click.argument("name")
@click.argument("version")
@click.option("--reason", required=True, help="Why the version is deprecated.")
@click.option(
    "--end-of-life", default=None,
    help="Date or ISO time (UTC) after which reading the version fails, such as 2025-06-30.",
)
@click.pass_obj
def deprecate(options: Options, name: str, version: str, reason: str, end_of_life: str | None) -> None:
    """Mark VERSION of NAME deprecated."""
    with options.open() as registry:
        deprecated = registry.deprecate_model(name, version, reason, end_of_life=end_of_life)
    _print_version(options, "deprecated", deprecated)


@main.command()
@click.argument("name")
@click.argument("version_a")
@click.argument("version_b")
@click.option(
    "--format", "output_format", type=click.Choice(["text", "markdown", "json"]), default="text",
    show_default=True, help="How to render the comparison; --json overrides it.",
)
@click.pass_obj
def compare(options: Options, name: str, version_a: str, version_b: str, output_format: str) -> None:
    """Compare VERSION_B of NAME against VERSION_A: metrics, latency, size, features and a verdict."""
    with options.open() as registry:
        comparison = registry.compare_models(model_a=f"{name}-{version_a}", model_b=f"{name}-{version_b}")
    if options.as_json:
        _print_json(comparison.to_dict())
    elif output_format == "markdown":
        click.echo(comparison.to_markdown())
    elif output_format == "json":
        click.echo(comparison.to_json())
    else:
        click.echo(comparison.to_text())


@main.command()
@click.argument("name")
@click.argument("version")
@click.option(
    "--format", "output_format", type=click.Choice(["tree", "json"]), default="tree",
    show_default=True, help="Indented tree or node-link JSON; --json overrides it.",
)
@click.pass_obj
def lineage(options: Options, name: str, version: str, output_format: str) -> None:
    """Show where VERSION of NAME came from: data, features, experiment, parents and deployments."""
    with options.open() as registry:
        graph = registry.get_lineage(name, version)
    if options.as_json:
        _print_json(graph.to_node_link())
    elif output_format == "json":
        click.echo(graph.to_json())
    else:
        click.echo(graph.to_tree())


@main.command()
@click.argument("name")
@click.pass_obj
def history(options: Options, name: str) -> None:
    """Show every event of NAME, oldest first, with actor and reason."""
    with options.open() as registry:
        entries = registry.history(name)
    if options.as_json:
        _print_json({"name": name, "history": [entry.to_dict() for entry in entries]})
        return
    rows = [
        (entry.position, entry.effective_at.strftime("%Y-%m-%d %H:%M:%S"), entry.event, entry.version,
         _stage_change(entry.from_stage, entry.to_stage), entry.actor, entry.reason)
        for entry in entries
    ]
    _print_table(f"History of {name}", ["#", "effective (UTC)", "event", "version", "stages", "actor", "reason"], rows)


def _stage_change(from_stage: str | None, to_stage: str | None) -> str:
    if to_stage is None:
        return ""
    return f"{from_stage} → {to_stage}" if from_stage else f"→ {to_stage}"


@main.command()
@click.pass_obj
def docs(options: Options) -> None:
    """Bring the generated Markdown docs up to date and print their folder."""
    with options.open() as registry:
        folder = registry.write_docs()
    if options.as_json:
        _print_json({"docs": str(folder)})
    else:
        click.echo(str(folder))


@main.command()
@click.option("--projection", "projections", multiple=True, help="Read model to rebuild; repeat for several. Default: all.")
@click.option("--as-of", default=None, help="Stop at this date or ISO time (UTC); writes to a separate file.")
@click.option("--position", type=int, default=None, help="Stop at this notification id; writes to a separate file.")
@click.option("--target", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="SQLite file to rebuild into. Default: the live read models, or home/rebuilds/ with --as-of or --position.")
@click.pass_obj
def rebuild(
    options: Options, projections: tuple[str, ...], as_of: str | None, position: int | None, target: Path | None
) -> None:
    """Rebuild read models from the first event and print the database they are in."""
    with options.open() as registry:
        database = registry.rebuild_projections(list(projections) or None, as_of=as_of, position=position, target=target)
    if options.as_json:
        _print_json({"database": str(database)})
    else:
        click.echo(f"rebuilt read models in {database}")


@main.command()
@click.option(
    "--heads", "heads_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
    help="JSON file of stream heads. When it exists, each recorded head must still be in its stream; "
    "after a clean check, the current heads replace it.",
)
@click.pass_obj
def verify(options: Options, heads_file: Path | None) -> None:
    """Recompute the hash chain of every event and the digest of every artifact; exit 1 if any link is broken."""
    expected = _read_heads(heads_file) if heads_file is not None and heads_file.exists() else None
    with options.open() as registry:
        result = ModelGovernance(registry=registry).verify(expected_heads=expected)
        location = redact_url(registry.database_url) if registry.database_url else str(registry.home)
    if result.events_checked == 0:
        raise CliError(f"nothing to verify: the registry at {location} has no events; check --home")
    if heads_file is not None and result.ok:
        write_atomically(heads_file, orjson.dumps(result.heads, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
    if options.as_json:
        _print_json(result.to_dict())
    else:
        for problem in result.problems:
            click.echo(f"FAILED [{problem.kind}] {problem.message}")
        click.echo(result.summary())
        if heads_file is not None and result.ok:
            count = len(result.heads)
            click.echo(f"recorded the head{'' if count == 1 else 's'} of {count} stream{'' if count == 1 else 's'} in {heads_file}")
    if not result.ok:
        sys.exit(1)


def _read_heads(path: Path) -> dict[str, str]:
    try:
        heads = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as error:
        raise CliError(f"cannot read heads file {path}: {error}; pass a file that verify --heads wrote") from None
    if not isinstance(heads, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in heads.items()):
        raise CliError(
            f"invalid heads file {path}: expected a JSON object of stream names and hashes, "
            "as verify --heads writes it"
        )
    return heads


@main.command()
@click.argument("name")
@click.option(
    "--from", "start", required=True,
    help="Start of the window: an ISO time such as 2024-03-01T00:00 (UTC unless it has an offset). "
    "A bare date such as 2024-03-01 means the end of that day.",
)
@click.option(
    "--to", "end", required=True,
    help="End of the window, included: an ISO time, or a date, which means the end of that day (UTC).",
)
@click.option(
    "--format", "output_format", type=click.Choice(["md", "html", "json"]), default=None,
    help="Markdown, one self-contained HTML page with a metrics chart, or JSON. "
    "Default: taken from the --output suffix, else md.",
)
@click.option(
    "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
    help="File to write the report to, replaced atomically. Default: print the report on stdout.",
)
@click.pass_obj
def audit(
    options: Options, name: str, start: str, end: str, output_format: str | None, output: Path | None
) -> None:
    """Write the compliance audit report of NAME for a time window: deployments, approvals and checkpoints."""
    window_start = to_utc(start, argument="--from")
    window_end = to_utc(end, argument="--to")
    if window_end < window_start:
        raise CliError(
            f"invalid window: --to {window_end.isoformat(timespec='seconds')} is before "
            f"--from {window_start.isoformat(timespec='seconds')}; "
            "pass a --to at or after --from"
        )
    with options.open() as registry:
        report = ModelGovernance(registry=registry).generate_audit_report(name, window_start, window_end)
    if output is not None:
        report.write(output, format=output_format)
        output_format = output_format or output.suffix.lower().lstrip(".")
    output_format = output_format or "md"
    if options.as_json:
        _print_json(report.to_dict())
    elif output is not None:
        click.echo(f"wrote the audit report of {name} ({output_format}) to {output}")
    else:
        click.echo(report.render(output_format), nl=False)


if __name__ == "__main__":
    main()
