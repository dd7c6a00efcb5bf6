"""The ``registry`` command line, run end to end in a subprocess against a real SQLite store."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import joblib
import pytest
import yaml

from registry import ModelRegistry
from registry.cli import main

MODEL = "fraud-detection-model"
README = Path(__file__).resolve().parent.parent / "README.md"


def run(home: Path | None, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m registry.cli`` with ``--home home`` before ``args``."""
    command = [sys.executable, "-m", "registry.cli"]
    if home is not None:
        command += ["--home", str(home)]
    environment = {key: value for key, value in os.environ.items() if key != "REGISTRY_DEBUG"}
    environment.update(env or {})
    return subprocess.run(
        command + list(args), capture_output=True, text=True, env=environment, timeout=180, check=False
    )


def run_json(home: Path, *args: str) -> Any:
    result = run(home, "--json", *args)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture
def home(tmp_path: Path, models: Any) -> Path:
    """A store with v3.0.0 in production and v3.1.0 in staging, registered by alice."""
    path = tmp_path / "store"
    with ModelRegistry(home=path, actor="alice") as registry:
        x = models.x_train[models.features_v1]
        for version, accuracy in (("v3.0.0", 0.95), ("v3.1.0", 0.96)):
            registry.register_model(
                MODEL,
                models.logistic,
                version=version,
                metadata={"accuracy": accuracy, "algorithm": "logistic_regression", "experiment": "exp-003"},
                tags=["baseline"],
                input_example=x.head(5),
            )
            registry.promote_model(MODEL, version, from_stage="dev", to_stage="staging")
        registry.promote_model(MODEL, "v3.0.0", from_stage="staging", to_stage="production")
    return path


# --- reading ------------------------------------------------------------------


def test_list_shows_models(home: Path) -> None:
    result = run(home, "list")

    assert result.returncode == 0, result.stderr
    assert MODEL in result.stdout
    assert "v3.0.0" in result.stdout


def test_list_json(home: Path) -> None:
    document = run_json(home, "list")

    assert [model["name"] for model in document["models"]] == [MODEL]
    assert document["models"][0]["production_version"] == "v3.0.0"
    assert document["models"][0]["version_count"] == 2


def test_list_reads_registry_home(home: Path) -> None:
    result = run(None, "--json", "list", env={"REGISTRY_HOME": str(home)})

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["models"][0]["name"] == MODEL


def test_info_shows_production_and_versions(home: Path) -> None:
    result = run(home, "info", MODEL)

    assert result.returncode == 0, result.stderr
    assert "production version v3.0.0" in result.stdout
    assert "v3.1.0" in result.stdout
    assert "staging" in result.stdout


def test_info_json(home: Path) -> None:
    document = run_json(home, "info", MODEL)

    assert document["name"] == MODEL
    assert document["production"]["version"] == "v3.0.0"
    assert [version["version"] for version in document["versions"]] == ["v3.0.0", "v3.1.0"]
    assert "model" not in document["production"]


def test_info_without_production(tmp_path: Path, models: Any) -> None:
    with ModelRegistry(home=tmp_path, actor="alice") as registry:
        registry.register_model(MODEL, models.logistic, version="v1.0.0", metadata={"accuracy": 0.9})

    document = run_json(tmp_path, "info", MODEL)

    assert document["production"] is None
    assert run(tmp_path, "info", MODEL).stdout.startswith(f"{MODEL}: production version none")


def test_history_lists_events(home: Path) -> None:
    result = run(home, "history", MODEL)

    assert result.returncode == 0, result.stderr
    assert "History of" in result.stdout
    assert "alice" in result.stdout


def test_history_json(home: Path) -> None:
    document = run_json(home, "history", MODEL)

    assert document["name"] == MODEL
    assert [entry["event"] for entry in document["history"]][:2] == ["ModelCreated", "Registered"]
    assert len(document["history"]) == 6
    assert document["history"][-1]["to_stage"] == "production"
    assert document["history"][-1]["version"] == "v3.0.0"


