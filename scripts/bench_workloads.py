"""The seven workloads, each run against our registry and, where it has an equivalent, MLflow's.

Each workload function returns its rows. Our side's operations go through the
public ``ModelRegistry`` API; only the large histories of W4, W5 and W6 are
written through the event store (see bench_data.py).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import hashlib
import json
import multiprocessing
import random
import shutil
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from bench_common import (
    ROOT,
    ProfileEntry,
    Row,
    Sizes,
    median,
    peak_rss_megabytes,
    percentile,
    profile_with_cprofile,
    profile_with_pyinstrument,
    ratio_target,
    timed,
)
from bench_data import EVENT_SPACING, TINY_MODEL, History, build_history, version_metrics

# Seconds a child process may take for one full rebuild before the run counts as hung.
REBUILD_TIMEOUT_SECONDS = 3 * 3600

# A prepare function sets up one repeat of our side and returns the operation to profile.
Prepare = Callable[[], Callable[[], Any]]
Profiler = Callable[[Path], list[ProfileEntry]]


@dataclasses.dataclass
class Bench:
    """One run's work folder, sizes, progress output, notes and profilers."""

    workdir: Path
    sizes: Sizes
    say: Callable[[str], None]
    notes: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    profilers: dict[str, Profiler] = dataclasses.field(default_factory=dict)
    # Registries stay open until the profiles, which reuse them, are taken.
    open_registries: list[Any] = dataclasses.field(default_factory=list)

    def folder(self, name: str) -> Path:
        """Return an empty folder ``name`` under the work folder."""
        path = self.workdir / name
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        return path

    def note(self, workload: str, text: str) -> None:
        self.notes.setdefault(workload, []).append(text)

    def registry(self, home: Path) -> Any:
        """Open our registry at ``home`` and keep it open until ``close``."""
        from registry import ModelRegistry

        registry = ModelRegistry(home=home, actor="alice", increment="bench")
        self.open_registries.append(registry)
        return registry

    def close(self) -> None:
        for registry in self.open_registries:
            registry.close()
        self.open_registries.clear()


def in_process_profiler(prepare: Prepare) -> Profiler:
    """Return a profiler that runs one prepared repeat under cProfile and another under pyinstrument."""

    def profile(stem: Path) -> list[ProfileEntry]:
        entries = profile_with_cprofile(prepare(), stem.with_suffix(".cprofile.txt"))
        profile_with_pyinstrument(prepare(), stem.with_suffix(".pyinstrument.txt"))
        return entries

    return profile


def _mlflow(folder: Path) -> Any:
    from bench_mlflow import MlflowRegistry

    return MlflowRegistry(folder)


# --- W1 ---------------------------------------------------------------------------


