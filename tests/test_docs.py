"""The docs projection: model-registry.md per model and the files of each increment."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import networkx as nx
import orjson
import pytest
import yaml

from projections import docs as docs_module
from projections.docs import DocsProjection, increment_folder_name
from projections.runner import ProjectionRunner
from registry import InvalidInput

MODEL = "breast-cancer-classifier"
ROLLBACK_REASON = "false negatives up on live traffic"
DEPRECATION_REASON = "rolled back; superseded by the next release"


def tell_story(registry: Any, clock: Any, models: Any) -> None:
    """Register v3.0.0 and v3.1.0, deploy both in turn, roll back to v3.0.0, deprecate v3.1.0."""
    registry.register_model(
        MODEL,
        models.logistic,
        version="v3",
        metadata={
            "algorithm": "logistic_regression",
            "accuracy": 0.9231,
            "inference_latency_p50": 1.8,
            "training_data_version": "breast-cancer-v1",
            "feature_engineering_version": "fe-v1",
            "experiment": "exp-002",
            "features": models.features_v1,
        },
        tags=["baseline"],
    )
    clock.advance(days=1)
    registry.register_model(
        MODEL,
        models.xgboost,
        version="v3.1.0",
        metadata={
            "algorithm": "xgboost",
            "accuracy": 0.958,
            "inference_latency_p50": 2.4,
            "training_data_version": "breast-cancer-v1",
            "feature_engineering_version": "fe-v2",
            "experiment": "exp-003",
            "parent_model": f"{MODEL}-v3.0.0",
            "features": models.features_v2,
        },
        tags=["candidate"],
    )
    registry.set_approval_required(
        stage="production", approvers=["bob", "carol"], min_approvals=1, actor="release-manager"
    )

    clock.advance(days=1)  # 2024-01-12
    registry.promote_model(MODEL, "v3.0.0", "dev", "staging")
    registry.approve_model(MODEL, "v3.0.0", approver="bob", comments="metrics checked")
    registry.promote_model(MODEL, "v3.0.0", "staging", "production")

    clock.advance(days=7)  # 2024-01-19
    registry.promote_model(MODEL, "v3.1.0", "dev", "staging")
    registry.approve_model(MODEL, "v3.1.0", approver="carol", comments="load test passed")
    registry.promote_model(MODEL, "v3.1.0", "staging", "production")

    clock.advance(days=3)  # 2024-01-22
    registry.rollback(MODEL, to_version="v3.0.0", reason=ROLLBACK_REASON, actor="oncall-erin")
    registry.deprecate_model(MODEL, "v3.1.0", reason=DEPRECATION_REASON, end_of_life="2024-02-21")


def deploy_versions(registry: Any, models: Any, name: str, versions: list[str]) -> None:
    """Register each version and take it from dev to production, one after the other."""
    for version in versions:
        registry.register_model(name, models.logistic, version=version, metadata={"accuracy": 0.9})
        registry.promote_model(name, version, "dev", "staging")
        registry.promote_model(name, version, "staging", "production")


@pytest.fixture
def open_docs(tmp_path: Path) -> Iterator[Any]:
    """Return a factory of docs runners over a registry's event store, each with its own root."""
    runners: list[ProjectionRunner] = []

    def factory(registry: Any, label: str = "docs", batch_size: int = 500) -> tuple[ProjectionRunner, Path]:
        root = tmp_path / label
        runner = ProjectionRunner(
            registry._store.recorder,
            registry._store.mapper,
            tmp_path / f"{label}.sqlite3",
            [DocsProjection(root, registry.artifacts)],
            batch_size=batch_size,
        )
        runners.append(runner)
        return runner, root

    yield factory
    for runner in runners:
        runner.close()


@pytest.fixture
def story(make_registry: Any, clock: Any, models: Any) -> Any:
    registry = make_registry(increment="0042")
    tell_story(registry, clock, models)
    return registry


@pytest.fixture
def docs_root(story: Any, open_docs: Any) -> Path:
    runner, root = open_docs(story)
    runner.catch_up()
    return root  # type: ignore[no-any-return]


def section(document: str, title: str) -> str:
    """Return the body of the Markdown section ``## title``."""
    body = document.split(f"## {title}\n", 1)[1]
    return body.split("\n## ", 1)[0]


def table_row(document: str, first_cell: str) -> str:
    return next(line for line in document.splitlines() if line.startswith(f"| {first_cell} |"))


