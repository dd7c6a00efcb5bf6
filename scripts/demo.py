"""Walk a model through the registry on real data: register, approve, promote, roll back, deprecate.

Two real models are trained on scikit-learn's bundled breast-cancer data set:
a logistic regression on the ten "mean" features (v3.0.0) and an XGBoost
classifier on fifteen features (v3.1.0). The registry runs on SQLite in
``demo-output/registry`` and on a simulated calendar, an injected clock, so
that the deployments lie days apart and the point-in-time query has a past
to look at.
"""

from __future__ import annotations

import argparse
import datetime as dt
import pickle
import shutil
import statistics
import time
import warnings
from pathlib import Path
from typing import Any

import xgboost
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from registry import ModelDeprecatedWarning, ModelGovernance, ModelRegistry, RegistryError

MODEL = "breast-cancer-classifier"


class SimulatedCalendar:
    """A clock that starts on a fixed day and moves forward only when the demo advances it."""

    def __init__(self, start: dt.datetime) -> None:
        self.now = start

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, days: float) -> None:
        self.now += dt.timedelta(days=days)


def step(text: str) -> None:
    print(f"\n== {text}")


def show(text: str) -> None:
    print(f"   {text}")


def show_rejection(error: RegistryError) -> None:
    print(f"   rejected as expected: {type(error).__name__}: {error}")


def evaluate(model: Any, x: Any, y: Any) -> dict[str, float]:
    """Return the held-out metrics and the single-row latency of ``model``."""
    predicted = model.predict(x)
    scores = model.predict_proba(x)[:, 1]
    latencies = []
    for index in range(100):
        row = x.iloc[[index % len(x)]]
        started = time.perf_counter()
        model.predict(row)
        latencies.append((time.perf_counter() - started) * 1000)
    quantiles = statistics.quantiles(latencies, n=100)
    return {
        "accuracy": round(accuracy_score(y, predicted), 4),
        "precision": round(precision_score(y, predicted), 4),
        "recall": round(recall_score(y, predicted), 4),
        "f1_score": round(f1_score(y, predicted), 4),
        "roc_auc": round(roc_auc_score(y, scores), 4),
        "inference_latency_p50": round(quantiles[49], 3),
        "inference_latency_p95": round(quantiles[94], 3),
    }


