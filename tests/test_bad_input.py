"""Bad arguments to every public command: a typed error that names the value and what is expected.

A rejected command must also leave the registry as it was: no new event, and no new
visible file (hidden temporary files, whose names start with a dot, may remain).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from registry import (
    InvalidDate,
    InvalidInput,
    InvalidMetadata,
    InvalidModelName,
    InvalidSignature,
    InvalidStage,
    InvalidVersion,
    UnsupportedModel,
)

NAME = "fraud-detection"
NAME_RULE_TEXT = "1 to 128 characters of lowercase letters, digits"
FEATURES = ["amount", "merchant_risk"]


@dataclass
class Setting:
    """What a case's call needs: the registry under test, the trained models and the test clock."""

    registry: Any
    models: Any
    clock: Any


def visible_paths(root: Path) -> set[Path]:
    """Return the paths under ``root`` whose parts do not start with a dot."""
    paths = set()
    for path in root.rglob("*"):
        relative = path.relative_to(root)
        if not any(part.startswith(".") for part in relative.parts):
            paths.add(relative)
    return paths


def stored_event_count(registry: Any) -> int:
    """Return the number of events in the whole store.

    The registry settings (approval policies, transitions) have no public
    history, so the store's notification log is the one place that counts them.
    """
    return registry._store.recorder.max_notification_id() or 0


def assert_rejected_cleanly(setting: Setting, call: Any, error: type, named: str, expected: str) -> None:
    registry = setting.registry
    # The parent of the home also catches a name that escapes the registry's folders.
    root = registry.home.parent
    history_before = len(registry.history(NAME))
    events_before = stored_event_count(registry)
    paths_before = visible_paths(root)

    with pytest.raises(error) as raised:
        call(setting)

    message = str(raised.value)
    assert named in message
    assert expected in message
    assert len(registry.history(NAME)) == history_before
    assert stored_event_count(registry) == events_before
    assert visible_paths(root) == paths_before


# --- model names ----------------------------------------------------------------

BAD_NAMES = [
    pytest.param("../x", id="parent-path"),
    pytest.param("../../x", id="grandparent-path"),
    pytest.param("/", id="slash"),
    pytest.param("a/b", id="nested-path"),
    pytest.param("%", id="percent"),
    pytest.param("o'brien", id="single-quote"),
    pytest.param('say"hi', id="double-quote"),
    pytest.param("fraud model", id="space"),
    pytest.param("Fraud", id="upper-case"),
    pytest.param("", id="empty"),
    pytest.param("a" * 129, id="129-characters"),
    pytest.param(".hidden", id="leading-dot"),
    pytest.param("-x", id="leading-dash"),
    pytest.param(42, id="integer"),
    pytest.param(None, id="none"),
]

NAME_COMMANDS = [
    pytest.param(lambda s, n: s.registry.register_model(n, s.models.logistic, version="v1"), id="register_model"),
    pytest.param(lambda s, n: s.registry.version_model(n, "minor"), id="version_model"),
    pytest.param(lambda s, n: s.registry.promote_model(n, "v1", "dev", "staging"), id="promote_model"),
    pytest.param(lambda s, n: s.registry.approve_model(n, "v1", "bob", "ok"), id="approve_model"),
    pytest.param(lambda s, n: s.registry.reject_model(n, "v1", "bob", "drift"), id="reject_model"),
    pytest.param(lambda s, n: s.registry.rollback(n, "v1", "errors"), id="rollback"),
    pytest.param(lambda s, n: s.registry.deprecate_model(n, "v1", "old"), id="deprecate_model"),
    pytest.param(
        lambda s, n: s.registry.set_model_signature(name=n, version="v1", inputs={"amount": "float"}),
        id="set_model_signature",
    ),
    pytest.param(lambda s, n: s.registry.get_model(n), id="get_model"),
    pytest.param(lambda s, n: s.registry.get_model_by_date(n, "2024-01-10"), id="get_model_by_date"),
    pytest.param(lambda s, n: s.registry.list_versions(n), id="list_versions"),
    pytest.param(lambda s, n: s.registry.history(n), id="history"),
    pytest.param(lambda s, n: s.registry.events(n), id="events"),
]