def _trained_model() -> tuple[Any, Any, float]:
    """Fit a logistic regression on scikit-learn's bundled breast-cancer data (no download)."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression

    features, labels = load_breast_cancer(return_X_y=True, as_frame=True)
    features = features.rename(columns=lambda column: column.replace(" ", "_"))
    model = LogisticRegression(max_iter=5000).fit(features, labels)
    return model, features, float(model.score(features, labels))


def register(bench: Bench) -> list[Row]:
    """W1: versions registered per second, metadata only and with a scikit-learn artifact."""
    import mlflow.models
    from bench_mlflow import mlflow_tags

    from registry.environment import describe_environment

    sizes = bench.sizes
    model, features, accuracy = _trained_model()
    ours = bench.registry(bench.folder("w1-ours"))
    theirs = _mlflow(bench.folder("w1-mlflow"))
    signature = mlflow.models.infer_signature(features, model.predict(features))
    # The same packages our registry records for a skops-saved scikit-learn model.
    requirements = [
        f"{name}=={version}" for name, version in describe_environment(model, "skops").requirements.items()
    ]
    source = theirs.source_of(
        theirs.log_sklearn(model, signature=signature, requirements=requirements, accuracy=accuracy)
    )

    def ours_metadata_only(name: str, count: int) -> None:
        for index in range(count):
            index_accuracy, tags = version_metrics(index)
            ours.register_model(name, TINY_MODEL, metadata={"accuracy": index_accuracy}, tags=tags)

    def mlflow_metadata_only(name: str, count: int) -> None:
        for index in range(count):
            index_accuracy, tags = version_metrics(index)
            theirs.client.create_model_version(name, source=source, tags=mlflow_tags(index_accuracy, tags))

    def ours_with_artifact(name: str, count: int) -> None:
        for _ in range(count):
            ours.register_model(name, model, metadata={"accuracy": accuracy})

    def mlflow_with_artifact(name: str, count: int) -> None:
        for _ in range(count):
            theirs.log_sklearn(
                model,
                signature=signature,
                requirements=requirements,
                accuracy=accuracy,
                registered_model_name=name,
            )

    # One untimed round each, so imports and first-use caches are not timed.
    theirs.client.create_registered_model("warm-up")
    ours_metadata_only("warm-up", 2)
    mlflow_metadata_only("warm-up", 2)
    ours_with_artifact("warm-up-artifact", 1)
    mlflow_with_artifact("warm-up-artifact", 1)

    rates: dict[str, list[float]] = {"ours-m": [], "mlflow-m": [], "ours-a": [], "mlflow-a": []}
    for repeat in range(sizes.repeats):
        bench.say(f"W1 repeat {repeat + 1}/{sizes.repeats}")
        name, count = f"metadata-{repeat}", sizes.register_versions
        rates["ours-m"].append(count / timed(functools.partial(ours_metadata_only, name, count)))
        theirs.client.create_registered_model(name)
        rates["mlflow-m"].append(count / timed(functools.partial(mlflow_metadata_only, name, count)))

        name, count = f"artifact-{repeat}", sizes.register_artifacts
        rates["ours-a"].append(count / timed(functools.partial(ours_with_artifact, name, count)))
        rates["mlflow-a"].append(count / timed(functools.partial(mlflow_with_artifact, name, count)))

    def prepare_metadata_only() -> Callable[[], Any]:
        name = f"profiled-{uuid.uuid4().hex[:8]}"
        return lambda: ours_metadata_only(name, sizes.register_versions)

    def prepare_with_artifact() -> Callable[[], Any]:
        name = f"profiled-{uuid.uuid4().hex[:8]}"
        return lambda: ours_with_artifact(name, sizes.register_artifacts)

    metadata_key, artifact_key = "W1 register, metadata only", "W1 register, scikit-learn artifact"
    bench.profilers[metadata_key] = in_process_profiler(prepare_metadata_only)
    bench.profilers[artifact_key] = in_process_profiler(prepare_with_artifact)
    bench.note(
        "W1",
        f"Metadata only: ours registers a small picklable object whose blob is already stored, with an accuracy "
        f"and tags; MLflow calls `MlflowClient.create_model_version(name, source=...)` with the same values as "
        f"tags, for a model logged before the timing. {sizes.register_versions} versions per repeat.",
    )
    bench.note(
        "W1",
        f"With an artifact: ours calls `register_model(name, model, metadata=...)` with a fitted scikit-learn "
        f"`LogisticRegression` (saved with skops); MLflow starts a run, logs the accuracy as a metric and calls "
        f"`mlflow.sklearn.log_model(model, name=..., registered_model_name=..., signature=..., pip_requirements=...)` "
        f"(saved with skops, MLflow's default outside Databricks). The signature is inferred once and the "
        f"requirements are given, so MLflow does not run its requirement inference for each version. "
        f"{sizes.register_artifacts} versions per repeat.",
    )
    metadata_only = Row(
        "W1",
        "register, metadata only",
        "versions/s",
        median(rates["ours-m"]),
        median(rates["mlflow-m"]),
        profile_key=metadata_key,
    )
    with_artifact = Row(
        "W1",
        "register, scikit-learn artifact",
        "versions/s",
        median(rates["ours-a"]),
        median(rates["mlflow-a"]),
        profile_key=artifact_key,
    )
    floor = measure_disk_floor(bench.folder("w1-floor"))
    bench.note(
        "W1",
        _floor_note(
            floor,
            "a registration (one commit and one new folder)",
            floor.registrations_per_second(),
            metadata_only.mlflow or 1.0,
        ),
    )
    return [ratio_target(metadata_only, 10), ratio_target(with_artifact, 10)]


@dataclasses.dataclass(frozen=True)
class DiskFloor:
    """Milliseconds that this disk takes for the writes every command of ours makes, each measured alone."""

    durable_commit: float
    new_version_folder: float
    file_replacement: float

    def registrations_per_second(self) -> float:
        """Return the rate a registration could reach if it cost only its commit and its new files."""
        return 1000 / (self.durable_commit + self.new_version_folder)

    def promotions_per_second(self) -> float:
        """Return the rate a promotion could reach if it cost only its commit and its two rewritten files."""
        return 1000 / (self.durable_commit + 2 * self.file_replacement)


def measure_disk_floor(folder: Path, count: int = 200) -> DiskFloor:
    """Time, on the disk of ``folder``, the three kinds of write a command makes.

    They are a durable SQLite commit of one 1 kB row (WAL with SQLite's default synchronous=FULL, as
    the event store commits), a new folder with three small files written by
    the registry's own atomic write, and the replacement of one small file by that write.
    """
    import sqlite3

    from registry.files import write_atomically

    connection = sqlite3.connect(folder / "commits.sqlite3", isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=FULL")
    connection.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, state BLOB)")
    row = b"x" * 1024

    def commits() -> None:
        for _ in range(count):
            connection.execute("BEGIN")
            connection.execute("INSERT INTO events (state) VALUES (?)", [row])
            connection.execute("COMMIT")

    def new_folders() -> None:
        for index in range(count):
            version_folder = folder / "models" / f"v{index}"
            for file_name in ("metadata.json", "requirements.txt", "features.yaml"):
                write_atomically(version_folder / file_name, row)

    def replacements() -> None:
        for _ in range(count):
            write_atomically(folder / "metadata.json", row)

    try:
        commit_seconds = timed(commits)
    finally:
        connection.close()
    return DiskFloor(
        durable_commit=commit_seconds / count * 1000,
        new_version_folder=timed(new_folders) / count * 1000,
        file_replacement=timed(replacements) / count * 1000,
    )


def measure_docs_floor(folder: Path, count: int = 1000) -> float:
    """Return the milliseconds that this disk takes for one version's docs folder: four small files.

    The docs projection writes, for each version, the artifact's copy,
    ``metadata.json``, ``requirements.txt`` and ``features.yaml`` in a new
    folder, with the registry's own atomic write. Folders are grouped 100 to an
    increment folder, as the W6 store groups its versions.
    """
    from registry.files import write_atomically

    data = b"x" * 1024

    def version_folders() -> None:
        for index in range(count):
            version_folder = folder / f"increment-{index // 100:05d}" / "models" / f"model-v{index}"
            for file_name in ("model.pkl", "metadata.json", "requirements.txt", "features.yaml"):
                write_atomically(version_folder / file_name, data)

    return timed(version_folders) / count * 1000


def _floor_note(floor: DiskFloor, kind: str, floor_rate: float, mlflow_rate: float) -> str:
    return (
        f"What bounds it: on this disk, in this run, a durable SQLite commit took {floor.durable_commit:.3f} ms, "
        f"a new version folder with three files {floor.new_version_folder:.3f} ms, and replacing one file "
        f"{floor.file_replacement:.3f} ms (`measure_disk_floor`). With no Python work at all, {kind} would "
        f"reach at most {floor_rate:,.0f} per second, {floor_rate / mlflow_rate:.1f} times MLflow's rate here."
    )


# --- W2 ---------------------------------------------------------------------------


def transitions(bench: Bench) -> list[Row]:
    """W2: promotions from staging to production per second."""
    sizes = bench.sizes
    ours = bench.registry(bench.folder("w2-ours"))
    theirs = _mlflow(bench.folder("w2-mlflow"))

    def stage_ours(name: str, count: int) -> list[str]:
        versions = [f"v1.{index}.0" for index in range(count)]
        for version in versions:
            ours.register_model(name, TINY_MODEL, version=version, stage="staging")
        return versions

    def promote_ours(name: str, versions: list[str]) -> float:
        seconds = 0.0
        for version in versions:
            start = time.perf_counter()
            ours.promote_model(name, version, from_stage="staging", to_stage="production")
            seconds += time.perf_counter() - start
        return seconds

    def promote_mlflow(name: str, count: int) -> float:
        theirs.client.create_registered_model(name)
        for _ in range(count):
            theirs.client.create_model_version(name, source=(theirs.folder / "artifacts").as_uri())
        seconds = 0.0
        for version in range(1, count + 1):
            theirs.client.set_registered_model_alias(name, "staging", str(version))
            start = time.perf_counter()
            theirs.client.set_registered_model_alias(name, "production", str(version))
            seconds += time.perf_counter() - start
        return seconds

    promote_ours("warm-up", stage_ours("warm-up", 2))
    promote_mlflow("warm-up", 2)
    ours_rates, mlflow_rates = [], []
    for repeat in range(sizes.repeats):
        bench.say(f"W2 repeat {repeat + 1}/{sizes.repeats}")
        name = f"promotions-{repeat}"
        ours_rates.append(sizes.promotions / promote_ours(name, stage_ours(name, sizes.promotions)))
        mlflow_rates.append(sizes.promotions / promote_mlflow(name, sizes.promotions))

    def prepare() -> Callable[[], Any]:
        name = f"profiled-{uuid.uuid4().hex[:8]}"
        versions = stage_ours(name, sizes.promotions)
        return lambda: promote_ours(name, versions)

    bench.profilers["W2 promote staging → production"] = in_process_profiler(prepare)
    bench.note(
        "W2",
        f"Ours: `promote_model(name, version, from_stage='staging', to_stage='production')`, which also archives "
        f"the previous production version in the same command. MLflow: `set_registered_model_alias(name, "
        f"'production', version)` after an untimed `set_registered_model_alias(name, 'staging', version)`. Only the "
        f"production step is timed; {sizes.promotions} promotions per repeat, on a model whose versions were "
        f"registered before the timing.",
    )
    floor = measure_disk_floor(bench.folder("w2-floor"))
    bench.note(
        "W2",
        _floor_note(
            floor,
            "a promotion (one commit and the metadata.json of the promoted and the archived version)",
            floor.promotions_per_second(),
            median(mlflow_rates),
        ),
    )
    return [
        ratio_target(
            Row(
                "W2",
                "promote staging → production",
                "promotions/s",
                median(ours_rates),
                median(mlflow_rates),
                profile_key="W2 promote staging → production",
            ),
            10,
        )
    ]


# --- W3 ---------------------------------------------------------------------------


def read_production(bench: Bench) -> list[Row]:
    """W3: latency of reading the production version's metadata."""
    from bench_mlflow import mlflow_tags

    sizes = bench.sizes
    ours = bench.registry(bench.folder("w3-ours"))
    theirs = _mlflow(bench.folder("w3-mlflow"))
    name = "read-model"
    for index in range(sizes.read_versions):
        accuracy, tags = version_metrics(index)
        version = f"v1.{index}.0"
        ours.register_model(
            name, TINY_MODEL, version=version, stage="staging", metadata={"accuracy": accuracy}, tags=tags
        )
        ours.promote_model(name, version, from_stage="staging", to_stage="production")
    theirs.client.create_registered_model(name)
    for index in range(sizes.read_versions):
        accuracy, tags = version_metrics(index)
        created = theirs.client.create_model_version(
            name, source=(theirs.folder / "artifacts").as_uri(), tags=mlflow_tags(accuracy, tags)
        )
        theirs.client.set_registered_model_alias(name, "production", created.version)

    def read_ours() -> Any:
        return ours.get_model(name, stage="production").metadata

    def read_mlflow() -> Any:
        return theirs.client.get_model_version_by_alias(name, "production").tags

    for _ in range(10):
        read_ours()
        read_mlflow()
    expected = f"v1.{sizes.read_versions - 1}.0"
    actual = ours.get_model(name, stage="production").version
    if actual != expected:
        raise AssertionError(f"W3 read {actual} as the production version of {name}; expected {expected}")

    samples: dict[str, list[float]] = {"ours-50": [], "ours-95": [], "mlflow-50": [], "mlflow-95": []}
    for repeat in range(sizes.repeats):
        bench.say(f"W3 repeat {repeat + 1}/{sizes.repeats}")
        for side, read in (("ours", read_ours), ("mlflow", read_mlflow)):
            latencies = [timed(read) * 1000 for _ in range(sizes.reads)]
            samples[f"{side}-50"].append(percentile(latencies, 0.50))
            samples[f"{side}-95"].append(percentile(latencies, 0.95))

    def prepare() -> Callable[[], Any]:
        def reads() -> None:
            for _ in range(sizes.reads):
                read_ours()

        return reads

    profiler = in_process_profiler(prepare)
    bench.profilers["W3 read production"] = profiler
    bench.note(
        "W3",
        f"Ours: `get_model(name, stage='production')` and its `.metadata`; MLflow: "
        f"`get_model_version_by_alias(name, 'production')` and its `.tags`. The model has "
        f"{sizes.read_versions} versions, each promoted to production in turn. {sizes.reads} reads per repeat, "
        f"each timed alone, after 10 untimed reads; one process reads, so our registry serves the model from its "
        f"aggregate cache and checks the store for newer events on every read.",
    )
    rows = [
        Row(
            "W3",
            "read production, p50",
            "ms",
            median(samples["ours-50"]),
            median(samples["mlflow-50"]),
            better="lower",
            profile_key="W3 read production",
        ),
        Row(
            "W3",
            "read production, p95",
            "ms",
            median(samples["ours-95"]),
            median(samples["mlflow-95"]),
            better="lower",
            profile_key="W3 read production",
        ),
    ]
    return [ratio_target(row, 20) for row in rows]


