"""The catalog read model behind list_models and list_versions: fields, filters, order and paging.

Every test reads through the public API, which catches the catalog up with the
event log before it returns, so a list reflects every command written before it.
"""

from __future__ import annotations

import base64
import warnings
from typing import Any

import pytest
import sqlite_utils
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from registry import InvalidInput, ModelDeprecatedWarning, ModelRegistry
from registry.versioning import normalize_version, precedence_key, sort_key

NAME = "fraud-detection"
OTHER = "churn-model"


def register(registry: ModelRegistry, version: str, name: str = NAME, **options: Any) -> Any:
    """Register a tiny picklable model, so each registration stays fast."""
    return registry.register_model(name, {"version": version}, version=version, **options)


def deploy(registry: ModelRegistry, version: str, name: str = NAME) -> None:
    registry.promote_model(name, version, "dev", "staging")
    registry.promote_model(name, version, "staging", "production")


def listed(registry: ModelRegistry, name: str = NAME, **filters: Any) -> list[str]:
    return [view.version for view in registry.list_versions(name, **filters)]


def get_quietly(registry: ModelRegistry, name: str, version: str) -> Any:
    """Return get_model(name, version=...) without the warning a deprecated version raises."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ModelDeprecatedWarning)
        return registry.get_model(name, version=version)


@pytest.fixture
def lifecycle(registry: ModelRegistry, clock: Any) -> None:
    """Two models whose versions cover every stage, approvals, a rollback and a deprecation."""
    registry.set_approval_required(stage="production", approvers=["bob", "carol"], min_approvals=1)

    register(
        registry,
        "v1",
        metadata={"accuracy": 0.90, "precision": 0.8, "owner": "risk-team", "notes": {"run": [1, 2.5]}},
        tags=["fraud", "eu"],
        input_example={"amount": [12.5], "merchant_risk": [0.1]},
    )
    registry.promote_model(NAME, "v1", "dev", "staging")
    registry.approve_model(NAME, "v1", "bob", "meets the bar")
    registry.promote_model(NAME, "v1", "staging", "production")

    clock.advance(days=1)
    register(
        registry,
        "1.1",
        metadata={"accuracy": 0.93},
        tags=["fraud"],
        input_example={"amount": [3.0], "merchant_risk": [0.4]},
    )
    registry.promote_model(NAME, "1.1", "dev", "staging")
    registry.reject_model(NAME, "1.1", "carol", "needs a fairness review")
    registry.approve_model(NAME, "1.1", "bob", "fine by me")
    registry.approve_model(NAME, "1.1", "carol", "review done")
    registry.promote_model(NAME, "1.1", "staging", "production")

    clock.advance(hours=4)
    registry.rollback(NAME, "v1", "p95 latency doubled")
    registry.deprecate_model(NAME, "1.1", "superseded", end_of_life="2030-01-01")

    register(registry, "2.0.0-rc.1", metadata={"accuracy": 0.95}, stage="staging", tags=["fraud", "eu"])
    register(registry, "v1", name=OTHER, metadata={"recall": 0.7})


# --- the same fields as get_model ---------------------------------------------------


def test_listed_versions_match_get_model(registry: ModelRegistry, lifecycle: None) -> None:
    for name in (NAME, OTHER):
        for view in registry.list_versions(name):
            expected = get_quietly(registry, name, view.version).to_dict()
            assert view.to_dict() == expected, f"{name} {view.version}"


def test_listed_view_keeps_changes_after_decoding(registry: ModelRegistry, lifecycle: None) -> None:
    # A listed view decodes the rest of its state on first use; what the caller changed before stays.
    view = registry.list_versions(NAME)[0]
    view.metadata["reviewed"] = True
    view.stage = "changed locally"

    signature = view.signature

    assert signature.inputs == {"amount": "float", "merchant_risk": "float"}
    assert view.metadata["reviewed"] is True
    assert view.stage == "changed locally"
    assert registry.list_versions(NAME)[0].stage == "production"


def test_catalog_without_metadata_column_still_lists(
    registry: ModelRegistry, make_registry: Any, lifecycle: None
) -> None:
    # Catalogs written before the metadata column: it is added empty, and views decode it from the state.
    expected = {(name, view.version): view.to_dict() for name in (NAME, OTHER) for view in registry.list_versions(name)}
    registry.close()
    db = sqlite_utils.Database(registry.read_models_path)
    db["catalog_versions"].transform(drop={"metadata"})
    db.close()

    reopened = make_registry(actor="dave")
    listed_again = {
        (name, view.version): view.to_dict() for name in (NAME, OTHER) for view in reopened.list_versions(name)
    }

    assert listed_again == expected
    assert "metadata" in sqlite_utils.Database(reopened.read_models_path)["catalog_versions"].columns_dict


def test_listed_versions_cover_every_version(registry: ModelRegistry, lifecycle: None) -> None:
    assert listed(registry) == ["v1.0.0", "v1.1.0", "v2.0.0-rc.1"]
    assert listed(registry, OTHER) == ["v1.0.0"]


def test_listed_models_match_get_model(registry: ModelRegistry, lifecycle: None) -> None:
    summaries = {summary.name: summary for summary in registry.list_models()}
    summary = summaries[NAME]
    stages = [get_quietly(registry, NAME, version).stage for version in listed(registry)]
    events = registry.events(NAME)

    assert sorted(summaries) == sorted([NAME, OTHER])
    assert summary.production_version == registry.get_model(NAME).version
    assert summary.latest_version == "v2.0.0-rc.1"
    assert summary.version_count == 3
    assert summary.stages == {stage: stages.count(stage) for stage in set(stages)}
    assert summary.created_at == events[0].timestamp
    assert summary.updated_at == events[-1].timestamp


def test_model_without_production_lists_none(registry: ModelRegistry, lifecycle: None) -> None:
    summary = next(s for s in registry.list_models() if s.name == OTHER)

    assert summary.production_version is None
    assert summary.stages == {"dev": 1}


# --- filters -----------------------------------------------------------------------


def test_list_versions_filters_by_stage(registry: ModelRegistry, lifecycle: None) -> None:
    assert listed(registry, stage="production") == ["v1.0.0"]
    assert listed(registry, stage="archived") == ["v1.1.0"]
    assert listed(registry, stage="staging") == ["v2.0.0-rc.1"]
    assert listed(registry, stage="dev") == []


def test_list_versions_requires_every_tag(registry: ModelRegistry, lifecycle: None) -> None:
    assert listed(registry, tags=["fraud"]) == ["v1.0.0", "v1.1.0", "v2.0.0-rc.1"]
    assert listed(registry, tags=["fraud", "eu"]) == ["v1.0.0", "v2.0.0-rc.1"]
    assert listed(registry, tags=["eu", "missing"]) == []


def test_list_versions_filters_metric_range(registry: ModelRegistry, lifecycle: None) -> None:
    assert listed(registry, min_metrics={"accuracy": 0.93}) == ["v1.1.0", "v2.0.0-rc.1"]
    assert listed(registry, max_metrics={"accuracy": 0.93}) == ["v1.0.0", "v1.1.0"]
    assert listed(registry, min_metrics={"accuracy": 0.91}, max_metrics={"accuracy": 0.94}) == ["v1.1.0"]


def test_metric_filter_skips_missing_metric(registry: ModelRegistry, lifecycle: None) -> None:
    assert listed(registry, min_metrics={"precision": 0.0}) == ["v1.0.0"]
    assert listed(registry, OTHER, min_metrics={"accuracy": 0.0}) == []


def test_list_versions_combines_filters(registry: ModelRegistry, lifecycle: None) -> None:
    assert listed(registry, stage="staging", tags=["eu"], min_metrics={"accuracy": 0.95}) == ["v2.0.0-rc.1"]
    assert listed(registry, stage="production", tags=["eu"], min_metrics={"accuracy": 0.95}) == []


TAG_CHOICES = ["eu", "us", "candidate"]


@pytest.fixture
def tagged(registry: ModelRegistry) -> dict[str, tuple[set[str], float, str]]:
    """Register 24 versions with varied tags, accuracies and stages; return them by version."""
    expected = {}
    for index in range(24):
        version = f"v1.{index}.0"
        tags = [tag for bit, tag in enumerate(TAG_CHOICES) if (index * 5 + 3) >> bit & 1]
        accuracy = round(0.80 + (index * 7 % 19) / 100, 2)
        register(registry, version, metadata={"accuracy": accuracy}, tags=tags)
        stage = "dev"
        if index % 3 == 0:
            registry.promote_model(NAME, version, "dev", "staging")
            stage = "staging"
        expected[version] = (set(tags), accuracy, stage)
    return expected


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    tags=st.lists(st.sampled_from(TAG_CHOICES), max_size=2, unique=True),
    lower=st.none() | st.sampled_from([0.8, 0.85, 0.9, 0.95]),
    upper=st.none() | st.sampled_from([0.82, 0.88, 0.93, 0.98]),
    stage=st.none() | st.sampled_from(["dev", "staging"]),
    page_size=st.none() | st.integers(min_value=1, max_value=5),
)
def test_filters_match_reference(
    registry: ModelRegistry,
    tagged: dict[str, tuple[set[str], float, str]],
    tags: list[str],
    lower: float | None,
    upper: float | None,
    stage: str | None,
    page_size: int | None,
) -> None:
    filters: dict[str, Any] = {"tags": tags, "stage": stage}
    if lower is not None:
        filters["min_metrics"] = {"accuracy": lower}
    if upper is not None:
        filters["max_metrics"] = {"accuracy": upper}
    expected = [
        version
        for version, (version_tags, accuracy, version_stage) in tagged.items()
        if set(tags) <= version_tags
        and (lower is None or accuracy >= lower)
        and (upper is None or accuracy <= upper)
        and (stage is None or version_stage == stage)
    ]

    found: list[str] = []
    token = None
    while True:
        page = registry.list_versions(NAME, page_size=page_size, page_token=token, **filters)
        found += [view.version for view in page]
        token = page.next_page_token
        if token is None:
            break

    assert found == sorted(expected, key=sort_key)


# --- order -------------------------------------------------------------------------


SEMVER_ORDER = [
    "v1.0.0-alpha",
    "v1.0.0-alpha.1",
    "v1.0.0-alpha.beta",
    "v1.0.0-beta.2",
    "v1.0.0-beta.11",
    "v1.0.0-rc.1",
    "v1.0.0",
    "v1.2.0",
    "v1.10.0",
    "v2.0.0-rc.1",
]


def test_versions_follow_semver_precedence(registry: ModelRegistry) -> None:
    for version in [
        "v1.10.0",
        "1.0.0",
        "1.0.0-rc.1",
        "v1.2.0",
        "1.0.0-beta.11",
        "1.0.0-alpha.beta",
        "2.0.0-rc.1",
        "1.0.0-alpha",
        "1.0.0-beta.2",
        "1.0.0-alpha.1",
    ]:
        register(registry, version)

    assert listed(registry) == SEMVER_ORDER


def test_thirteen_digit_versions_sort_numerically(registry: ModelRegistry) -> None:
    register(registry, "v1000000000000.0.0")
    register(registry, "v999999999999.0.0")

    assert listed(registry) == ["v999999999999.0.0", "v1000000000000.0.0"]
    assert registry.list_models()[0].latest_version == "v1000000000000.0.0"


def test_latest_version_uses_semver_precedence(registry: ModelRegistry) -> None:
    for version in ["v1.10.0", "v1.2.0", "v1.9.0"]:
        register(registry, version)

    summary = registry.list_models()[0]

    assert summary.latest_version == "v1.10.0"


# --- read-your-writes ----------------------------------------------------------------


def test_list_shows_each_command_at_once(registry: ModelRegistry) -> None:
    register(registry, "v1", tags=["fraud"])
    assert listed(registry) == ["v1.0.0"]
    assert registry.list_models()[0].latest_version == "v1.0.0"

    registry.promote_model(NAME, "v1", "dev", "staging")
    assert listed(registry, stage="staging") == ["v1.0.0"]

    registry.promote_model(NAME, "v1", "staging", "production")
    assert registry.list_models()[0].production_version == "v1.0.0"

    register(registry, "v2")
    registry.promote_model(NAME, "v2", "dev", "staging")
    registry.promote_model(NAME, "v2", "staging", "production")
    assert listed(registry, stage="archived") == ["v1.0.0"]
    assert registry.list_models()[0].production_version == "v2.0.0"

    registry.rollback(NAME, "v1", "error rate doubled")
    assert listed(registry, stage="production") == ["v1.0.0"]

    registry.deprecate_model(NAME, "v2", "replaced", end_of_life="2030-01-01")
    assert registry.list_versions(NAME, stage="archived")[0].deprecation is not None


def test_second_registry_lists_new_write(registry: ModelRegistry, make_registry: Any) -> None:
    reader = make_registry(actor="dave")
    register(registry, "v1")
    assert listed(reader) == ["v1.0.0"]

    register(registry, "v2")
    assert listed(reader) == ["v1.0.0", "v2.0.0"]


# --- paging ------------------------------------------------------------------------


def fetch_all_pages(registry: ModelRegistry, page_size: int) -> list[list[str]]:
    pages: list[list[str]] = []
    token = None
    while True:
        page = registry.list_versions(NAME, page_size=page_size, page_token=token)
        pages.append([view.version for view in page])
        token = page.next_page_token
        if token is None:
            return pages


def test_pages_cover_every_version_once(registry: ModelRegistry) -> None:
    versions = [f"v1.{minor}.0" for minor in range(10)]
    for version in reversed(versions):
        register(registry, version)

    pages = fetch_all_pages(registry, page_size=3)

    assert [len(page) for page in pages] == [3, 3, 3, 1]
    assert [version for page in pages for version in page] == versions


def test_exact_multiple_ends_without_token(registry: ModelRegistry) -> None:
    for version in ["v1", "v2", "v3"]:
        register(registry, version)

    page = registry.list_versions(NAME, page_size=3)

    assert [view.version for view in page] == ["v1.0.0", "v2.0.0", "v3.0.0"]
    assert page.next_page_token is None


def test_paged_filters_apply_to_every_page(registry: ModelRegistry) -> None:
    for minor in range(8):
        register(registry, f"v1.{minor}.0", tags=["even"] if minor % 2 == 0 else ["odd"])

    pages = []
    token = None
    while True:
        page = registry.list_versions(NAME, tags=["even"], page_size=3, page_token=token)
        pages.append([view.version for view in page])
        token = page.next_page_token
        if token is None:
            break

    assert pages == [["v1.0.0", "v1.2.0", "v1.4.0"], ["v1.6.0"]]


def test_paging_survives_concurrent_writes(registry: ModelRegistry, make_registry: Any) -> None:
    writer = make_registry(actor="bob")
    existing = [f"v1.{minor}.0" for minor in range(1, 11)]
    for version in existing:
        register(registry, version)
    # Versions registered between pages: some sort before the last version already
    # returned, the others after it.
    writes_after_page = {
        1: ["v1.0.0-rc.1", "v1.2.5", "v1.20.0"],
        2: ["v1.5.5", "v0.9.0", "v1.7.0-rc.1"],
        3: ["v1.8.1", "v2.0.0"],
    }

    seen: list[str] = []
    token = None
    page_number = 0
    while True:
        page = registry.list_versions(NAME, page_size=3, page_token=token)
        page_number += 1
        seen.extend(view.version for view in page)
        token = page.next_page_token
        if token is None:
            break
        for version in writes_after_page.get(page_number, []):
            register(writer, version)

    assert len(seen) == len(set(seen)), f"repeated versions in {seen}"
    assert [version for version in existing if version not in seen] == []
    assert seen == sorted(seen, key=sort_key)
    # A page starts after the previous page's last version, so a write below that
    # point is not returned and a write above it is.
    assert "v1.2.5" not in seen
    assert "v1.5.5" not in seen
    assert "v1.20.0" in seen
    assert "v1.7.0-rc.1" in seen


def encode_token(payload: bytes) -> str:
    return base64.urlsafe_b64encode(payload).decode()


def tamper_token(token: str, tampering: str) -> str:
    if tampering == "truncated":
        return token[: len(token) // 2]
    if tampering == "first character changed":
        return ("A" if token[0] != "A" else "B") + token[1:]
    if tampering == "reversed":
        return token[::-1]
    if tampering == "not base64":
        return "not a page token"
    if tampering == "json without key":
        return encode_token(b'{"before": "v1.0.0"}')
    if tampering == "key not text":
        return encode_token(b'{"after": 5}')
    if tampering == "json list":
        return encode_token(b'["after"]')
    if tampering == "forged key":
        # Well-formed JSON whose key no version of any model can have.
        return encode_token(b'{"after": "garbage"}')
    raise AssertionError(tampering)


@pytest.mark.parametrize(
    "tampering",
    [
        "truncated",
        "first character changed",
        "reversed",
        "not base64",
        "json without key",
        "key not text",
        "json list",
        "forged key",
    ],
)
def test_tampered_page_token_raises(registry: ModelRegistry, tampering: str) -> None:
    for version in ["v1", "v2", "v3"]:
        register(registry, version)
    token = registry.list_versions(NAME, page_size=1).next_page_token
    assert token is not None

    with pytest.raises(InvalidInput, match="page_token"):
        registry.list_versions(NAME, page_size=1, page_token=tamper_token(token, tampering))


@pytest.mark.parametrize("page_size", [0, -1])
def test_page_size_below_one_raises(registry: ModelRegistry, page_size: int) -> None:
    register(registry, "v1")

    with pytest.raises(InvalidInput, match="page_size"):
        registry.list_versions(NAME, page_size=page_size)


# --- the SQL sort key ----------------------------------------------------------------


# Small numbers, and numbers on both sides of 10**12, where fixed-width padding ends.
numbers = st.one_of(st.integers(0, 25), st.integers(10**11, 10**14))
numeric_identifiers = numbers.map(str)
alphanumeric_identifiers = st.text(alphabet="0123456789abzAZ-", min_size=1, max_size=5).filter(
    lambda text: not text.isdigit()
)
prereleases = st.lists(st.one_of(numeric_identifiers, alphanumeric_identifiers), min_size=1, max_size=3)
builds = st.lists(st.text(alphabet="0129az-", min_size=1, max_size=3), min_size=1, max_size=2)


@st.composite
def semver_texts(draw: st.DrawFn) -> str:
    text = f"{draw(numbers)}.{draw(numbers)}.{draw(numbers)}"
    prerelease = draw(st.none() | prereleases)
    if prerelease:
        text += "-" + ".".join(prerelease)
    build = draw(st.none() | builds)
    if build:
        text += "+" + ".".join(build)
    return text


@settings(max_examples=200, deadline=None)
@given(texts=st.lists(semver_texts(), min_size=2, max_size=10))
@example(texts=["999999999999.0.0", "1000000000000.0.0"])
@example(texts=["1.0.0-rc.999999999999", "1.0.0-rc.1000000000000"])
@example(texts=["1.0.0-alpha.1", "1.0.0-alpha", "1.0.0-alpha-1", "1.0.0-0a", "1.0.0-9", "1.0.0+b", "1.0.0+a"])
def test_precedence_key_orders_like_semver(texts: list[str]) -> None:
    versions = sorted({normalize_version(text) for text in texts})

    assert sorted(versions, key=precedence_key) == sorted(versions, key=sort_key)
