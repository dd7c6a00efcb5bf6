"""Where the event store lives, how it is chosen, and what every event records about its origin."""

from __future__ import annotations

import getpass
import traceback
from pathlib import Path
from typing import Any

import pytest

from registry import InvalidInput, ModelNotFound, ModelRegistry

NAME = "fraud-detection"
PASSWORD = "s3cret-Pw"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Remove the registry's variables, so that each test sets the ones it needs."""
    for variable in ("REGISTRY_HOME", "REGISTRY_DATABASE_URL", "REGISTRY_USER"):
        monkeypatch.delenv(variable, raising=False)


# --- SQLite homes -------------------------------------------------------------------


def test_sqlite_store_in_home(tmp_path: Path) -> None:
    home = tmp_path / "home"

    with ModelRegistry(home, actor="alice") as registry:
        registry.register_model(NAME, {"threshold": 0.7}, version="v1")

    assert (home / "events.sqlite3").is_file()
    with ModelRegistry(home, actor="bob") as reopened:
        assert reopened.database_url is None
        assert reopened.get_model(NAME, version="v1").version == "v1.0.0"


def test_other_home_is_other_store(tmp_path: Path) -> None:
    with ModelRegistry(tmp_path / "first", actor="alice") as registry:
        registry.register_model(NAME, {"threshold": 0.7}, version="v1")

    with ModelRegistry(tmp_path / "second", actor="alice") as other:
        assert other.list_models() == []
        with pytest.raises(ModelNotFound):
            other.get_model(NAME, version="v1")


def test_registry_home_variable_selects_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REGISTRY_HOME", str(tmp_path / "from-variable"))
    monkeypatch.chdir(tmp_path)

    with ModelRegistry(actor="alice") as registry:
        registry.register_model(NAME, {"threshold": 0.7}, version="v1")

    assert registry.home == tmp_path / "from-variable"
    assert (tmp_path / "from-variable" / "events.sqlite3").is_file()
    assert not (tmp_path / ".registry").exists()


def test_default_home_is_dot_registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)

    with ModelRegistry(actor="alice") as registry:
        registry.register_model(NAME, {"threshold": 0.7}, version="v1")

    assert registry.home == tmp_path / ".registry"
    assert (tmp_path / ".registry" / "events.sqlite3").is_file()
    assert (tmp_path / ".registry" / "artifacts").is_dir()


def test_home_argument_beats_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REGISTRY_HOME", str(tmp_path / "from-variable"))

    with ModelRegistry(tmp_path / "from-argument", actor="alice") as registry:
        registry.register_model(NAME, {"threshold": 0.7}, version="v1")

    assert (tmp_path / "from-argument" / "events.sqlite3").is_file()
    assert not (tmp_path / "from-variable").exists()


def test_relative_home_fixed_at_opening(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with ModelRegistry("relative", actor="alice") as registry:
        (tmp_path / "elsewhere").mkdir()
        monkeypatch.chdir(tmp_path / "elsewhere")

        registered = registry.register_model(NAME, {"threshold": 0.7}, version="v1")

        assert registry.artifacts.path_of(registered.artifact.sha256).is_relative_to(tmp_path / "relative")
    assert not (tmp_path / "elsewhere" / "relative").exists()


# --- PostgreSQL -----------------------------------------------------------------------


def test_database_url_variable_selects_postgres(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, postgres_schema_url: str
) -> None:
    monkeypatch.setenv("REGISTRY_DATABASE_URL", postgres_schema_url)

    with ModelRegistry(tmp_path / "home", actor="alice") as registry:
        registry.register_model(NAME, {"threshold": 0.7}, version="v1")

    assert registry.database_url == postgres_schema_url
    assert not (tmp_path / "home" / "events.sqlite3").exists()
    monkeypatch.delenv("REGISTRY_DATABASE_URL")
    with ModelRegistry(tmp_path / "other-home", database_url=postgres_schema_url, actor="bob") as reader:
        assert [summary.name for summary in reader.list_models()] == [NAME]


def test_database_url_argument_beats_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, postgres_schema_url: str
) -> None:
    # This URL names no database, so opening it would raise InvalidInput.
    monkeypatch.setenv("REGISTRY_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/?schema=missing")

    with ModelRegistry(tmp_path / "home", database_url=postgres_schema_url, actor="alice") as registry:
        registry.register_model(NAME, {"threshold": 0.7}, version="v1")

    assert registry.database_url == postgres_schema_url