# --- the large histories of W4, W5 and W6 ----------------------------------------------


def _fingerprint(parameters: dict[str, Any]) -> dict[str, Any]:
    """Return ``parameters`` with a digest of the code that shapes the stored events."""
    digest = hashlib.sha256()
    for relative in (
        "registry/events.py",
        "registry/aggregate.py",
        "registry/persistence.py",
        "registry/records.py",
        "scripts/bench_data.py",
    ):
        digest.update((ROOT / relative).read_bytes())
    return {**parameters, "code": digest.hexdigest()}


def _reusable(folder: Path, parameters: dict[str, Any]) -> dict[str, Any] | None:
    marker = folder / "generated.json"
    if marker.is_file():
        stored: dict[str, Any] = json.loads(marker.read_text())
        if stored.get("parameters") == parameters:
            return stored
    return None


def ensure_history(
    bench: Bench, name: str, models: list[str], versions: int, events_per_version: int
) -> History:
    """Return the generated store ``name``, reusing one left in the work folder with the same parameters."""
    folder = bench.workdir / name
    parameters = _fingerprint(
        {"models": models, "versions": versions, "events_per_version": events_per_version}
    )
    stored = _reusable(folder, parameters)
    if stored is not None:
        bench.say(f"reusing the generated store {folder}")
        return History(
            folder,
            models,
            versions,
            stored["events"],
            dt.datetime.fromisoformat(stored["first"]),
            dt.datetime.fromisoformat(stored["last"]),
        )
    folder = bench.folder(name)
    total = len(models) * versions * events_per_version
    bench.say(f"generating about {total:,} events in {folder}")
    written = [0]

    def progress(count: int) -> None:
        written[0] += count
        if written[0] % 100_000 < count:
            bench.say(f"  {written[0]:,} events written")

    start = time.perf_counter()
    history = build_history(folder, models, versions, events_per_version, progress)
    seconds = time.perf_counter() - start
    (folder / "generated.json").write_text(
        json.dumps(
            {
                "parameters": parameters,
                "events": history.events,
                "seconds": seconds,
                "first": history.first_effective_at.isoformat(),
                "last": history.last_effective_at.isoformat(),
            }
        )
    )
    bench.say(f"generated {history.events:,} events in {seconds:.0f} s")
    return history


