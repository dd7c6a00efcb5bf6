"""Guards against mistakes users make easily, and files other accounts can read."""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from registry import InvalidDate, InvalidInput, InvalidStage, ModelNotFound, files

NAME = "fraud-detection"


def test_policy_stage_registration_rejected(registry: Any) -> None:
    registry.set_approval_required(stage="staging", approvers=["bob"], min_approvals=1)

    with pytest.raises(InvalidStage, match="which needs approvals by policy; register in 'dev'"):
        registry.register_model(NAME, {"rule": 1}, version="v1", stage="staging")

    assert registry.list_models() == []


def test_past_end_of_life_rejected(registry: Any, clock: Any) -> None:
    registry.register_model(NAME, {"rule": 1}, version="v1")
    before = len(registry.history(NAME))

    with pytest.raises(InvalidDate, match="would be unusable at once") as raised:
        registry.deprecate_model(NAME, "v1", "old", end_of_life=dt.date(2020, 1, 1))

    assert "2020-01-01" in str(raised.value)
    assert len(registry.history(NAME)) == before


def test_unknown_metric_filter_rejected(registry: Any) -> None:
    registry.register_model(NAME, {"rule": 1}, version="v1", metadata={"accuracy": 0.9})

    with pytest.raises(InvalidInput, match="invalid min_metrics key 'acc': expected one of accuracy"):
        registry.list_versions(NAME, min_metrics={"acc": 0.9})


def test_missing_model_suggests_close_name(registry: Any) -> None:
    registry.register_model(NAME, {"rule": 1}, version="v1")

    with pytest.raises(ModelNotFound, match="did you mean 'fraud-detection'"):
        registry.get_model("fraud-detecton", version="v1")


def test_lineage_of_missing_model_not_found(registry: Any) -> None:
    with pytest.raises(ModelNotFound):
        registry.get_lineage("nope", "v1")


def test_metadata_json_shows_deprecation(registry: Any) -> None:
    registry.register_model(NAME, {"rule": 1}, version="v1")
    registry.deprecate_model(NAME, "v1", "superseded", end_of_life="2030-01-01")

    metadata = orjson.loads((registry.files_root / NAME / "v1.0.0" / "metadata.json").read_bytes())

    assert metadata["deprecated"] is True
    assert metadata["deprecation_reason"] == "superseded"
    assert metadata["end_of_life"].startswith("2030-01-01T23:59:59")


def test_written_files_follow_umask(registry: Any) -> None:
    previous = os.umask(0o022)
    try:
        registered = registry.register_model(NAME, {"rule": 1}, version="v1")
        docs_root = registry.write_docs()
    finally:
        os.umask(previous)
    files = [
        registry.artifacts.path_of(registered.artifact.sha256),
        registry.files_root / NAME / "v1.0.0" / "metadata.json",
        docs_root / NAME / "model-registry.md",
    ]

    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path


def test_past_rebuild_keeps_live_docs(registry: Any, clock: Any, tmp_path: Path) -> None:
    registry.register_model(NAME, {"rule": 1}, version="v1")
    registry.promote_model(NAME, "v1", "dev", "staging")
    registry.promote_model(NAME, "v1", "staging", "production")
    live = registry.write_docs() / NAME / "model-registry.md"
    before = live.read_text()

    target = registry.rebuild_projections(position=2, target=tmp_path / "past.sqlite3")

    assert live.read_text() == before
    assert "- Version: v1.0.0" in before
    assert (target.parent / "past-docs" / NAME / "model-registry.md").is_file()


def test_default_rebuild_files_differ_by_limit(registry: Any) -> None:
    registry.register_model(NAME, {"rule": 1}, version="v1")
    registry.promote_model(NAME, "v1", "dev", "staging")
    as_of = registry.events(NAME)[-1].effective_at
    last = registry.projection_runner().recorder.max_notification_id()

    before_promotion = registry.rebuild_projections(as_of=as_of, position=last - 1)
    after_promotion = registry.rebuild_projections(as_of=as_of, position=last)

    # With both limits in the default name, the second rebuild does not overwrite the first.
    assert before_promotion.name == f"read_models-as-of-{as_of:%Y%m%dT%H%M%SZ}-position-{last - 1}.sqlite3"
    assert after_promotion.name == f"read_models-as-of-{as_of:%Y%m%dT%H%M%SZ}-position-{last}.sqlite3"
    assert stage_in(before_promotion) == "dev"
    assert stage_in(after_promotion) == "staging"


def stage_in(database: Path) -> str:
    with contextlib.closing(sqlite3.connect(database)) as connection:
        return str(connection.execute("SELECT stage FROM catalog_versions").fetchone()[0])


def test_atomic_write_skips_a_taken_temporary_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Another host's process on a shared folder may hold the next temporary name.
    monkeypatch.setattr(files, "_NAMES", itertools.count(7))
    other_writers_file = tmp_path / f"{files.TEMPORARY_PREFIX}metadata.json.{os.getpid()}.7"
    other_writers_file.write_bytes(b"another writer's bytes")

    files.write_atomically(tmp_path / "metadata.json", b'{"stage": "dev"}')

    assert (tmp_path / "metadata.json").read_bytes() == b'{"stage": "dev"}'
    assert other_writers_file.read_bytes() == b"another writer's bytes"
    assert sorted(path.name for path in tmp_path.iterdir()) == [other_writers_file.name, "metadata.json"]


def test_atomic_write_creates_missing_folders(tmp_path: Path) -> None:
    target = tmp_path / "models" / NAME / "v1.0.0" / "features.yaml"

    files.write_atomically(target, [b"model: ", b"fraud-detection\n"])

    assert target.read_bytes() == b"model: fraud-detection\n"


def test_failed_atomic_write_leaves_old_file(tmp_path: Path) -> None:
    target = tmp_path / "metadata.json"
    target.write_bytes(b"old")

    def chunks() -> Iterator[bytes]:
        yield b"half of the new"
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        files.write_atomically(target, chunks())

    assert target.read_bytes() == b"old"
    assert [path.name for path in tmp_path.iterdir()] == ["metadata.json"]