@pytest.mark.parametrize(
    ("output_format", "expected"), [("text", "v3.1.0"), ("markdown", "|"), ("json", '"recommendation"')]
)
def test_compare_formats(home: Path, output_format: str, expected: str) -> None:
    result = run(home, "compare", MODEL, "v3.0.0", "v3.1.0", "--format", output_format)

    assert result.returncode == 0, result.stderr
    assert expected in result.stdout


def test_compare_json(home: Path) -> None:
    document = run_json(home, "compare", MODEL, "v3.0.0", "v3.1.0")

    assert "recommendation" in document
    assert "accuracy" in json.dumps(document["metrics"])


def test_lineage_tree(home: Path) -> None:
    result = run(home, "lineage", MODEL, "v3.1.0")

    assert result.returncode == 0, result.stderr
    assert "exp-003" in result.stdout


def test_lineage_json(home: Path) -> None:
    document = run_json(home, "lineage", MODEL, "v3.1.0")

    assert "nodes" in document
    assert document["graph"]["root"]
    assert json.loads(run(home, "lineage", MODEL, "v3.1.0", "--format", "json").stdout) == document


# --- writing ------------------------------------------------------------------


def test_register_joblib_file(home: Path, tmp_path: Path, models: Any) -> None:
    model_file = tmp_path / "model.joblib"
    joblib.dump(models.logistic, model_file)
    metadata_file = tmp_path / "metadata.yaml"
    metadata_file.write_text(yaml.safe_dump({"accuracy": 0.97, "algorithm": "logistic_regression"}))

    document = run_json(
        home, "register", MODEL, str(model_file), "--metadata", str(metadata_file),
        "--version", "v3.2.0", "--tag", "candidate", "--tag", "cli",
    )

    assert document["version"] == "v3.2.0"
    assert document["stage"] == "dev"
    assert document["tags"] == ["candidate", "cli"]
    assert document["metadata"]["accuracy"] == 0.97


def test_register_skops_file(tmp_path: Path, models: Any) -> None:
    import skops.io

    model_file = tmp_path / "model.skops"
    skops.io.dump(models.logistic, model_file)
    metadata_file = tmp_path / "metadata.json"
    metadata_file.write_text(json.dumps({"accuracy": 0.9}))

    result = run(tmp_path / "store", "register", "skops-model", str(model_file), "--metadata", str(metadata_file),
                 "--stage", "staging")

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "registered skops-model v1.0.0 (stage: staging)"


def test_register_xgboost_file(tmp_path: Path, models: Any) -> None:
    model_file = tmp_path / "model.ubj"
    models.xgboost.save_model(model_file)
    metadata_file = tmp_path / "metadata.json"
    metadata_file.write_text(json.dumps({"accuracy": 0.93, "algorithm": "xgboost"}))

    document = run_json(tmp_path / "store", "register", "xgb-model", str(model_file), "--metadata", str(metadata_file))

    assert document["artifact"]["format"] == "xgboost-ubj"
    assert document["artifact"]["loader"].endswith("Booster")


def test_register_rejects_unknown_suffix(home: Path, tmp_path: Path) -> None:
    model_file = tmp_path / "model.bin"
    model_file.write_bytes(b"not a model")
    metadata_file = tmp_path / "metadata.json"
    metadata_file.write_text("{}")

    result = run(home, "register", MODEL, str(model_file), "--metadata", str(metadata_file))

    assert result.returncode == 1
    assert result.stderr.startswith("error: unsupported model file")
    assert len(result.stderr.splitlines()) == 1


def test_promote_defaults_from_current_stage(home: Path) -> None:
    result = run(home, "promote", MODEL, "v3.1.0", "--to", "production")

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"promoted {MODEL} v3.1.0 (stage: production)"
    versions = {version["version"]: version["stage"] for version in run_json(home, "info", MODEL)["versions"]}
    assert versions == {"v3.0.0": "archived", "v3.1.0": "production"}