def _history(bench: Bench) -> History:
    sizes = bench.sizes
    per_version = max(1, round(sizes.history_events / sizes.history_versions))
    return ensure_history(bench, "history-ours", ["history-model"], sizes.history_versions, per_version)


def _mlflow_history(bench: Bench) -> Any:
    """Return an MLflow store with the same versions, accuracies and tags as the generated history."""
    from bench_mlflow import mlflow_tags

    sizes = bench.sizes
    folder = bench.workdir / "history-mlflow"
    parameters = {"versions": sizes.history_versions, "tags": "v1"}
    if _reusable(folder, parameters) is not None:
        bench.say(f"reusing the MLflow store {folder}")
        return _mlflow(folder)
    folder = bench.folder("history-mlflow")
    theirs = _mlflow(folder)
    bench.say(f"registering {sizes.history_versions:,} MLflow versions in {folder}")
    start = time.perf_counter()
    theirs.client.create_registered_model("history-model")
    source = (folder / "artifacts").as_uri()
    for index in range(sizes.history_versions):
        accuracy, tags = version_metrics(index)
        theirs.client.create_model_version("history-model", source=source, tags=mlflow_tags(accuracy, tags))
    seconds = time.perf_counter() - start
    (folder / "generated.json").write_text(json.dumps({"parameters": parameters, "seconds": seconds}))
    return theirs