@pytest.fixture
def one_version(registry: Any, models: Any, clock: Any) -> Setting:
    """A registry with v1.0.0 of NAME in dev."""
    registry.register_model(NAME, models.logistic, version="v1", metadata={"features": FEATURES})
    clock.advance(hours=1)
    return Setting(registry, models, clock)


# set_model_signature takes name=None as "name not given"; the signature cases below cover that.
NAME_CASES = [
    pytest.param(command.values[0], bad_name.values[0], id=f"{command.id}-{bad_name.id}")
    for command in NAME_COMMANDS
    for bad_name in BAD_NAMES
    if not (command.id == "set_model_signature" and bad_name.values[0] is None)
]


@pytest.mark.parametrize(("command", "bad_name"), NAME_CASES)
def test_bad_name_is_rejected(one_version: Setting, command: Any, bad_name: Any) -> None:
    assert_rejected_cleanly(
        one_version, lambda s: command(s, bad_name), InvalidModelName, repr(bad_name), NAME_RULE_TEXT
    )


# --- every other argument -------------------------------------------------------


@pytest.fixture
def deployed(registry: Any, models: Any, clock: Any) -> Setting:
    """v1 was in production until v2 replaced it, v3 is in dev, and production needs bob's or carol's approval."""
    for version in ("v1", "v2"):
        registry.register_model(NAME, models.logistic, version=version, metadata={"features": FEATURES})
        registry.promote_model(NAME, version, "dev", "staging")
        registry.promote_model(NAME, version, "staging", "production")
    registry.register_model(NAME, models.logistic, version="v3", metadata={"features": FEATURES})
    registry.set_approval_required(stage="production", approvers=["bob", "carol"], min_approvals=1)
    clock.advance(hours=1)
    return Setting(registry, models, clock)


def tomorrow(setting: Setting) -> dt.datetime:
    return setting.clock.now + dt.timedelta(days=1)


TOMORROW_TEXT = "2024-01-11T10:00:00+00:00"
FUTURE = "cannot take effect in the future"
DATE_FORMS = "expected a datetime, a date, or ISO 8601 text"
VERSION_FORMS = "expected"
STAGES = "expected one of dev, staging, production, archived"
USER_NAME = "expected a non-empty user name"
EXPLANATION = "expected a non-empty explanation"


def register(setting: Setting, **options: Any) -> Any:
    options.setdefault("version", "v9")
    return setting.registry.register_model(NAME, options.pop("model", setting.models.logistic), **options)


def promote(setting: Setting, **options: Any) -> Any:
    arguments = {"version": "v3", "from_stage": "dev", "to_stage": "staging"}
    arguments.update(options)
    return setting.registry.promote_model(NAME, **arguments)


def approve(setting: Setting, **options: Any) -> Any:
    arguments = {"version": "v3", "approver": "bob", "comments": "metrics hold up"}
    arguments.update(options)
    return setting.registry.approve_model(NAME, **arguments)


def reject(setting: Setting, **options: Any) -> Any:
    arguments = {"version": "v3", "approver": "bob", "reason": "recall dropped"}
    arguments.update(options)
    return setting.registry.reject_model(NAME, **arguments)


def roll_back(setting: Setting, **options: Any) -> Any:
    arguments = {"to_version": "v1", "reason": "v2 error rate doubled"}
    arguments.update(options)
    return setting.registry.rollback(NAME, **arguments)


def deprecate(setting: Setting, **options: Any) -> Any:
    arguments = {"version": "v3", "reason": "superseded", "end_of_life": "2024-06-01"}
    arguments.update(options)
    return setting.registry.deprecate_model(NAME, **arguments)