def test_rollback_restores_production(home: Path) -> None:
    assert run(home, "promote", MODEL, "v3.1.0", "--from", "staging", "--to", "production").returncode == 0

    result = run(home, "--actor", "oncall", "rollback", MODEL, "--to", "v3.0.0", "--reason", "false positives up")

    assert result.returncode == 0, result.stderr
    assert run_json(home, "info", MODEL)["production"]["version"] == "v3.0.0"
    last = run_json(home, "history", MODEL)["history"][-1]
    assert last["reason"] == "false positives up"
    assert last["actor"] == "oncall"


def test_approve_and_reject(home: Path) -> None:
    with ModelRegistry(home=home, actor="alice") as registry:
        registry.set_approval_required(stage="production", approvers=["bob", "carol"], min_approvals=1)

    rejected = run(home, "reject", MODEL, "v3.1.0", "--approver", "carol", "--reason", "recall too low")
    blocked = run(home, "promote", MODEL, "v3.1.0", "--to", "production")
    approved = run(home, "approve", MODEL, "v3.1.0", "--approver", "carol", "--comments", "recall fixed")
    promoted = run(home, "promote", MODEL, "v3.1.0", "--to", "production")

    assert rejected.returncode == 0, rejected.stderr
    assert rejected.stdout.startswith("carol rejected")
    assert blocked.returncode == 1
    assert len(blocked.stderr.splitlines()) == 1
    assert approved.returncode == 0, approved.stderr
    assert promoted.returncode == 0, promoted.stderr


def test_deprecate_with_end_of_life(home: Path) -> None:
    document = run_json(home, "deprecate", MODEL, "v3.1.0", "--reason", "superseded", "--end-of-life", "2099-12-31")

    assert document["deprecation"]["reason"] == "superseded"
    assert document["deprecation"]["end_of_life"].startswith("2099-12-31")


# --- maintenance --------------------------------------------------------------


def test_docs_prints_folder(home: Path) -> None:
    result = run(home, "docs")

    assert result.returncode == 0, result.stderr
    folder = Path(result.stdout.strip())
    assert folder.is_dir()
    assert any(folder.rglob("model-registry.md"))


def test_rebuild_in_place_and_to_target(home: Path, tmp_path: Path) -> None:
    target = tmp_path / "past.sqlite3"

    in_place = run(home, "rebuild", "--projection", "catalog")
    at_position = run_json(home, "rebuild", "--position", "2", "--target", str(target))

    assert in_place.returncode == 0, in_place.stderr
    assert "rebuilt read models in" in in_place.stdout
    assert Path(at_position["database"]) == target
    assert target.exists()


def test_verify_passes_on_intact_store(home: Path) -> None:
    result = run(home, "verify")
    document = run_json(home, "verify")

    assert result.returncode == 0, result.stderr
    assert "the hash chains and artifact digests hold" in result.stdout
    assert document["ok"] is True
    assert document["artifacts_checked"] == 2
    assert document["events_checked"] == document["streams_checked"] + (
        len(run_json(home, "history", MODEL)["history"]) - 1
    )


def test_verify_reports_corrupt_blob(home: Path) -> None:
    with ModelRegistry(home=home) as registry:
        ref = registry.get_model(MODEL, version="v3.1.0").artifact
        blob = registry.artifacts.path_of(ref.sha256)
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF
    blob.chmod(0o644)
    blob.write_bytes(bytes(data))

    result = run(home, "verify")
    document = json.loads(run(home, "--json", "verify").stdout)

    assert result.returncode == 1
    assert f"FAILED [artifact_altered] artifact sha256:{ref.sha256[:12]}… of {MODEL} v3.1.0" in result.stdout
    assert "verification failed after checking" in result.stdout
    assert document["ok"] is False
    assert [problem["kind"] for problem in document["problems"]] == ["artifact_altered"]