def train(model: Any, x: Any, y: Any) -> tuple[Any, float]:
    started = time.perf_counter()
    model.fit(x, y)
    return model, round(time.perf_counter() - started, 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--output",
        type=Path,
        default=Path(__file__).resolve().parents[1] / "demo-output",
        help="folder for the demo's registry (default: demo-output/ in the repository)",
    )
    args = parser.parse_args()
    home = args.output / "registry"
    if home.exists():
        shutil.rmtree(home)

    step("Load scikit-learn's bundled breast-cancer data and split it")
    data = load_breast_cancer(as_frame=True)
    x = data.data.rename(columns=lambda column: column.replace(" ", "_"))
    x_train, x_rest, y_train, y_rest = train_test_split(x, data.target, test_size=0.4, random_state=42, stratify=data.target)
    x_test, x_holdout, y_test, y_holdout = train_test_split(x_rest, y_rest, test_size=0.5, random_state=42, stratify=y_rest)
    show(f"{len(x_train)} training rows, {len(x_test)} test rows, {len(x_holdout)} held-out rows")

    calendar = SimulatedCalendar(dt.datetime(2024, 3, 4, 9, 0, tzinfo=dt.timezone.utc))
    registry = ModelRegistry(home=home, increment="0042", actor="alice", clock=calendar)
    show(f"registry home: {registry.home} (SQLite event store: events.sqlite3)")
    show("the clock is a simulated calendar that starts on 2024-03-04, so deployments lie days apart")

    step("Train v3.0.0: logistic regression on the 10 'mean' features")
    features_a = [c for c in x.columns if c.startswith("mean_")]
    model_a, seconds_a = train(make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)), x_train[features_a], y_train)
    metrics_a = evaluate(model_a, x_test[features_a], y_test)
    show(f"test metrics: {metrics_a}")
    version_a = registry.register_model(
        MODEL,
        model_a,
        version="v3",
        metadata=metadata_for(model_a, "logistic_regression", "scikit-learn", seconds_a, len(x_train), metrics_a, features_a, "exp-002", None),
        tags=["baseline", "linear"],
        input_example=x_train[features_a].head(20),
    )
    show(f"registered {version_a.name} {version_a.version} in {version_a.stage}, artifact sha256 {version_a.artifact.sha256[:16]}... ({version_a.artifact.size} bytes, {version_a.artifact.format})")
    show(f"signature inputs: {len(version_a.signature.inputs)} features, outputs: {version_a.signature.outputs}")

    calendar.advance(days=1)
    step("Train the candidate: XGBoost on 15 features")
    features_b = features_a + [c for c in x.columns if c.startswith("worst_")][:5]
    model_b, seconds_b = train(xgboost.XGBClassifier(n_estimators=120, max_depth=3, learning_rate=0.1, random_state=42), x_train[features_b], y_train)
    metrics_b = evaluate(model_b, x_test[features_b], y_test)
    show(f"test metrics: {metrics_b}")
    metadata_b = metadata_for(model_b, "xgboost", "xgboost", seconds_b, len(x_train), metrics_b, features_b, "exp-003", "breast-cancer-classifier-v3.0.0")
    proposed = registry.version_model(MODEL, model=model_b, metadata=metadata_b, input_example=x_train[features_b].head(20))
    show(f"version_model() classifies the change against v3.0.0 and proposes {proposed}")
    version_b = registry.register_model(MODEL, model_b, auto_version=True, metadata=metadata_b, tags=["candidate", "xgboost"], input_example=x_train[features_b].head(20))
    show(f"registered {version_b.version} ({version_b.version_bump}: {'; '.join(version_b.bump_reasons)[:110]}...)")

    step("Compare v3.0.0 with the candidate v3.1.0")
    comparison = registry.compare_models(model_a=f"{MODEL}-v3.0.0", model_b=f"{MODEL}-v3.1.0")
    for line in comparison.to_text().splitlines():
        show(line)

    step("Set the production approval policy: 2 approvals from alice, bob, carol")
    registry.set_approval_required(stage="production", approvers=["alice", "bob", "carol"], min_approvals=2, actor="release-manager")

    calendar.advance(days=1)
    step("Promote v3.0.0: dev -> staging -> production")
    registry.promote_model(MODEL, "v3.0.0", from_stage="dev", to_stage="staging")
    show("v3.0.0 is in staging")
    try:
        registry.promote_model(MODEL, "v3.0.0", from_stage="staging", to_stage="production")
    except RegistryError as error:
        show_rejection(error)
    try:
        registry.approve_model(MODEL, "v3.0.0", approver="alice", comments="my own model looks fine")
    except RegistryError as error:
        show_rejection(error)
    registry.approve_model(MODEL, "v3.0.0", approver="bob", comments="metrics checked on the test split")
    registry.approve_model(MODEL, "v3.0.0", approver="carol", comments="signature and requirements reviewed")
    deployed_a = registry.promote_model(MODEL, "v3.0.0", from_stage="staging", to_stage="production")
    show(f"v3.0.0 is in production since {deployed_a.deployed_at.isoformat()}, approved by {deployed_a.metadata['approver']}")

    calendar.advance(days=7)
    step("A week later, promote v3.1.0, which archives v3.0.0 in the same command")
    registry.promote_model(MODEL, "v3.1.0", from_stage="dev", to_stage="staging")
    registry.approve_model(MODEL, "v3.1.0", approver="bob", comments="AUC up on the test split")
    registry.reject_model(MODEL, "v3.1.0", approver="carol", reason="p95 latency not measured under load yet")
    try:
        registry.promote_model(MODEL, "v3.1.0", from_stage="staging", to_stage="production")
    except RegistryError as error:
        show_rejection(error)
    calendar.advance(days=1)
    registry.approve_model(MODEL, "v3.1.0", approver="carol", comments="load test passed")
    deployed_b = registry.promote_model(MODEL, "v3.1.0", from_stage="staging", to_stage="production")
    show(f"v3.1.0 is in production since {deployed_b.deployed_at.isoformat()}")
    show(f"v3.0.0 is now {registry.get_model(MODEL, version='v3.0.0').stage}")

    calendar.advance(days=3)
    step("Roll back to v3.0.0")
    rolled = registry.rollback(MODEL, to_version="v3.0.0", reason="false negatives up on live traffic since v3.1.0", actor="oncall-erin")
    show(f"production is {rolled.version} again; v3.1.0 is {registry.get_model(MODEL, version='v3.1.0').stage}")

    step("Deprecate v3.1.0 with an end of life 30 days out")
    end_of_life = (calendar.now + dt.timedelta(days=30)).date()
    registry.deprecate_model(MODEL, "v3.1.0", reason="rolled back; superseded by the next release", end_of_life=end_of_life.isoformat(), actor="alice")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        registry.get_model(MODEL, version="v3.1.0")
    show(f"reading v3.1.0 warns: {caught[0].message}" if caught else "reading v3.1.0 did not warn")
    try:
        registry.promote_model(MODEL, "v3.1.0", from_stage="archived", to_stage="staging")
    except RegistryError as error:
        show_rejection(error)

    step("Ask which version was in production at a past moment (replayed from the events)")
    between = deployed_a.deployed_at + (deployed_b.deployed_at - deployed_a.deployed_at) / 2
    at_between = registry.get_model_by_date(MODEL, between)
    show(f"at {between.isoformat()} production was {at_between.version}")
    after_b = deployed_b.deployed_at + dt.timedelta(days=1)
    show(f"at {after_b.isoformat()} production was {registry.get_model_by_date(MODEL, after_b).version}")

    step("Load the production model (digest checked) and score the held-out data")
    production = registry.get_model(MODEL, stage="production")
    loaded = production.model
    holdout_accuracy = accuracy_score(y_holdout, loaded.predict(x_holdout[list(production.signature.inputs)]))
    show(f"{production.version} ({production.metadata['algorithm']}): held-out accuracy {holdout_accuracy:.4f} on {len(x_holdout)} rows")

    calendar.advance(days=31)
    step("Thirty-one days later, v3.1.0 is past its end of life")
    archived = registry.enforce_end_of_life(actor="registry-scheduler")
    show(f"end-of-life job archived: {archived or 'nothing (v3.1.0 was already archived)'}")
    try:
        registry.get_model(MODEL, version="v3.1.0")
    except RegistryError as error:
        show_rejection(error)

    step("List the versions from the catalog read model")
    for listed in registry.list_versions(MODEL):
        deprecated = " (deprecated)" if listed.is_deprecated else ""
        show(f"{listed.version:<8} {listed.stage:<11} accuracy {listed.metadata['accuracy']:.4f}  tags {', '.join(listed.tags)}{deprecated}")

    step("Trace the lineage of v3.1.0")
    for line in registry.get_lineage(MODEL, "v3.1.0").to_tree().splitlines():
        show(line)
    show(f"models that use the feature set fe-v1: {', '.join(registry.models_using_feature('fe-v1'))}")

    step("The history, as stored in the event log")
    for entry in registry.history(MODEL):
        stages = f"{entry.from_stage or ''} -> {entry.to_stage}" if entry.to_stage else ""
        show(f"#{entry.position:<3} {entry.effective_at:%Y-%m-%d %H:%M} {entry.event:<12} {entry.version or '':<7} {stages:<24} by {entry.actor:<16} {entry.reason or ''}")

    step("Files written for each version")
    for path in sorted((registry.files_root / MODEL).rglob("*")):
        if path.is_file():
            show(str(path.relative_to(registry.home)))

    step("Write the docs: model-registry.md and the increments layout")
    docs_root = registry.write_docs()
    for path in sorted(docs_root.rglob("*")):
        if path.is_file():
            show(str(path.relative_to(registry.home)))
    print()
    print((docs_root / MODEL / "model-registry.md").read_text())

    step("Verify the event log and write the audit report from 2024-03-01 until now")
    governance = ModelGovernance(registry=registry)
    show(governance.verify().summary())
    report = governance.generate_audit_report(MODEL, dt.datetime(2024, 3, 1, tzinfo=dt.UTC), calendar.now)
    for checkpoint in report.checkpoints:
        show(f"{checkpoint.status:<14} {checkpoint.title}")
    for extension in ("md", "html", "json"):
        written = report.write(docs_root / MODEL / f"audit-report.{extension}")
        show(f"audit report: {written}")
    registry.close()
    print("\nDemo finished.")


def metadata_for(
    model: Any,
    algorithm: str,
    framework: str,
    seconds: float,
    rows: int,
    metrics: dict[str, float],
    features: list[str],
    experiment: str,
    parent: str | None,
) -> dict[str, Any]:
    """Build metadata in the shape ML teams keep: training, metrics, deployment, lineage, features."""
    return {
        "algorithm": algorithm,
        "framework": framework,
        "training_duration": seconds,
        "training_data_size": rows,
        **metrics,
        "model_size": len(pickle.dumps(model)),
        "experiment": experiment,
        "training_data_version": "sklearn-breast-cancer-v1",
        "feature_engineering_version": "fe-v1" if len(features) == 10 else "fe-v2",
        "parent_model": parent,
        "features": features,
        "owner": "alice",
    }


if __name__ == "__main__":
    main()