def set_signature(setting: Setting, **options: Any) -> Any:
    arguments: dict[str, Any] = {"name": NAME, "version": "v3", "inputs": {"amount": "float"}}
    arguments.update(options)
    return setting.registry.set_model_signature(**arguments)


def set_policy(setting: Setting, **options: Any) -> Any:
    arguments: dict[str, Any] = {"stage": "staging", "approvers": ["bob", "carol"], "min_approvals": 1}
    arguments.update(options)
    return setting.registry.set_approval_required(**arguments)


def case(case_id: str, call: Any, error: type, named: str, expected: str) -> Any:
    return pytest.param(call, error, named, expected, id=case_id)


def wrong_columns(setting: Setting) -> pd.DataFrame:
    return pd.DataFrame({"amount": [1.0, 2.0], "merchant_risk": [0.1, 0.2]})


CASES = [
    # register_model
    case("register-version-x.y", lambda s: register(s, version="x.y"), InvalidVersion, "'x.y'", "semantic version"),
    case("register-version-empty", lambda s: register(s, version=""), InvalidVersion, "''", VERSION_FORMS),
    case("register-version-4-parts", lambda s: register(s, version="1.2.3.4"), InvalidVersion, "'1.2.3.4'", VERSION_FORMS),
    case("register-version-bool", lambda s: register(s, version=True), InvalidVersion, "True", VERSION_FORMS),
    case(
        "register-version-and-auto", lambda s: register(s, version="v9", auto_version=True),
        InvalidInput, "'v9'", "or auto_version=True, not both",
    ),
    case(
        "register-accuracy-1.5", lambda s: register(s, metadata={"accuracy": 1.5}),
        InvalidMetadata, "1.5", "expected a fraction between 0 and 1",
    ),
    case(
        "register-accuracy-text", lambda s: register(s, metadata={"accuracy": "high"}),
        InvalidMetadata, "'high'", "expected a number",
    ),
    case(
        "register-accuracy-nan", lambda s: register(s, metadata={"accuracy": float("nan")}),
        InvalidMetadata, "nan", "expected a number",
    ),
    case(
        "register-metadata-list", lambda s: register(s, metadata=["accuracy", 0.9]),
        InvalidMetadata, "['accuracy', 0.9]", "expected a dict",
    ),
    case(
        "register-metadata-text", lambda s: register(s, metadata="accuracy=0.9"),
        InvalidMetadata, "'accuracy=0.9'", "expected a dict",
    ),
    case(
        "register-metadata-key-int", lambda s: register(s, metadata={1: "x"}),
        InvalidMetadata, "1", "keys must be strings",
    ),
    case(
        "register-features-duplicate", lambda s: register(s, metadata={"features": ["amount", "amount"]}),
        InvalidMetadata, "amount", "each feature must be listed once",
    ),
    case(
        "register-features-text", lambda s: register(s, metadata={"features": "amount"}),
        InvalidMetadata, "'amount'", "expected a list of feature names",
    ),
    case(
        "register-num-features-mismatch", lambda s: register(s, metadata={"features": FEATURES, "num_features": 3}),
        InvalidMetadata, "3", "make the two agree",
    ),
    case(
        "register-feature-type-tensor", lambda s: register(s, metadata={"features": {"amount": "tensor"}}),
        InvalidSignature, "'tensor'", "expected one of float, int",
    ),
    case(
        "register-latency-negative", lambda s: register(s, metadata={"inference_latency_p95": -5}),
        InvalidMetadata, "-5", "expected a number of zero or more",
    ),
    case(
        "register-owner-number", lambda s: register(s, metadata={"owner": 7}),
        InvalidMetadata, "7", "expected a string",
    ),
    case(
        "register-metadata-version-mismatch", lambda s: register(s, metadata={"version": "v8"}),
        InvalidMetadata, "'v8'", "make the two agree",
    ),
    case(
        "register-metadata-name-mismatch", lambda s: register(s, metadata={"name": "other-model"}),
        InvalidMetadata, "'other-model'", "make the two agree",
    ),
    case(
        "register-metadata-stage-mismatch", lambda s: register(s, metadata={"stage": "staging"}),
        InvalidMetadata, "'staging'", "make the two agree",
    ),
    case("register-stage-prod", lambda s: register(s, stage="prod"), InvalidStage, "'prod'", STAGES),
    case("register-stage-none", lambda s: register(s, stage=None), InvalidStage, "None", STAGES),
    case(
        "register-stage-production", lambda s: register(s, stage="production"),
        InvalidStage, "'production'", "register in dev or staging",
    ),
    case(
        "register-tags-text", lambda s: register(s, tags="fraud"),
        InvalidMetadata, "'fraud'", "expected a list of strings",
    ),
    case(
        "register-tag-empty", lambda s: register(s, tags=["fraud", ""]),
        InvalidMetadata, "''", "expected a non-empty string",
    ),
    case(
        "register-tag-number", lambda s: register(s, tags=["fraud", 3]),
        InvalidMetadata, "3", "expected a non-empty string",
    ),
    case(
        "register-example-text", lambda s: register(s, input_example="amount=1"),
        InvalidSignature, "type str", "pass a pandas DataFrame",
    ),
    case(
        "register-example-wrong-columns", lambda s: register(s, input_example=wrong_columns(s)),
        InvalidSignature, "amount", "pass an example with the columns the model was trained on",
    ),
    case(
        "register-model-generator", lambda s: register(s, model=(i for i in range(3))),
        UnsupportedModel, "generator", "a picklable object",
    ),
    case(
        "register-effective-future", lambda s: register(s, effective_at=tomorrow(s)),
        InvalidDate, TOMORROW_TEXT, FUTURE,
    ),
    case(
        "register-effective-text", lambda s: register(s, effective_at="yesterday"),
        InvalidDate, "'yesterday'", DATE_FORMS,
    ),
    case(
        "register-effective-before-last-event", lambda s: register(s, effective_at="2024-01-01T00:00:00+00:00"),
        InvalidDate, "2024-01-01T00:00:00+00:00", "appended in time order",
    ),
    case("register-actor-empty", lambda s: register(s, actor=""), InvalidInput, "''", USER_NAME),
    case("register-actor-blank", lambda s: register(s, actor="   "), InvalidInput, "'   '", USER_NAME),
    # version_model
    case(
        "version-model-type", lambda s: s.registry.version_model(NAME, "huge"),
        InvalidInput, "'huge'", "expected one of major, minor, patch",
    ),
    case(
        "version-model-no-candidate", lambda s: s.registry.version_model(NAME),
        InvalidInput, f"version_model({NAME!r})", "pass model=, metadata= or input_example=",
    ),
    case(
        "version-model-accuracy", lambda s: s.registry.version_model(NAME, metadata={"accuracy": 1.5}),
        InvalidMetadata, "1.5", "expected a fraction between 0 and 1",
    ),
    case(
        "version-model-example-text",
        lambda s: s.registry.version_model(NAME, model=s.models.logistic, input_example="amount=1"),
        InvalidSignature, "type str", "pass a pandas DataFrame",
    ),
    # promote_model
    case("promote-version-x.y", lambda s: promote(s, version="x.y"), InvalidVersion, "'x.y'", VERSION_FORMS),
    case("promote-version-none", lambda s: promote(s, version=None), InvalidVersion, "None", VERSION_FORMS),
    case("promote-version-empty", lambda s: promote(s, version=""), InvalidVersion, "''", VERSION_FORMS),
    case("promote-from-prod", lambda s: promote(s, from_stage="prod"), InvalidStage, "'prod'", STAGES),
    case("promote-to-prod", lambda s: promote(s, to_stage="prod"), InvalidStage, "'prod'", STAGES),
    case("promote-to-none", lambda s: promote(s, to_stage=None), InvalidStage, "None", STAGES),
    case(
        "promote-approval-required-text", lambda s: promote(s, approval_required="yes"),
        InvalidInput, "'yes'", "expected True, False or None",
    ),
    case(
        "promote-reason-number", lambda s: promote(s, reason=5),
        InvalidInput, "5", "expected",
    ),
    case("promote-effective-future", lambda s: promote(s, effective_at=tomorrow(s)), InvalidDate, TOMORROW_TEXT, FUTURE),
    case(
        "promote-effective-text", lambda s: promote(s, effective_at="yesterday"),
        InvalidDate, "'yesterday'", DATE_FORMS,
    ),
    case("promote-actor-empty", lambda s: promote(s, actor=""), InvalidInput, "''", USER_NAME),
    # set_approval_required
    case("policy-stage-prod", lambda s: set_policy(s, stage="prod"), InvalidStage, "'prod'", STAGES),
    case(
        "policy-approvers-empty", lambda s: set_policy(s, approvers=[]),
        InvalidInput, "[]", "expected a non-empty list of user names",
    ),
    case(
        "policy-approvers-text", lambda s: set_policy(s, approvers="bob"),
        InvalidInput, "'bob'", "expected a non-empty list of user names",
    ),
    case(
        "policy-approvers-repeated", lambda s: set_policy(s, approvers=["bob", "bob"]),
        InvalidInput, "['bob', 'bob']", "list each approver once",
    ),
    case("policy-approver-empty", lambda s: set_policy(s, approvers=["bob", ""]), InvalidInput, "''", USER_NAME),
    case("policy-approver-none", lambda s: set_policy(s, approvers=["bob", None]), InvalidInput, "None", USER_NAME),
    case(
        "policy-min-approvals-zero", lambda s: set_policy(s, min_approvals=0),
        InvalidInput, "0", "expected a whole number from 1 to 2",
    ),
    case(
        "policy-min-approvals-above-approvers", lambda s: set_policy(s, min_approvals=3),
        InvalidInput, "3", "expected a whole number from 1 to 2",
    ),
    case(
        "policy-min-approvals-text", lambda s: set_policy(s, min_approvals="2"),
        InvalidInput, "'2'", "expected a whole number from 1 to 2",
    ),
    case(
        "policy-min-approvals-bool", lambda s: set_policy(s, min_approvals=True),
        InvalidInput, "True", "expected a whole number from 1 to 2",
    ),
    case("policy-actor-empty", lambda s: set_policy(s, actor=""), InvalidInput, "''", USER_NAME),
    # set_allowed_transitions
    case(
        "transitions-target-prod", lambda s: s.registry.set_allowed_transitions([("dev", "prod")]),
        InvalidStage, "'prod'", STAGES,
    ),
    case(
        "transitions-source-prod", lambda s: s.registry.set_allowed_transitions([("prod", "staging")]),
        InvalidStage, "'prod'", STAGES,
    ),
    case(
        "transitions-target-wildcard", lambda s: s.registry.set_allowed_transitions([("*", "*")]),
        InvalidStage, "'*'", STAGES,
    ),
    case(
        "transitions-single-stage", lambda s: s.registry.set_allowed_transitions([("dev",)]),
        InvalidInput, "('dev',)", "expected a pair such as ('dev', 'staging')",
    ),
    case(
        "transitions-empty", lambda s: s.registry.set_allowed_transitions([]),
        InvalidInput, "[]", "expected",
    ),
    case(
        "transitions-text", lambda s: s.registry.set_allowed_transitions("dev->staging"),
        InvalidInput, "'dev->staging'", "expected a list of pairs",
    ),
    case(
        "transitions-actor-empty", lambda s: s.registry.set_allowed_transitions([("dev", "staging")], actor=""),
        InvalidInput, "''", USER_NAME,
    ),
    # approve_model
    case("approve-version-x.y", lambda s: approve(s, version="x.y"), InvalidVersion, "'x.y'", VERSION_FORMS),
    case("approve-version-none", lambda s: approve(s, version=None), InvalidVersion, "None", VERSION_FORMS),
    case("approve-approver-empty", lambda s: approve(s, approver=""), InvalidInput, "''", USER_NAME),
    case("approve-approver-blank", lambda s: approve(s, approver="  "), InvalidInput, "'  '", USER_NAME),
    case("approve-approver-none", lambda s: approve(s, approver=None), InvalidInput, "None", USER_NAME),
    case("approve-comments-number", lambda s: approve(s, comments=5), InvalidInput, "5", "expected text"),
    case("approve-stage-prod", lambda s: approve(s, stage="prod"), InvalidStage, "'prod'", STAGES),
    case("approve-effective-future", lambda s: approve(s, effective_at=tomorrow(s)), InvalidDate, TOMORROW_TEXT, FUTURE),
    case(
        "approve-effective-text", lambda s: approve(s, effective_at="yesterday"),
        InvalidDate, "'yesterday'", DATE_FORMS,
    ),
    # reject_model
    case("reject-reason-empty", lambda s: reject(s, reason=""), InvalidInput, "''", EXPLANATION),
    case("reject-reason-blank", lambda s: reject(s, reason="   "), InvalidInput, "'   '", EXPLANATION),
    case("reject-reason-none", lambda s: reject(s, reason=None), InvalidInput, "None", EXPLANATION),
    case("reject-version-x.y", lambda s: reject(s, version="x.y"), InvalidVersion, "'x.y'", VERSION_FORMS),
    case("reject-approver-empty", lambda s: reject(s, approver=""), InvalidInput, "''", USER_NAME),
    case("reject-stage-prod", lambda s: reject(s, stage="prod"), InvalidStage, "'prod'", STAGES),
    # rollback
    case("rollback-version-x.y", lambda s: roll_back(s, to_version="x.y"), InvalidVersion, "'x.y'", VERSION_FORMS),
    case("rollback-version-none", lambda s: roll_back(s, to_version=None), InvalidVersion, "None", VERSION_FORMS),
    case("rollback-version-empty", lambda s: roll_back(s, to_version=""), InvalidVersion, "''", VERSION_FORMS),
    case("rollback-reason-empty", lambda s: roll_back(s, reason=""), InvalidInput, "''", EXPLANATION),
    case("rollback-reason-blank", lambda s: roll_back(s, reason="  "), InvalidInput, "'  '", EXPLANATION),
    case("rollback-reason-none", lambda s: roll_back(s, reason=None), InvalidInput, "None", EXPLANATION),
    case(
        "rollback-automatic-text", lambda s: roll_back(s, automatic="maybe"),
        InvalidInput, "'maybe'", "expected True or False",
    ),
    case(
        "rollback-evidence-text", lambda s: roll_back(s, evidence="error rate 9%"),
        InvalidInput, "'error rate 9%'", "expected a dict",
    ),
    case(
        "rollback-effective-future", lambda s: roll_back(s, effective_at=tomorrow(s)),
        InvalidDate, TOMORROW_TEXT, FUTURE,
    ),
    case(
        "rollback-effective-text", lambda s: roll_back(s, effective_at="yesterday"),
        InvalidDate, "'yesterday'", DATE_FORMS,
    ),
    case("rollback-actor-empty", lambda s: roll_back(s, actor=""), InvalidInput, "''", USER_NAME),
    # deprecate_model
    case("deprecate-version-x.y", lambda s: deprecate(s, version="x.y"), InvalidVersion, "'x.y'", VERSION_FORMS),
    case("deprecate-version-none", lambda s: deprecate(s, version=None), InvalidVersion, "None", VERSION_FORMS),
    case("deprecate-reason-empty", lambda s: deprecate(s, reason=""), InvalidInput, "''", EXPLANATION),
    case("deprecate-reason-none", lambda s: deprecate(s, reason=None), InvalidInput, "None", EXPLANATION),
    case(
        "deprecate-end-of-life-tomorrow", lambda s: deprecate(s, end_of_life="tomorrow"),
        InvalidDate, "'tomorrow'", DATE_FORMS,
    ),
    case(
        "deprecate-end-of-life-february-30", lambda s: deprecate(s, end_of_life="2024-02-30"),
        InvalidDate, "'2024-02-30'", DATE_FORMS,
    ),
    case(
        "deprecate-end-of-life-number", lambda s: deprecate(s, end_of_life=20240601),
        InvalidDate, "20240601", DATE_FORMS,
    ),
    case(
        "deprecate-effective-future", lambda s: deprecate(s, effective_at=tomorrow(s)),
        InvalidDate, TOMORROW_TEXT, FUTURE,
    ),
    case(
        "deprecate-effective-text", lambda s: deprecate(s, effective_at="yesterday"),
        InvalidDate, "'yesterday'", DATE_FORMS,
    ),
    case("deprecate-actor-empty", lambda s: deprecate(s, actor=""), InvalidInput, "''", USER_NAME),
    # set_model_signature
    case(
        "signature-input-type-tensor", lambda s: set_signature(s, inputs={"amount": "tensor"}),
        InvalidSignature, "'tensor'", "expected one of float, int",
    ),
    case(
        "signature-output-type-tensor", lambda s: set_signature(s, outputs={"score": "tensor"}),
        InvalidSignature, "'tensor'", "expected one of float, int",
    ),
    case(
        "signature-inputs-text", lambda s: set_signature(s, inputs="amount"),
        InvalidSignature, "'amount'", "expected a mapping of column name to type",
    ),
    case(
        "signature-column-empty", lambda s: set_signature(s, inputs={"": "float"}),
        InvalidSignature, "''", "expected a non-empty string",
    ),
    case("signature-version-x.y", lambda s: set_signature(s, version="x.y"), InvalidVersion, "'x.y'", VERSION_FORMS),
    case(
        "signature-version-missing", lambda s: set_signature(s, version=None),
        InvalidInput, "version=", "model='NAME-vVERSION'",
    ),
    case(
        "signature-name-missing", lambda s: set_signature(s, name=None),
        InvalidInput, "name=", "model='NAME-vVERSION'",
    ),
    case(
        "signature-reference-without-version",
        lambda s: s.registry.set_model_signature(model=NAME, inputs={"amount": "float"}),
        InvalidInput, f"'{NAME}'", "expected NAME-vVERSION",
    ),
    case(
        "signature-reference-bad-name",
        lambda s: s.registry.set_model_signature(model="../x-v1", inputs={"amount": "float"}),
        InvalidModelName, "'../x'", NAME_RULE_TEXT,
    ),
    case(
        "signature-reference-number",
        lambda s: s.registry.set_model_signature(model=42, inputs={"amount": "float"}),
        InvalidInput, "42", "must be a string such as 'fraud-detection-v3.1.0'",
    ),
    case("signature-actor-empty", lambda s: set_signature(s, actor=""), InvalidInput, "''", USER_NAME),
    # get_model
    case("get-stage-prod", lambda s: s.registry.get_model(NAME, stage="prod"), InvalidStage, "'prod'", STAGES),
    case(
        "get-version-x.y", lambda s: s.registry.get_model(NAME, version="x.y"),
        InvalidVersion, "'x.y'", VERSION_FORMS,
    ),
    case(
        "get-stage-and-version", lambda s: s.registry.get_model(NAME, stage="production", version="v2"),
        InvalidInput, "stage='production'", "not both",
    ),
    # get_model_by_date
    case(
        "by-date-yesterday", lambda s: s.registry.get_model_by_date(NAME, "yesterday"),
        InvalidDate, "'yesterday'", DATE_FORMS,
    ),
    case(
        "by-date-month-13", lambda s: s.registry.get_model_by_date(NAME, "2024-13-01"),
        InvalidDate, "'2024-13-01'", DATE_FORMS,
    ),
    case("by-date-none", lambda s: s.registry.get_model_by_date(NAME, None), InvalidDate, "None", DATE_FORMS),
    case(
        "by-date-number", lambda s: s.registry.get_model_by_date(NAME, 20240101),
        InvalidDate, "20240101", DATE_FORMS,
    ),
    case(
        "by-date-stage-prod", lambda s: s.registry.get_model_by_date(NAME, "2024-01-10", stage="prod"),
        InvalidStage, "'prod'", STAGES,
    ),
    # list_versions
    case("list-stage-prod", lambda s: s.registry.list_versions(NAME, stage="prod"), InvalidStage, "'prod'", STAGES),
    case(
        "list-tags-text", lambda s: s.registry.list_versions(NAME, tags="fraud"),
        InvalidMetadata, "'fraud'", "expected a list of strings",
    ),
    case(
        "list-min-metric-text", lambda s: s.registry.list_versions(NAME, min_metrics={"accuracy": "high"}),
        InvalidInput, "'high'", "expected a number",
    ),
    case(
        "list-min-metrics-list", lambda s: s.registry.list_versions(NAME, min_metrics=[0.9]),
        InvalidInput, "[0.9]", "expected a dict such as {'accuracy': 0.9}",
    ),
    case(
        "list-max-metric-none", lambda s: s.registry.list_versions(NAME, max_metrics={"accuracy": None}),
        InvalidInput, "None", "expected a number",
    ),
    case(
        "list-min-metric-nan", lambda s: s.registry.list_versions(NAME, min_metrics={"accuracy": float("nan")}),
        InvalidInput, "nan", "no metric compares with NaN",
    ),
    # rebuild_projections and catch_up_projections
    case(
        "rebuild-names-text", lambda s: s.registry.rebuild_projections("catalog"),
        InvalidInput, "'catalog'", "expected a list of names, such as ['catalog']",
    ),
    case(
        "rebuild-names-unknown", lambda s: s.registry.rebuild_projections(["catalogue"]),
        InvalidInput, "'catalogue'", "expected one of catalog, docs, history, lineage",
    ),
    case(
        "catch-up-names-text", lambda s: s.registry.catch_up_projections("history"),
        InvalidInput, "'history'", "expected a list of names, such as ['history']",
    ),
    case(
        "rebuild-target-folder", lambda s: s.registry.rebuild_projections(target=s.registry.home),
        InvalidInput, "it is a folder", "pass the path of a SQLite file to write",
    ),
    # enforce_end_of_life
    case("enforce-actor-empty", lambda s: s.registry.enforce_end_of_life(actor=""), InvalidInput, "''", USER_NAME),
    case("enforce-actor-blank", lambda s: s.registry.enforce_end_of_life(actor="  "), InvalidInput, "'  '", USER_NAME),
]


@pytest.mark.parametrize(("call", "error", "named", "expected"), CASES)
def test_bad_argument_is_rejected(deployed: Setting, call: Any, error: type, named: str, expected: str) -> None:
    assert_rejected_cleanly(deployed, call, error, named, expected)


# --- the constructor ------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "named", "expected"),
    [
        pytest.param({"increment": ""}, "''", "expected a work-item id such as '0042'", id="increment-empty"),
        pytest.param({"increment": "  "}, "'  '", "expected a work-item id such as '0042'", id="increment-blank"),
        pytest.param({"increment": 42}, "42", "expected a work-item id such as '0042'", id="increment-number"),
        pytest.param({"environment": "prod"}, "'prod'", "expected one of dev, staging, production", id="environment"),
        pytest.param({"actor": ""}, "''", USER_NAME, id="actor-empty"),
    ],
)
def test_bad_constructor_argument_is_rejected(
    make_registry: Any, one_version: Setting, options: dict[str, Any], named: str, expected: str
) -> None:
    assert_rejected_cleanly(one_version, lambda s: make_registry(**options), InvalidInput, named, expected)