def test_verify_heads_file_catches_removed_newest_event(home: Path, tmp_path: Path) -> None:
    heads = tmp_path / "heads.json"
    first = run(home, "verify", "--heads", str(heads))
    recorded = json.loads(heads.read_text())
    (home / "read_models.sqlite3").unlink(missing_ok=True)
    with sqlite3.connect(home / "events.sqlite3") as db:
        db.execute("DELETE FROM stored_events WHERE originator_version = (SELECT MAX(originator_version) FROM stored_events)")

    second = run(home, "verify", "--heads", str(heads))

    assert first.returncode == 0, first.stderr
    assert f"recorded the head of 1 stream in {heads}" in first.stdout
    assert list(recorded) == [MODEL]
    assert second.returncode == 1
    assert f"FAILED [removed] stream {MODEL}: the head {recorded[MODEL][:12]}… recorded earlier" in second.stdout
    assert json.loads(heads.read_text()) == recorded


def test_verify_empty_home_fails(tmp_path: Path) -> None:
    result = run(tmp_path / "mistyped", "verify")

    assert result.returncode == 1
    assert result.stderr == f"error: nothing to verify: the registry at {tmp_path / 'mistyped'} has no events; check --home\n"


def test_info_on_broken_log_names_verify(home: Path) -> None:
    with sqlite3.connect(home / "events.sqlite3") as db:
        db.execute("DELETE FROM stored_events WHERE originator_version = 2")

    result = run(home, "info", MODEL)

    assert result.returncode == 1
    assert "not in sequence: expected position 2, found 3" in result.stderr
    assert "unexpected" not in result.stderr


# --- errors -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "exit_code", "expected"),
    [
        (["info", "no-such-model"], 1, "no-such-model"),
        (["promote", MODEL, "v3.1.0", "--to", "heaven"], 1, "heaven"),
        (["promote", MODEL, "v9.9.9", "--to", "production"], 1, "v9.9.9"),
        (["compare", MODEL, "v3.0.0", "not-a-version"], 1, "not-a-version"),
        (["rollback", MODEL, "--to", "v3.0.0"], 2, "--reason"),
        (["deprecate", MODEL, "v3.0.0"], 2, "--reason"),
        (["compare", MODEL, "v3.0.0", "v3.1.0", "--format", "pdf"], 2, "pdf"),
        (["no-such-command"], 2, "no-such-command"),
    ],
    ids=["unknown model", "bad stage", "unknown version", "bad version", "rollback without reason",
         "deprecate without reason", "bad format", "unknown command"],
)
def test_bad_arguments_print_one_line(home: Path, args: list[str], exit_code: int, expected: str) -> None:
    result = run(home, *args)

    assert result.returncode == exit_code
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stderr.startswith("error: ")
    assert expected in result.stderr
    assert result.stdout == ""


def test_failed_command_appends_no_event(home: Path) -> None:
    before = run_json(home, "history", MODEL)["history"]

    run(home, "promote", MODEL, "v3.1.0", "--to", "heaven")

    assert run_json(home, "history", MODEL)["history"] == before


# --- docs ---------------------------------------------------------------------


def test_every_command_has_help() -> None:
    for name, command in main.commands.items():
        assert command.help, f"command {name!r} has no help text"


def test_every_command_is_in_readme() -> None:
    readme = README.read_text(encoding="utf-8")

    for name in main.commands:
        assert f"registry {name}" in readme or f"registry --json {name}" in readme, name


def test_installed_script_prints_help() -> None:
    script = Path(sys.executable).parent / "registry"
    if not script.exists():
        pytest.skip(f"no installed registry script next to {sys.executable}")

    result = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=60, check=False)

    assert result.returncode == 0
    assert "verify" in result.stdout