# --- W4 ---------------------------------------------------------------------------


def search(bench: Bench) -> list[Row]:
    """W4: listing, and filtering by tag and by tag and metric, among the versions of one large model."""
    sizes = bench.sizes
    history = _history(bench)
    theirs = _mlflow_history(bench)
    ours = bench.registry(history.home)
    name = "history-model"
    threshold = 0.9

    catch_up = timed(lambda: ours.list_versions(name, page_size=1))
    bench.note(
        "W4",
        f"Before the timing, the first query caught the read models up with the log in {catch_up:.1f} s.",
    )

    def mlflow_accuracy(version: Any) -> float:
        return float(version.tags["accuracy"])

    # Both sides read each found version's number and accuracy, so building results lazily gains nothing.
    def read_ours(views: Iterable[Any]) -> int:
        return sum(1 for view in views if view.version and view.metadata["accuracy"] is not None)

    def read_mlflow(versions: Iterable[Any]) -> int:
        return sum(1 for version in versions if version.version and mlflow_accuracy(version) is not None)

    cases: list[tuple[str, Callable[[], int], Callable[[], int]]] = [
        (
            "list all versions",
            lambda: read_ours(ours.list_versions(name)),
            lambda: read_mlflow(theirs.search(f"name='{name}'")),
        ),
        (
            "filter by tag",
            lambda: read_ours(ours.list_versions(name, tags=["candidate"])),
            lambda: read_mlflow(theirs.search(f"name='{name}' AND tags.candidate = 'true'")),
        ),
        (
            f"filter by tag and accuracy ≥ {threshold}",
            lambda: read_ours(ours.list_versions(name, tags=["candidate"], min_metrics={"accuracy": threshold})),
            lambda: read_mlflow(
                version
                for version in theirs.search(f"name='{name}' AND tags.candidate = 'true'")
                if mlflow_accuracy(version) >= threshold
            ),
        ),
    ]
    rows = []
    for case, ours_query, mlflow_query in cases:
        ours_count, mlflow_count = ours_query(), mlflow_query()
        if ours_count != mlflow_count:
            raise AssertionError(
                f"W4 {case}: our registry found {ours_count} versions and MLflow {mlflow_count}"
            )
        ours_times, mlflow_times = [], []
        for repeat in range(sizes.repeats):
            bench.say(f"W4 {case}, repeat {repeat + 1}/{sizes.repeats}")
            ours_times.append(median([timed(ours_query) * 1000 for _ in range(sizes.searches)]))
            mlflow_times.append(median([timed(mlflow_query) * 1000 for _ in range(sizes.searches)]))
        row = Row(
            "W4",
            f"{case} ({ours_count:,} found)",
            "ms",
            median(ours_times),
            median(mlflow_times),
            better="lower",
            profile_key=f"W4 {case}",
        )
        rows.append(ratio_target(row, 10))

        def prepare(query: Callable[[], int] = ours_query) -> Callable[[], Any]:
            return lambda: [query() for _ in range(sizes.searches)]

        bench.profilers[f"W4 {case}"] = in_process_profiler(prepare)
        if case == "filter by tag":
            sql, decode = _list_parts(ours, name, ["candidate"], sizes.searches * 4)
            bench.note(
                "W4",
                f"Parts of our tag filter, each timed alone (median of {sizes.searches * 4}): the catalog query "
                f"took {sql:.2f} ms and decoding the metadata JSON of its {ours_count:,} rows {decode:.2f} ms, "
                f"of the {row.ours:.2f} ms of the whole call. The rest builds the views, checks that the read "
                f"models are caught up, and collects the garbage of the objects made.",
            )
    bench.note(
        "W4",
        f"One model with {sizes.history_versions:,} versions on each side. Ours: `list_versions(name)`, "
        f"`list_versions(name, tags=['candidate'])` and `list_versions(name, tags=['candidate'], "
        f"min_metrics={{'accuracy': {threshold}}})`, served by the catalog read model. MLflow: "
        f"`search_model_versions` with `name='history-model'` and `tags.candidate = 'true'`, reading every page. "
        f"MLflow cannot filter model versions by a metric in the store, so the accuracy is kept as a version tag "
        f"and compared on the client after the tag search. Both sides read the version number and the accuracy "
        f"of every version found. Our views decode the rest of a version's state only when another field is "
        f"read, so reading fewer fields would favour us. Each query runs {sizes.searches} times per repeat; "
        f"the median is kept.",
    )
    return rows