def snapshot(root: Path) -> dict[str, bytes]:
    return {
        path.relative_to(root).as_posix(): path.read_bytes() for path in root.rglob("*") if path.is_file()
    }


# --- model-registry.md ------------------------------------------------------------


def test_production_section_names_current_version(docs_root: Path) -> None:
    production = section((docs_root / MODEL / "model-registry.md").read_text(), "Current production model")

    assert "- Version: v3.0.0" in production
    assert "- Deployed: 2024-01-22T09:00:00+00:00" in production
    assert "- Accuracy: 0.9231" in production
    assert "- p50 latency: 1.8 ms" in production
    assert "- Approved for production by bob" in production


def test_history_table_lists_versions_with_stages(docs_root: Path) -> None:
    history = section((docs_root / MODEL / "model-registry.md").read_text(), "Version history")

    assert "| Version | Stage | Accuracy | Deployed | Notes |" in history
    assert table_row(history, "v3.0.0").startswith(
        "| v3.0.0 | production | 0.9231 | 2024-01-22T09:00:00+00:00 |"
    )
    assert table_row(history, "v3.1.0").startswith(
        "| v3.1.0 | archived | 0.958 | 2024-01-19T09:00:00+00:00 |"
    )


def test_history_notes_summarise_lifecycle(docs_root: Path) -> None:
    history = section((docs_root / MODEL / "model-registry.md").read_text(), "Version history")
    restored = table_row(history, "v3.0.0")
    deprecated = table_row(history, "v3.1.0")

    assert "Replaced by v3.1.0 on 2024-01-19T09:00:00+00:00." in restored
    assert (
        f"Restored to production by a rollback on 2024-01-22T09:00:00+00:00: {ROLLBACK_REASON}." in restored
    )
    assert f"Rolled back to v3.0.0 on 2024-01-22T09:00:00+00:00: {ROLLBACK_REASON}." in deprecated
    assert "(end of life 2024-02-21T23:59:59+00:00)" in deprecated
    assert DEPRECATION_REASON in deprecated


def test_rollback_plan_skips_unstable_versions(docs_root: Path) -> None:
    plan = section((docs_root / MODEL / "model-registry.md").read_text(), "Rollback plan")

    # Production was rolled back away from v3.1.0, which is also deprecated, so it is no candidate.
    assert plan.strip().startswith("No rollback candidate")
    assert "v3.1.0: production was rolled back away from it and it is deprecated" in plan


def test_rollback_plan_prefers_latest_deployment(
    registry: Any, models: Any, clock: Any, open_docs: Any
) -> None:
    deploy_versions(registry, models, "churn", ["v1"])
    clock.advance(days=1)
    deploy_versions(registry, models, "churn", ["v2"])
    clock.advance(days=1)
    registry.rollback("churn", to_version="v1", reason="v2 scores drifted")
    clock.advance(days=1)
    deploy_versions(registry, models, "churn", ["v3"])
    runner, root = open_docs(registry)
    runner.catch_up()

    plan = section((root / "churn" / "model-registry.md").read_text(), "Rollback plan")

    # v1 was deployed after v2, by the rollback, so it is the more recent production version.
    assert "Return to **v1.0.0**" in plan
    assert "(last deployed 2024-01-12T09:00:00+00:00)" in plan
    assert 'registry.rollback("churn", to_version="v1.0.0", reason="...")' in plan
    assert 'registry rollback churn --to v1.0.0 --reason "..."' in plan


def test_rollback_plan_without_other_deployment(registry: Any, models: Any, open_docs: Any) -> None:
    deploy_versions(registry, models, "churn", ["v1"])
    registry.register_model("churn", models.logistic, version="v2")
    runner, root = open_docs(registry)
    runner.catch_up()

    plan = section((root / "churn" / "model-registry.md").read_text(), "Rollback plan")

    assert plan.strip() == "No rollback candidate: no version other than v1.0.0 has been in production."
    assert "registry.rollback" not in plan


def test_rollback_plan_skips_version_past_end_of_life(
    story: Any, clock: Any, models: Any, open_docs: Any
) -> None:
    clock.advance(days=31)
    story.register_model(MODEL, models.logistic, version="v3.2.0", metadata={"features": models.features_v1})
    runner, root = open_docs(story)
    runner.catch_up()
    document = (root / MODEL / "model-registry.md").read_text()

    plan = section(document, "Rollback plan")
    assert "No rollback candidate" in plan
    assert "v3.1.0: production was rolled back away from it and it is past its end of life" in plan
    assert "(end of life reached on 2024-02-21T23:59:59+00:00)" in table_row(document, "v3.1.0")


