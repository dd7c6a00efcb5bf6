"""Shared fixtures: registries on every configured backend, a controllable clock, real models."""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from registry import ModelRegistry

# The PostgreSQL tests read their connection from this variable, e.g.
# postgresql://postgres@127.0.0.1:5432/test; without it they are skipped.
POSTGRES_URL_VARIABLE = "REGISTRY_TEST_DATABASE_URL"


class FakeClock:
    """A clock that stays at one time until a test advances it."""

    def __init__(self, start: dt.datetime) -> None:
        self.now = start

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> dt.datetime:
        self.now = self.now + dt.timedelta(**delta)
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(dt.datetime(2024, 1, 10, 9, 0, tzinfo=dt.timezone.utc))


def postgres_url() -> str | None:
    return os.environ.get(POSTGRES_URL_VARIABLE) or None


@pytest.fixture
def postgres_schema_url() -> Iterator[str]:
    """Create an empty schema for one test and drop it afterwards."""
    base = postgres_url()
    if base is None:
        pytest.skip(f"PostgreSQL tests need {POSTGRES_URL_VARIABLE}, e.g. postgresql://postgres@127.0.0.1:5432/test")
    import psycopg

    schema = f"test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base, autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{schema}"')
    separator = "&" if "?" in base else "?"
    try:
        yield f"{base}{separator}schema={schema}"
    finally:
        with psycopg.connect(base, autocommit=True) as connection:
            connection.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> str | None:
    """Return the database URL of the backend under test; None means SQLite."""
    if request.param == "sqlite":
        return None
    return request.getfixturevalue("postgres_schema_url")  # type: ignore[no-any-return]


@pytest.fixture
def make_registry(tmp_path: Path, backend: str | None, clock: FakeClock) -> Iterator[Any]:
    """Return a factory of registries that share one home and backend."""
    opened: list[ModelRegistry] = []

    def factory(**options: Any) -> ModelRegistry:
        options.setdefault("home", tmp_path / "home")
        options.setdefault("database_url", backend)
        options.setdefault("clock", clock)
        options.setdefault("actor", "alice")
        registry = ModelRegistry(**options)
        opened.append(registry)
        return registry

    yield factory
    for registry in opened:
        registry.close()


@pytest.fixture
def registry(make_registry: Any) -> ModelRegistry:
    """A registry on the backend under test, acting as 'alice' with the test clock."""
    return make_registry()  # type: ignore[no-any-return]


@dataclass(frozen=True)
class TrainedModels:
    """Two real models on scikit-learn's breast-cancer data, with different feature sets."""

    features_v1: list[str]
    features_v2: list[str]
    logistic: Any  # scikit-learn pipeline on features_v1
    xgboost: Any  # XGBoost classifier on features_v2
    x_train: Any
    x_test: Any
    y_test: Any


@pytest.fixture(scope="session")
def models() -> TrainedModels:
    import xgboost
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    frame = load_breast_cancer(as_frame=True)
    x = frame.data.rename(columns=lambda c: c.replace(" ", "_"))
    x_train, x_test, y_train, y_test = train_test_split(x, frame.target, test_size=0.25, random_state=7)
    features_v1 = list(x.columns[:10])
    features_v2 = list(x.columns[:10]) + list(x.columns[20:25])
    logistic = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(
        x_train[features_v1], y_train
    )
    booster = xgboost.XGBClassifier(n_estimators=30, max_depth=3, random_state=7).fit(
        x_train[features_v2], y_train
    )
    return TrainedModels(features_v1, features_v2, logistic, booster, x_train, x_test, y_test)