def _list_parts(ours: Any, name: str, tags: list[str], count: int) -> tuple[float, float]:
    """Return the milliseconds of the catalog query of ``list_versions(name, tags=tags)`` and of its JSON decoding."""
    import orjson

    from projections import catalog

    database = ours._read_models()

    def select() -> Any:
        return catalog.select_versions(database, name, tags=tags)

    rows = select().rows

    def decode() -> Any:
        return [orjson.loads(row[2]) for row in rows]

    return (
        median([timed(select) * 1000 for _ in range(count)]),
        median([timed(decode) * 1000 for _ in range(count)]),
    )


# --- W5 ---------------------------------------------------------------------------


def point_in_time(bench: Bench) -> list[Row]:
    """W5: ``get_model_by_date`` on a model with a long history, against a naive full replay."""
    from registry.naming import model_id

    sizes = bench.sizes
    history = _history(bench)
    ours = bench.registry(history.home)
    name = "history-model"
    per_version = max(1, round(sizes.history_events / sizes.history_versions))
    # The cycle reaches production at its eighth event and staging at its fourth.
    stage = "dev"
    if per_version >= 8:
        stage = "production"
    elif per_version >= 4:
        stage = "staging"

    rng = random.Random(5)
    span = history.last_effective_at - history.first_effective_at - 20 * EVENT_SPACING
    instants = [history.first_effective_at + 20 * EVENT_SPACING + span * rng.random() for _ in range(1000)]

    def naive_version_at(when: dt.datetime) -> str:
        """Load every event of the model and fold those effective at or before ``when``."""
        events = list(ours._store.events.get(model_id(name)))
        aggregate = None
        for event in events:
            if event.effective_at > when:
                break
            aggregate = event.mutate(aggregate)
        assert aggregate is not None, f"{name} has no event effective at or before {when}"
        return str(aggregate.holder_of(stage)[-1].version)

    def read_at(when: dt.datetime) -> Any:
        return ours.get_model_by_date(name, when, stage=stage)

    for when in instants[:2]:
        fast = ours.get_model_by_date(name, when, stage=stage).version
        naive = naive_version_at(when)
        if fast != naive:
            raise AssertionError(f"W5 at {when}: get_model_by_date returned {fast}, the full replay {naive}")

    samples: dict[str, list[float]] = {"50": [], "95": [], "naive": []}
    cursor = 0
    for repeat in range(sizes.repeats):
        bench.say(f"W5 repeat {repeat + 1}/{sizes.repeats}")
        latencies = []
        for _ in range(sizes.point_queries):
            when = instants[cursor % len(instants)]
            cursor += 1
            latencies.append(timed(functools.partial(read_at, when)) * 1000)
        samples["50"].append(percentile(latencies, 0.50))
        samples["95"].append(percentile(latencies, 0.95))
        for _ in range(sizes.replays):
            when = instants[cursor % len(instants)]
            cursor += 1
            samples["naive"].append(timed(functools.partial(naive_version_at, when)) * 1000)

    def prepare() -> Callable[[], Any]:
        chosen = instants[: sizes.point_queries]
        return lambda: [read_at(when) for when in chosen]

    bench.profilers["W5 get_model_by_date"] = in_process_profiler(prepare)
    bench.note(
        "W5",
        f"`get_model_by_date(name, date, stage={stage!r})` at random instants of a model with "
        f"{sizes.history_versions:,} versions and {history.events:,} events (snapshots where the registry "
        f"takes them, every 12,800 events at that size); {sizes.point_queries} queries per repeat. The naive replay loads every event of "
        f"the model from the event store and folds those effective by then, with no snapshot; "
        f"{sizes.replays} per repeat. MLflow keeps no history of aliases, so it has no equivalent.",
    )
    rows = [
        Row(
            "W5",
            "get_model_by_date, p50",
            "ms",
            median(samples["50"]),
            mlflow_note="no equivalent",
            better="lower",
            target="< 5 ms",
            passed=median(samples["50"]) < 5,
            profile_key="W5 get_model_by_date",
        ),
        Row(
            "W5",
            "get_model_by_date, p95",
            "ms",
            median(samples["95"]),
            mlflow_note="no equivalent",
            better="lower",
            target="< 5 ms",
            passed=median(samples["95"]) < 5,
            profile_key="W5 get_model_by_date",
        ),
        Row(
            "W5",
            "naive full replay (for comparison)",
            "ms",
            median(samples["naive"]),
            mlflow_note="no equivalent",
            better="lower",
            note=f"get_model_by_date's p50 is {median(samples['naive']) / median(samples['50']):,.1f} "
            "times faster than the naive full replay",
        ),
    ]
    return rows