def test_production_section_without_production(registry: Any, models: Any, open_docs: Any) -> None:
    registry.register_model("churn", models.logistic, version="v1")
    runner, root = open_docs(registry)
    runner.catch_up()

    document = (root / "churn" / "model-registry.md").read_text()

    assert section(document, "Current production model").strip() == "No version is in production."
    assert "| v1.0.0 | dev | not recorded | never |" in document


# --- the increment's version folders ------------------------------------------------


def test_increment_holds_four_files_per_version(story: Any, docs_root: Path) -> None:
    models_folder = docs_root / "increments" / "0042" / "models"
    artifacts = {"v3.0.0": "model.skops", "v3.1.0": "model.ubj"}

    for view in story.list_versions(MODEL):
        folder = models_folder / f"{MODEL}-{view.version}"
        artifact = folder / artifacts[view.version]
        names = sorted(path.name for path in folder.iterdir())
        assert names == sorted(
            [artifacts[view.version], "features.yaml", "metadata.json", "requirements.txt"]
        )
        assert hashlib.sha256(artifact.read_bytes()).hexdigest() == view.artifact.sha256


def test_version_files_match_registry_files(story: Any, docs_root: Path) -> None:
    for view in story.list_versions(MODEL):
        ours = docs_root / "increments" / "0042" / "models" / f"{MODEL}-{view.version}"
        registry_files = story.files_root / MODEL / view.version
        for file_name in ("metadata.json", "requirements.txt", "features.yaml"):
            assert (ours / file_name).read_bytes() == (registry_files / file_name).read_bytes(), file_name
        assert orjson.loads((ours / "metadata.json").read_bytes()) == view.metadata


def test_catalog_lists_versions_of_increment(story: Any, docs_root: Path) -> None:
    catalog = yaml.safe_load(
        (docs_root / "increments" / "0042" / "registry" / "model_catalog.yaml").read_text()
    )
    versions = {entry["version"]: entry for entry in catalog["models"][MODEL]["versions"]}
    digests = {view.version: view.artifact.sha256 for view in story.list_versions(MODEL)}

    assert catalog["increment"] == "0042"
    assert sorted(versions) == ["v3.0.0", "v3.1.0"]
    assert versions["v3.0.0"]["stage"] == "production"
    assert versions["v3.1.0"]["stage"] == "archived"
    assert versions["v3.0.0"]["metrics"] == {"accuracy": 0.9231, "inference_latency_p50": 1.8}
    assert versions["v3.0.0"]["tags"] == ["baseline"]
    assert versions["v3.1.0"]["artifact"]["sha256"] == digests["v3.1.0"]
    assert versions["v3.1.0"]["artifact"]["file"] == f"models/{MODEL}-v3.1.0/model.ubj"
    assert versions["v3.1.0"]["deprecation"]["reason"] == DEPRECATION_REASON


def test_lineage_graph_links_data_to_deployment(docs_root: Path) -> None:
    data = json.loads((docs_root / "increments" / "0042" / "registry" / "lineage_graph.json").read_text())
    graph = nx.node_link_graph(data, edges="edges")
    deployment = f"deployment:{MODEL}/production"

    assert {f"model:{MODEL}-v3.0.0", f"model:{MODEL}-v3.1.0"} <= set(graph.nodes)
    assert data["graph"]["increment"] == "0042"
    assert nx.shortest_path(graph, "data:breast-cancer-v1", deployment) == [
        "data:breast-cancer-v1",
        "feature-engineering:fe-v1",
        "experiment:exp-002",
        f"model:{MODEL}-v3.0.0",
        deployment,
    ]
    assert graph.edges[f"model:{MODEL}-v3.0.0", deployment]["current"] is True
    assert graph.edges[f"model:{MODEL}-v3.1.0", deployment]["current"] is False
    assert graph.edges[f"model:{MODEL}-v3.0.0", f"model:{MODEL}-v3.1.0"]["relation"] == "parent_of"


