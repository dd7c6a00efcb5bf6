"""The public names: what ``registry`` exports, the error hierarchy, and the documented signatures."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

import registry
from registry import ModelRegistry, RegistryError, errors

Parameter = inspect.Parameter
POSITIONAL = (Parameter.POSITIONAL_ONLY, Parameter.POSITIONAL_OR_KEYWORD)
BY_KEYWORD = (Parameter.POSITIONAL_OR_KEYWORD, Parameter.KEYWORD_ONLY)


def error_classes() -> list[type[BaseException]]:
    """Return the public exception classes defined in ``registry.errors``."""
    return [
        value
        for name, value in vars(errors).items()
        if not name.startswith("_")
        and inspect.isclass(value)
        and issubclass(value, BaseException)
        and value.__module__ == errors.__name__
    ]


# --- exports ---------------------------------------------------------------------------


def test_all_is_sorted() -> None:
    assert registry.__all__ == sorted(registry.__all__)


def test_all_has_no_duplicates() -> None:
    assert len(registry.__all__) == len(set(registry.__all__))


def test_all_names_exist() -> None:
    missing = [name for name in registry.__all__ if not hasattr(registry, name)]

    assert missing == []


def test_all_exports_every_error() -> None:
    names = {cls.__name__ for cls in error_classes()}

    assert names - set(registry.__all__) == set()


def test_exported_errors_are_the_same_classes() -> None:
    for cls in error_classes():
        assert getattr(registry, cls.__name__) is cls, cls.__name__


def test_all_exports_entry_points() -> None:
    for name in ("ModelRegistry", "ModelVersion", "ModelSummary", "HistoryEntry", "ModelDeprecatedWarning"):
        assert name in registry.__all__, name


def test_errors_module_has_many_errors() -> None:
    # Guards the completeness check above against an empty discovery.
    assert len(error_classes()) >= 30


# --- the error hierarchy -------------------------------------------------------------


@pytest.mark.parametrize("cls", error_classes(), ids=lambda cls: cls.__name__)
def test_error_derives_from_registry_error(cls: type[BaseException]) -> None:
    assert issubclass(cls, RegistryError)


def test_registry_error_is_an_exception() -> None:
    assert issubclass(RegistryError, Exception)
    assert not issubclass(RegistryError, (KeyboardInterrupt, SystemExit))


def test_input_errors_are_value_errors() -> None:
    assert issubclass(errors.InvalidInput, ValueError)
    assert issubclass(errors.InvalidModelName, errors.InvalidInput)
    assert issubclass(errors.InvalidVersion, errors.InvalidInput)


def test_not_found_errors_are_lookup_errors() -> None:
    assert issubclass(errors.NotFound, LookupError)
    assert issubclass(errors.ModelNotFound, errors.NotFound)
    assert issubclass(errors.VersionNotFound, errors.NotFound)


def test_deprecation_warning_is_a_warning() -> None:
    assert issubclass(registry.ModelDeprecatedWarning, Warning)


# --- documented signatures ------------------------------------------------------------

# method: (parameters callers pass by position, parameters callers pass by keyword),
# as the capability list writes the calls.
DOCUMENTED_CALLS: dict[str, tuple[list[str], list[str]]] = {
    "register_model": (["name", "model"], ["version", "metadata", "stage", "tags", "auto_version"]),
    "version_model": (["name"], ["version_type"]),
    "promote_model": (["name", "version", "from_stage", "to_stage"], ["approval_required"]),
    "set_approval_required": ([], ["stage", "approvers", "min_approvals"]),
    "approve_model": (["name", "version", "approver", "comments"], []),
    "rollback": (["name", "to_version", "reason"], []),
    "deprecate_model": (["name", "version", "reason"], ["end_of_life"]),
    "get_model": (["name"], ["stage", "version"]),
    "get_model_by_date": (["name", "date"], ["stage"]),
    "list_models": ([], []),
    "list_versions": (["name"], ["stage", "tags"]),
    "history": (["name"], []),
    "set_model_signature": ([], ["model", "inputs", "outputs"]),
}

# Parameters that a caller may leave out.
OPTIONAL = {
    "register_model": ["version", "metadata", "stage", "tags", "auto_version"],
    "version_model": ["version_type"],
    "promote_model": ["approval_required"],
    "set_approval_required": ["stage", "min_approvals"],
    "approve_model": ["comments"],
    "deprecate_model": ["end_of_life"],
    "get_model": ["stage", "version"],
    "get_model_by_date": ["stage"],
    "list_versions": ["stage", "tags"],
}


def parameters_of(method: str) -> dict[str, Parameter]:
    parameters = dict(inspect.signature(getattr(ModelRegistry, method)).parameters)
    parameters.pop("self")
    return parameters


@pytest.mark.parametrize("method", DOCUMENTED_CALLS)
def test_documented_method_is_public(method: str) -> None:
    assert callable(getattr(ModelRegistry, method, None))
    assert not method.startswith("_")


@pytest.mark.parametrize("method", DOCUMENTED_CALLS)
def test_positional_parameters_in_order(method: str) -> None:
    positional, _ = DOCUMENTED_CALLS[method]

    leading = [name for name, parameter in parameters_of(method).items() if parameter.kind in POSITIONAL]

    assert leading[: len(positional)] == positional


@pytest.mark.parametrize("method", DOCUMENTED_CALLS)
def test_keyword_parameters_accepted(method: str) -> None:
    _, keywords = DOCUMENTED_CALLS[method]
    parameters = parameters_of(method)

    for keyword in keywords:
        assert keyword in parameters, f"{method} has no parameter {keyword!r}"
        assert parameters[keyword].kind in BY_KEYWORD, f"{method}({keyword}=...) is not accepted by keyword"


@pytest.mark.parametrize("method", OPTIONAL)
def test_optional_parameters_have_defaults(method: str) -> None:
    parameters = parameters_of(method)

    for name in OPTIONAL[method]:
        assert parameters[name].default is not Parameter.empty, f"{method}({name}) has no default"


@pytest.mark.parametrize(
    ("method", "parameter", "default"),
    [
        ("register_model", "stage", "dev"),
        ("set_approval_required", "stage", "production"),
        ("get_model_by_date", "stage", "production"),
        ("version_model", "version_type", None),
    ],
)
def test_documented_defaults(method: str, parameter: str, default: Any) -> None:
    assert parameters_of(method)[parameter].default == default


def test_constructor_keywords() -> None:
    parameters = dict(inspect.signature(ModelRegistry).parameters)

    for keyword in ("home", "increment", "environment", "database_url", "actor"):
        assert keyword in parameters, keyword
        assert parameters[keyword].kind in BY_KEYWORD, keyword
        assert parameters[keyword].default is None, keyword


def test_documented_calls_run(registry: ModelRegistry, clock: Any) -> None:
    """Run each call in the form the capability list writes it."""
    registry.set_approval_required(stage="production", approvers=["bob"], min_approvals=1)
    registry.register_model(
        "fraud-detection", {"threshold": 0.7}, version="v3", metadata={"accuracy": 0.9}, stage="dev", tags=["fraud"]
    )
    assert registry.version_model("fraud-detection", version_type="minor") == "v3.1.0"
    registry.promote_model("fraud-detection", "v3.0.0", "dev", "staging")
    registry.approve_model("fraud-detection", "v3.0.0", "bob", "metrics are fine")
    registry.promote_model("fraud-detection", "v3.0.0", "staging", "production", approval_required=True)
    registry.set_model_signature(model="fraud-detection-v3.0.0", inputs={"amount": "float"}, outputs={"fraud": "int"})
    clock.advance(days=1)
    registry.register_model(
        "fraud-detection", {"threshold": 0.8}, version="v3.1.0", metadata={"accuracy": 0.92, "features": ["amount"]}
    )
    registry.promote_model("fraud-detection", "v3.1.0", "dev", "staging")
    registry.approve_model("fraud-detection", "v3.1.0", "bob", "better recall")
    registry.promote_model("fraud-detection", "v3.1.0", "staging", "production")
    clock.advance(days=1)
    registry.rollback("fraud-detection", "v3.0.0", "recall dropped in production")
    registry.deprecate_model("fraud-detection", "v3.1.0", "recall regression", end_of_life="2024-06-01")

    assert registry.get_model("fraud-detection", stage="production").version == "v3.0.0"
    assert registry.get_model("fraud-detection", version="v3.0.0").signature.inputs == {"amount": "float"}
    assert registry.get_model_by_date("fraud-detection", "2024-01-11", stage="production").version == "v3.1.0"
    assert [summary.name for summary in registry.list_models()] == ["fraud-detection"]
    assert [view.version for view in registry.list_versions("fraud-detection", stage="archived")] == ["v3.1.0"]
    assert registry.history("fraud-detection")[-1].event == "Deprecated"


def test_model_version_attributes(registry: ModelRegistry) -> None:
    registered = registry.register_model("fraud-detection", {"threshold": 0.7}, version="v3.1", tags=["fraud"])

    assert registered.name == "fraud-detection"
    assert registered.version == "v3.1.0"
    assert registered.stage == "dev"
    assert isinstance(registered.metadata, dict)
    assert registered.tags == ["fraud"]
    assert registered.signature.inputs == {}
    assert registered.artifact.uri.startswith("file://")
    assert len(registered.artifact.sha256) == 64
    assert registered.artifact.size > 0
    assert registered.model == {"threshold": 0.7}