MALFORMED_URLS = {
    "other-scheme": f"mysql://admin:{PASSWORD}@127.0.0.1:3306/registry",
    "no-database": f"postgresql://admin:{PASSWORD}@127.0.0.1:5432",
    "port-not-number": f"postgresql://admin:{PASSWORD}@127.0.0.1:port/registry",
    "port-out-of-range": f"postgresql://admin:{PASSWORD}@127.0.0.1:99999/registry",
    "broken-ipv6-host": f"postgresql://admin:{PASSWORD}@[::1/registry",
    "password-in-query": f"postgresql://admin@127.0.0.1:5432?password={PASSWORD}",
}


@pytest.mark.parametrize("url", MALFORMED_URLS.values(), ids=MALFORMED_URLS.keys())
def test_malformed_database_url_rejected(tmp_path: Path, url: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        ModelRegistry(tmp_path / "home", database_url=url)

    message = str(caught.value)
    assert "database_url" in message
    assert "postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE" in message
    assert PASSWORD not in message
    assert PASSWORD not in str(caught.value.value)
    assert PASSWORD not in "".join(traceback.format_exception(caught.value))


def test_malformed_url_variable_rejected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REGISTRY_DATABASE_URL", f"postgresql://admin:{PASSWORD}@127.0.0.1:port/registry")

    with pytest.raises(InvalidInput) as caught:
        ModelRegistry(tmp_path / "home")

    assert PASSWORD not in str(caught.value)


def test_malformed_url_opens_nothing(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput):
        ModelRegistry(tmp_path / "home", database_url=MALFORMED_URLS["no-database"])

    assert not (tmp_path / "home" / "events.sqlite3").exists()


# --- environments -----------------------------------------------------------------------


def test_environments_open_separate_stores(tmp_path: Path) -> None:
    with ModelRegistry(tmp_path, environment="dev", actor="alice") as dev:
        dev.register_model(NAME, {"threshold": 0.7}, version="v1")

    with ModelRegistry(tmp_path, environment="staging", actor="alice") as staging:
        assert staging.list_models() == []
        with pytest.raises(ModelNotFound):
            staging.get_model(NAME, version="v1")
    with ModelRegistry(tmp_path, actor="alice") as unnamed:
        assert unnamed.list_models() == []
    with ModelRegistry(tmp_path, environment="dev", actor="alice") as dev_again:
        assert [summary.name for summary in dev_again.list_models()] == [NAME]


def test_environment_stores_under_home(tmp_path: Path) -> None:
    with ModelRegistry(tmp_path, environment="staging", actor="alice") as staging:
        staging.register_model(NAME, {"threshold": 0.7}, version="v1")

    assert staging.home == tmp_path / "environments" / "staging"
    assert (tmp_path / "environments" / "staging" / "events.sqlite3").is_file()
    assert not (tmp_path / "environments" / "dev").exists()


def test_same_version_in_two_environments(tmp_path: Path) -> None:
    with ModelRegistry(tmp_path, environment="dev", actor="alice") as dev:
        dev.register_model(NAME, {"threshold": 0.7}, version="v1")
    with ModelRegistry(tmp_path, environment="staging", actor="alice") as staging:
        registered = staging.register_model(NAME, {"threshold": 0.9}, version="v1")

    assert registered.version == "v1.0.0"


@pytest.mark.parametrize("environment", ["prod", "Production", ""])
def test_unknown_environment_rejected(tmp_path: Path, environment: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        ModelRegistry(tmp_path, environment=environment)

    assert "dev, staging, production" in str(caught.value)


# --- actors ---------------------------------------------------------------------------------

ACTOR_CASES = {
    # name: (actor= of the command, ModelRegistry(actor=), REGISTRY_USER, expected actor)
    "command-argument": ("carol", "bob", "env-user", "carol"),
    "registry-argument": (None, "bob", "env-user", "bob"),
    "registry-user-variable": (None, None, "env-user", "env-user"),
    "os-user": (None, None, None, getpass.getuser()),
}


@pytest.mark.parametrize(("command_actor", "registry_actor", "variable", "expected"), ACTOR_CASES.values(),
                         ids=ACTOR_CASES.keys())  # fmt: skip
def test_actor_resolution_order(
    make_registry: Any,
    monkeypatch: pytest.MonkeyPatch,
    command_actor: str | None,
    registry_actor: str | None,
    variable: str | None,
    expected: str,
) -> None:
    if variable is not None:
        monkeypatch.setenv("REGISTRY_USER", variable)
    registry = make_registry(actor=registry_actor)

    registered = registry.register_model(NAME, {"threshold": 0.7}, version="v1", actor=command_actor)

    assert registered.registered_by == expected
    assert [event.actor for event in registry.events(NAME)] == [expected, expected]


def test_variable_read_at_each_command(make_registry: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    registry = make_registry(actor=None)
    monkeypatch.setenv("REGISTRY_USER", "first-user")
    registry.register_model(NAME, {"threshold": 0.7}, version="v1")
    monkeypatch.setenv("REGISTRY_USER", "second-user")

    registry.promote_model(NAME, "v1", "dev", "staging")

    assert [entry.actor for entry in registry.history(NAME)] == ["first-user", "first-user", "second-user"]


def test_approver_recorded_as_actor(make_registry: Any) -> None:
    registry = make_registry(actor="alice")
    registry.set_approval_required(stage="production", approvers=["bob"], min_approvals=1)
    registry.register_model(NAME, {"threshold": 0.7}, version="v1")

    registry.approve_model(NAME, "v1", "bob", "checked the metrics")

    assert registry.events(NAME)[-1].actor == "bob"


# --- increments -------------------------------------------------------------------------------


def run_commands(registry: ModelRegistry, clock: Any) -> None:
    """Register, approve, promote, roll back, deprecate and set a signature."""
    registry.set_approval_required(stage="production", approvers=["bob"], min_approvals=1)
    for version in ("v1", "v2"):
        registry.register_model(NAME, {"release": version}, version=version, metadata={"features": ["amount"]})
        registry.promote_model(NAME, version, "dev", "staging")
        registry.approve_model(NAME, version, "bob", "fine")
        registry.promote_model(NAME, version, "staging", "production")
        clock.advance(hours=1)
    registry.rollback(NAME, "v1", "v2 raised false positives")
    registry.deprecate_model(NAME, "v2", "false positives", end_of_life="2024-12-31")
    registry.set_model_signature(model=f"{NAME}-v1.0.0", inputs={"amount": "float"}, outputs={"fraud": "int"})


def test_increment_recorded_on_every_event(make_registry: Any, clock: Any) -> None:
    registry = make_registry(increment="0042")

    run_commands(registry, clock)

    events = registry.events(NAME)
    assert len(events) == 13
    assert {type(event).__name__: event.increment for event in events} == {
        "ModelCreated": "0042",
        "Registered": "0042",
        "Promoted": "0042",
        "Approved": "0042",
        "RolledBack": "0042",
        "Deprecated": "0042",
        "SignatureSet": "0042",
    }
    assert [event.increment for event in events] == ["0042"] * len(events)
    assert [entry.increment for entry in registry.history(NAME)] == ["0042"] * len(events)


def test_increment_belongs_to_each_registry(make_registry: Any) -> None:
    make_registry(increment="0042").register_model(NAME, {"threshold": 0.7}, version="v1")
    make_registry(increment="0043").register_model(NAME, {"threshold": 0.8}, version="v2")

    make_registry().register_model(NAME, {"threshold": 0.9}, version="v3")

    reader = make_registry()
    assert [event.increment for event in reader.events(NAME)] == ["0042", "0042", "0043", None]
    assert reader.get_model(NAME, version="v2").metadata["increment"] == "0043"


@pytest.mark.parametrize("increment", ["", "   ", 42])
def test_invalid_increment_rejected(tmp_path: Path, increment: Any) -> None:
    with pytest.raises(InvalidInput) as caught:
        ModelRegistry(tmp_path, increment=increment)

    assert "increment" in str(caught.value)