def test_deployment_history_lists_rollback_with_reason(docs_root: Path) -> None:
    history = (docs_root / "increments" / "0042" / "registry" / "deployment_history.md").read_text()
    rows = [line for line in history.splitlines() if line.startswith("| 2024-")]
    rollback = next(row for row in rows if "RolledBack" in row)

    assert rollback == (
        f"| 2024-01-22T09:00:00+00:00 | {MODEL} | v3.0.0 | RolledBack from v3.1.0 | archived | production "
        f"| oncall-erin |  | {ROLLBACK_REASON} |"
    )
    assert any("| v3.1.0 | Promoted | staging | production | alice | carol |" in row for row in rows)
    assert any("replaced in production by v3.1.0" in row for row in rows)
    assert len(rows) == 9  # 2 registrations, 5 stage changes, 1 rollback, 1 deprecation


def test_table_cells_escape_pipes_and_newlines(registry: Any, models: Any, open_docs: Any) -> None:
    deploy_versions(registry, models, "churn", ["v1", "v2"])
    registry.rollback("churn", to_version="v1", reason="errors | latency\nboth up")
    runner, root = open_docs(registry)
    runner.catch_up()

    history = (root / "increments" / "_unassigned" / "registry" / "deployment_history.md").read_text()
    rollback = next(line for line in history.splitlines() if "RolledBack" in line)

    assert rollback.endswith("| errors \\| latency both up |")
    assert rollback.replace("\\|", "").count("|") == 10


# --- rebuilds and incremental catch-up ----------------------------------------------


def test_rebuild_yields_identical_files(story: Any, open_docs: Any) -> None:
    runner, root = open_docs(story)
    runner.catch_up()
    before = snapshot(root)

    runner.rebuild()

    assert snapshot(root) == before
    assert len(before) == 2 * 4 + 3 + 1


def test_batch_size_does_not_change_files(story: Any, open_docs: Any) -> None:
    whole, whole_root = open_docs(story, "whole")
    paged, paged_root = open_docs(story, "paged", batch_size=2)
    whole.catch_up()
    paged.catch_up()

    assert snapshot(paged_root) == snapshot(whole_root)


def test_catch_up_renders_only_touched_model(story: Any, models: Any, clock: Any, open_docs: Any) -> None:
    story.register_model("churn", models.logistic, version="v1")
    runner, root = open_docs(story)
    runner.catch_up()
    untouched = [
        root / "churn" / "model-registry.md",
        *(root / "increments" / "0042" / "models" / "churn-v1.0.0").iterdir(),
    ]
    before = {path: path.stat() for path in untouched}
    touched_before = (root / MODEL / "model-registry.md").read_text()

    clock.advance(days=1)
    story.register_model(MODEL, models.logistic, version="v3.2.0", metadata={"features": models.features_v1})
    assert runner.catch_up() > 0

    for path, stat in before.items():
        assert (path.stat().st_ino, path.stat().st_mtime_ns) == (stat.st_ino, stat.st_mtime_ns), path
    touched_after = (root / MODEL / "model-registry.md").read_text()
    assert "| v3.2.0 | dev |" in touched_after
    assert "| v3.2.0 |" not in touched_before


def test_failed_render_is_retried_next_batch(story: Any, models: Any, clock: Any, open_docs: Any) -> None:
    runner, root = open_docs(story)
    root.mkdir()
    (root / "increments").write_text("a file where the projection needs a folder")

    with pytest.raises(OSError):
        runner.catch_up()
    (root / "increments").unlink()
    clock.advance(days=1)
    story.register_model("churn", models.logistic, version="v1")
    runner.catch_up()

    assert (root / MODEL / "model-registry.md").is_file()
    assert (root / "increments" / "0042" / "models" / f"{MODEL}-v3.1.0" / "model.ubj").is_file()


# --- files the projection did not write ------------------------------------------


def test_reset_keeps_files_it_did_not_write(story: Any, open_docs: Any) -> None:
    runner, root = open_docs(story)
    (root / "increments").mkdir(parents=True)
    (root / "increments" / "README.md").write_text("kept")
    (root / "notes.txt").write_text("kept too")
    runner.catch_up()

    with runner.db.atomic():
        runner.projections[0].reset(runner.db)

    assert snapshot(root) == {"increments/README.md": b"kept", "notes.txt": b"kept too"}
    assert sorted(path.name for path in root.iterdir()) == ["increments", "notes.txt"]