# --- W6 ---------------------------------------------------------------------------


def rebuild(bench: Bench) -> list[Row]:
    """W6: a full rebuild of every projection, in a child process whose peak RSS is measured."""
    sizes = bench.sizes
    per_model = max(1, sizes.rebuild_events // sizes.rebuild_models)
    versions = max(1, round(per_model / 10))
    models = [f"model-{index:05d}" for index in range(sizes.rebuild_models)]
    history = ensure_history(bench, "rebuild-ours", models, versions, min(per_model, 10))

    rates, peaks, baselines = [], [], []
    for repeat in range(sizes.repeats):
        bench.say(f"W6 repeat {repeat + 1}/{sizes.repeats}: rebuilding {history.events:,} events")
        result = _rebuild_child(history.home, bench.workdir / f"rebuild-{repeat}", None)
        rates.append(result["events"] / result["seconds"])
        peaks.append(result["peak_rss_mb"])
        baselines.append(result["opened_rss_mb"])
        bench.say(
            f"  {result['events']:,} events in {result['seconds']:.1f} s, peak RSS {result['peak_rss_mb']:.0f} MB"
        )

    def profile(stem: Path) -> list[ProfileEntry]:
        result = _rebuild_child(history.home, bench.workdir / "rebuild-profiled", stem)
        return [ProfileEntry(**entry) for entry in result["profile"]]

    bench.profilers["W6 rebuild"] = profile
    bench.note(
        "W6",
        f"`ModelRegistry.rebuild_projections(target=...)` of all four projections (catalog, history, lineage, "
        f"docs) into a new database and docs folder, from {history.events:,} events of {len(models):,} models "
        f"with {versions:,} versions each. Each rebuild runs in a new process; the peak RSS is that process's "
        f"VmHWM, which includes the interpreter and the imports (the RSS was {median(baselines):.0f} MB after "
        f"opening the registry, before the rebuild). MLflow has no projections to rebuild.",
    )
    rate, peak = median(rates), median(peaks)
    version_count = len(models) * versions
    docs_floor = measure_docs_floor(bench.folder("w6-floor"))
    floor_seconds = version_count * docs_floor / 1000
    bench.note(
        "W6",
        f"What bounds it: the docs projection writes a folder of four files for each version (the artifact's "
        f"copy, metadata.json, requirements.txt and features.yaml). On this disk, in this run, one such folder "
        f"took {docs_floor:.3f} ms (`measure_docs_floor`), so the {version_count:,} version folders alone take "
        f"{floor_seconds:,.2f} s. With no Python work at all, the rebuild would reach at most "
        f"{history.events / floor_seconds:,.0f} events per second.",
    )
    default = Sizes().rebuild_events
    if sizes.rebuild_events < default:
        bench.note(
            "W6",
            f"This run rebuilt {history.events:,} events, fewer than the default {default:,}. At the measured rate, "
            f"a rebuild of {default:,} events would take about {default / rate / 60:,.0f} minutes (an estimate "
            f"that assumes the rate does not fall as the store grows).",
        )
    return [
        Row(
            "W6",
            "full projection rebuild",
            "events/s",
            rate,
            mlflow_note="no equivalent",
            target="≥ 100,000 events/s",
            passed=rate >= 100_000,
            profile_key="W6 rebuild",
        ),
        Row(
            "W6",
            "peak RSS of the rebuild",
            "MB",
            peak,
            mlflow_note="no equivalent",
            better="lower",
            target="< 300 MB",
            passed=peak < 300,
            profile_key="W6 rebuild",
        ),
    ]


def _rebuild_child(home: Path, target: Path, profile_stem: Path | None) -> dict[str, Any]:
    shutil.rmtree(target, ignore_errors=True)
    context = multiprocessing.get_context("spawn")
    results: Any = context.Queue()
    process = context.Process(target=_rebuild_in_child, args=(home, target, profile_stem, results))
    process.start()
    try:
        result: dict[str, Any] = results.get(timeout=REBUILD_TIMEOUT_SECONDS)
    finally:
        process.join(timeout=60)
        if process.is_alive():
            process.kill()
        shutil.rmtree(target, ignore_errors=True)
    if "error" in result:
        raise RuntimeError(f"the rebuild failed in its child process:\n{result['error']}")
    return result


def _rebuild_in_child(home: Path, target: Path, profile_stem: Path | None, results: Any) -> None:
    """Rebuild every projection of ``home`` into ``target`` and put the time and peak RSS on ``results``."""
    import traceback

    try:
        from registry import ModelRegistry

        target.mkdir(parents=True)
        with ModelRegistry(home=home, actor="bench") as registry:
            opened = _current_rss_megabytes()
            events = registry._store.recorder.max_notification_id() or 0

            def operation() -> None:
                registry.rebuild_projections(target=target / "read_models.sqlite3")

            entries: list[ProfileEntry] = []
            start = time.perf_counter()
            if profile_stem is None:
                operation()
            else:
                entries = profile_with_cprofile(operation, profile_stem.with_suffix(".cprofile.txt"))
            seconds = time.perf_counter() - start
        results.put(
            {
                "events": events,
                "seconds": seconds,
                "peak_rss_mb": peak_rss_megabytes(),
                "opened_rss_mb": opened,
                "profile": [dataclasses.asdict(entry) for entry in entries],
            }
        )
    except BaseException:  # noqa: BLE001 - the parent reports any failure of the child, with its traceback
        results.put({"error": traceback.format_exc()})


def _current_rss_megabytes() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024 / 1e6
    return float("nan")


# --- W7 ---------------------------------------------------------------------------


def concurrency(bench: Bench) -> list[Row]:
    """W7: several processes registering versions of one model at once on one SQLite store."""
    from bench_concurrency import run_concurrently

    sizes = bench.sizes
    outcomes: dict[str, list[Any]] = {"ours": [], "mlflow": []}
    for repeat in range(sizes.repeats):
        for side in ("ours", "mlflow"):
            bench.say(f"W7 repeat {repeat + 1}/{sizes.repeats}: {sizes.writers} {side} writers")
            folder = bench.folder(f"w7-{side}-{repeat}")
            outcomes[side].append(run_concurrently(side, folder, sizes.writers, sizes.writer_registrations))

    def total(side: str, field: str) -> int:
        return sum(getattr(outcome, field) for outcome in outcomes[side])

    mlflow_errors = sorted(
        {error.splitlines()[0][:200] for outcome in outcomes["mlflow"] for error in outcome.errors}
    )
    ours_errors = sorted(
        {error.splitlines()[0][:200] for outcome in outcomes["ours"] for error in outcome.errors}
    )
    attempted = sizes.repeats * sizes.writers * sizes.writer_registrations
    bench.note(
        "W7",
        f"{sizes.writers} processes, started together, each register {sizes.writer_registrations} versions of one "
        f"model on one SQLite file: ours with `register_model(name, model)` and automatic version numbers, MLflow "
        f"with `create_model_version(name, source=...)`. Counts are summed over {sizes.repeats} repeats "
        f"({attempted:,} registrations attempted per side). A duplicate is a version number stored twice, or one "
        f"registration stored under two versions; a lost registration was acknowledged to its caller but is not "
        f"in the store; a failed one raised an error to its caller.",
    )
    if ours_errors:
        bench.note("W7", "Our registry's errors: " + "; ".join(f"`{error}`" for error in ours_errors))
    if mlflow_errors:
        bench.note("W7", "MLflow's errors: " + "; ".join(f"`{error}`" for error in mlflow_errors))
    throughput = Row(
        "W7",
        f"{sizes.writers} concurrent writers, throughput",
        "versions/s",
        median([o.throughput for o in outcomes["ours"]]),
        median([o.throughput for o in outcomes["mlflow"]]),
    )
    rows = [throughput]
    for field, case in (("duplicates", "duplicate versions"), ("lost", "lost registrations")):
        ours_count = total("ours", field)
        rows.append(
            Row(
                "W7",
                case,
                "count",
                ours_count,
                total("mlflow", field),
                better="none",
                target="0",
                passed=ours_count == 0,
            )
        )
    rows.append(
        Row(
            "W7",
            "failed registrations",
            "count",
            total("ours", "failed"),
            total("mlflow", "failed"),
            better="none",
        )
    )
    return rows


WORKLOADS: dict[str, Callable[[Bench], list[Row]]] = {
    "W1": register,
    "W2": transitions,
    "W3": read_production,
    "W4": search,
    "W5": point_in_time,
    "W6": rebuild,
    "W7": concurrency,
}