def test_rebuild_removes_leftover_temporary_files(story: Any, open_docs: Any) -> None:
    runner, root = open_docs(story)
    runner.catch_up()
    before = snapshot(root)
    (root / MODEL / ".partial-abc123").write_bytes(b"half a file")

    runner.rebuild()

    assert snapshot(root) == before


# --- increments -------------------------------------------------------------------


def test_version_without_increment_is_unassigned(registry: Any, models: Any, open_docs: Any) -> None:
    registry.register_model("churn", models.logistic, version="v1")
    runner, root = open_docs(registry)
    runner.catch_up()
    unassigned = root / "increments" / "_unassigned"

    assert (unassigned / "models" / "churn-v1.0.0" / "model.skops").is_file()
    assert yaml.safe_load((unassigned / "registry" / "model_catalog.yaml").read_text())["increment"] is None
    assert (
        (unassigned / "registry" / "deployment_history.md")
        .read_text()
        .startswith("# Deployment history of no increment\n")
    )


def test_unsafe_increment_stays_under_root(
    make_registry: Any, models: Any, open_docs: Any, tmp_path: Path
) -> None:
    registry = make_registry(increment="../../escape")
    registry.register_model("churn", models.logistic, version="v1")
    runner, root = open_docs(registry)
    runner.catch_up()

    folder = root / "increments" / "_..%2F..%2Fescape"
    assert (folder / "models" / "churn-v1.0.0" / "metadata.json").is_file()
    assert sorted(path.name for path in (root / "increments").iterdir()) == [folder.name]
    assert not (tmp_path / "escape").exists()
    assert not (root / "escape").exists()


def test_render_keeps_few_checked_folders(
    make_registry: Any, open_docs: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The folders checked while rendering are kept per chunk of targets. Kept for a whole rebuild,
    # the 100,000 version folders of a 1,000,000-event store raised its peak RSS from 204 MB to 298 MB.
    monkeypatch.setattr(docs_module, "RENDER_CHUNK", 5)
    registry = make_registry(increment="0042")
    for minor in range(30):
        registry.register_model("churn", {"minor": minor}, version=f"v1.{minor}.0")
    runner, root = open_docs(registry)
    projection = runner.projections[0]
    folder_counts: list[tuple[int, int]] = []
    write_queued = projection._write_queued

    def write_and_count(db: Any) -> None:
        write_queued(db)
        folder_counts.append((len(projection._checked_folders), len(projection._made_folders)))

    monkeypatch.setattr(projection, "_write_queued", write_and_count)

    runner.catch_up()

    assert len(list((root / "increments" / "0042" / "models").iterdir())) == 30
    # 32 targets (30 versions, the model and the increment) in chunks of 5, each target in one folder.
    assert len(folder_counts) == 7
    assert max(checked for checked, _ in folder_counts) <= 5
    assert max(made for _, made in folder_counts) <= 5


def test_large_chunk_written_in_parts(
    make_registry: Any, open_docs: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(docs_module, "QUEUED_BYTES", 4096)
    registry = make_registry(increment="0042")
    for minor in range(12):
        registry.register_model("churn", {"minor": minor}, version=f"v1.{minor}.0")
    runner, root = open_docs(registry)
    projection = runner.projections[0]
    queued_sizes: list[int] = []
    write_queued = projection._write_queued

    def write_and_record(db: Any) -> None:
        queued_sizes.append(projection._queued_bytes)
        write_queued(db)

    monkeypatch.setattr(projection, "_write_queued", write_and_record)

    runner.catch_up()

    # All 14 targets fit in one chunk, which is written in parts, each started once 4 kB are queued.
    assert len(queued_sizes) >= 3
    assert sorted(path.name for path in (root / "increments" / "0042" / "models").iterdir()) == sorted(
        f"churn-v1.{minor}.0" for minor in range(12)
    )
    for minor in range(12):
        assert (root / "increments" / "0042" / "models" / f"churn-v1.{minor}.0" / "metadata.json").is_file()
    assert (root / "increments" / "0042" / "registry" / "model_catalog.yaml").is_file()
    assert runner.db.execute("SELECT COUNT(*) FROM docs_pending").fetchone()[0] == 0


def test_render_reads_pending_in_chunks(
    make_registry: Any, open_docs: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(docs_module, "RENDER_CHUNK", 4)
    registry = make_registry(increment="0042")
    for minor in range(9):
        registry.register_model("churn", {"minor": minor}, version=f"v1.{minor}.0")
    runner, root = open_docs(registry)

    runner.catch_up()

    folders = sorted(path.name for path in (root / "increments" / "0042" / "models").iterdir())
    assert folders == [f"churn-v1.{minor}.0" for minor in range(9)]
    assert (root / "churn" / "model-registry.md").is_file()
    assert runner.db.execute("SELECT COUNT(*) FROM docs_pending").fetchone()[0] == 0


OUTSIDE_ROOT = r"docs path churn/model-registry.md is outside the docs root"


def rendered_churn(make_registry: Any, models: Any, open_docs: Any) -> tuple[Any, ProjectionRunner, Path]:
    """Register churn v1, render its docs, and return the registry, the docs runner and the docs root."""
    registry = make_registry(increment="0042")
    registry.register_model("churn", models.logistic, version="v1")
    runner, root = open_docs(registry)
    runner.catch_up()
    return registry, runner, root


def test_linked_folder_outside_root_rejected(
    make_registry: Any, models: Any, open_docs: Any, tmp_path: Path
) -> None:
    registry, runner, root = rendered_churn(make_registry, models, open_docs)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.rmtree(root / "churn")
    (root / "churn").symlink_to(elsewhere, target_is_directory=True)
    registry.register_model("churn", models.logistic, version="v2")

    with pytest.raises(InvalidInput, match=OUTSIDE_ROOT):
        runner.catch_up()

    assert list(elsewhere.iterdir()) == []


def test_linked_file_outside_root_rejected(
    make_registry: Any, models: Any, open_docs: Any, tmp_path: Path
) -> None:
    registry, runner, root = rendered_churn(make_registry, models, open_docs)
    outside = tmp_path / "outside.md"
    outside.write_text("not the registry's")
    document = root / "churn" / "model-registry.md"
    document.unlink()
    document.symlink_to(outside)
    registry.register_model("churn", models.logistic, version="v2")

    with pytest.raises(InvalidInput, match=OUTSIDE_ROOT):
        runner.catch_up()

    assert outside.read_text() == "not the registry's"


@pytest.mark.parametrize(
    ("increment", "folder"),
    [
        (None, "_unassigned"),
        ("0042", "0042"),
        ("PI-24.1_b", "PI-24.1_b"),
        ("unassigned", "unassigned"),
        ("_unassigned", "__unassigned"),
        ("..", "_.."),
        ("../x", "_..%2Fx"),
        ("team a/0042", "_team%20a%2F0042"),
        ("model-registry.md", "_model-registry.md"),
        ("x" * 101, "_sha256-" + hashlib.sha256(b"x" * 101).hexdigest()),
    ],
)
def test_increment_folder_name(increment: str | None, folder: str) -> None:
    assert increment_folder_name(increment) == folder


# --- artifacts that cannot be copied ------------------------------------------------


def test_missing_blob_skips_only_artifact(
    registry: Any, models: Any, open_docs: Any, caplog: pytest.LogCaptureFixture
) -> None:
    view = registry.register_model("churn", models.logistic, version="v1")
    registry.artifacts.path_of(view.artifact.sha256).unlink()
    runner, root = open_docs(registry)

    with caplog.at_level(logging.ERROR, logger="projections.docs"):
        runner.catch_up()

    folder = root / "increments" / "_unassigned" / "models" / "churn-v1.0.0"
    assert sorted(path.name for path in folder.iterdir()) == [
        "features.yaml",
        "metadata.json",
        "requirements.txt",
    ]
    assert "artifact of churn v1.0.0 is missing" in caplog.text


def test_corrupted_blob_is_not_copied(
    registry: Any, models: Any, open_docs: Any, caplog: pytest.LogCaptureFixture
) -> None:
    view = registry.register_model("churn", models.logistic, version="v1")
    registry.artifacts.path_of(view.artifact.sha256).write_bytes(b"not the registered model")
    runner, root = open_docs(registry)

    with caplog.at_level(logging.ERROR, logger="projections.docs"):
        runner.catch_up()

    folder = root / "increments" / "_unassigned" / "models" / "churn-v1.0.0"
    assert not (folder / "model.skops").exists()
    assert not list(folder.glob(".partial-*"))
    assert f"but the registry recorded {view.artifact.sha256}" in caplog.text
