"""Compliance audit reports: their sections, checkpoints, window, renderings and the audit command."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from registry import InvalidDate, InvalidInput, ModelGovernance, ModelNotFound, ModelRegistry
from registry.audit import FAILED, NOT_APPLICABLE, PASSED, AuditReport
from registry.naming import model_id

NAME = "claims-triage"
UTC = dt.UTC
CHECKPOINTS = ["approvals", "signatures", "end_of_life", "rollback_reasons", "integrity"]

# Text with Markdown and HTML syntax, to check that both renderings escape it.
TRICKY_COMMENT = "recall fixed | see <eval-42> & co"


def at(day: int, hour: int = 9, month: int = 1) -> dt.datetime:
    return dt.datetime(2024, month, day, hour, tzinfo=UTC)


def register(
    registry: Any, models: Any, version: str, metrics: dict[str, float], data: str, experiment: str
) -> None:
    registry.register_model(
        NAME,
        models.logistic,
        version=version,
        metadata={**metrics, "training_data_version": data, "experiment": experiment},
        input_example=models.x_train[models.features_v1].head(5),
    )


def build_history(registry: Any, clock: Any, models: Any) -> None:
    """Write a compliant history of two versions, a rollback and a deprecation, from 2024-01-10 to 01-18.

    The model's events, by position:

    1. ModelCreated, 2. Registered v1.0.0, 3. Promoted to staging,
    4. Approved by bob, 5. Promoted to production,
    6. Registered v1.1.0, 7. Promoted to staging, 8. Rejected by carol,
    9. Approved by carol, 10. Promoted v1.0.0 to archived,
    11. Promoted v1.1.0 to production, 12. RolledBack to v1.0.0,
    13. Deprecated v1.1.0.

    The settings stream has 1. SettingsCreated and 2. ApprovalPolicySet.
    """
    register(registry, models, "v1.0.0", {"accuracy": 0.91, "recall": 0.88, "inference_latency_p95": 12.5},
             "claims-2023q4", "exp-1")  # fmt: skip
    clock.advance(hours=1)
    registry.set_approval_required(
        "production", approvers=["bob", "carol"], min_approvals=1, actor="release-manager"
    )

    clock.now = at(11)
    registry.promote_model(NAME, "v1.0.0", "dev", "staging")
    registry.approve_model(NAME, "v1.0.0", approver="bob", comments="looks good")
    registry.promote_model(NAME, "v1.0.0", "staging", "production")

    clock.now = at(15)
    register(registry, models, "v1.1.0", {"accuracy": 0.93, "recall": 0.86, "inference_latency_p95": 14.0},
             "claims-2024q1", "exp-2")  # fmt: skip
    registry.promote_model(NAME, "v1.1.0", "dev", "staging")
    registry.reject_model(NAME, "v1.1.0", approver="carol", reason="recall dropped")
    clock.now = at(16)
    registry.approve_model(NAME, "v1.1.0", approver="carol", comments=TRICKY_COMMENT)
    registry.promote_model(NAME, "v1.1.0", "staging", "production")

    clock.now = at(18)
    registry.rollback(NAME, "v1.0.0", "latency spike on live traffic", actor="oncall-dan")
    clock.advance(hours=1)
    registry.deprecate_model(NAME, "v1.1.0", "superseded by v1.2.0", end_of_life="2024-02-15", actor="alice")


def audit(registry: Any, start: Any = "2024-01-11T00:00", end: Any = "2024-01-20") -> AuditReport:
    return ModelGovernance(registry=registry).generate_audit_report(NAME, start, end)


def checkpoint(report: AuditReport, key: str) -> Any:
    return next(item for item in report.checkpoints if item.key == key)


def evidence_ids(item: Any) -> list[str]:
    return [ref.event_id for ref in item.evidence]


@pytest.fixture
def history(registry: Any, clock: Any, models: Any) -> Any:
    build_history(registry, clock, models)
    return registry


@pytest.fixture
def sqlite_registry(tmp_path: Path, clock: Any) -> Any:
    with ModelRegistry(home=tmp_path / "home", clock=clock, actor="alice") as registry:
        yield registry


# --- sections -------------------------------------------------------------------


def test_deployments_list_promotions_and_rollback(history: Any) -> None:
    report = audit(history)

    rows = [(d.version, d.kind, d.at, d.by, d.replaced, d.approved_by, d.reason) for d in report.deployments]
    assert rows == [
        ("v1.0.0", "promotion", at(11), "alice", None, ["bob"], None),
        ("v1.1.0", "promotion", at(16), "alice", "v1.0.0", ["carol"], None),
        ("v1.0.0", "rollback", at(18), "oncall-dan", "v1.1.0", [], "latency spike on live traffic"),
    ]
    assert [d.event.event_id for d in report.deployments] == [f"{NAME}#5", f"{NAME}#11", f"{NAME}#12"]


def test_decisions_keep_approver_time_and_text(history: Any) -> None:
    report = audit(history)

    rows = [(d.version, d.stage, d.approver, d.decision, d.at, d.text) for d in report.decisions]
    assert rows == [
        ("v1.0.0", "production", "bob", "approved", at(11), "looks good"),
        ("v1.1.0", "production", "carol", "rejected", at(15), "recall dropped"),
        ("v1.1.0", "production", "carol", "approved", at(16), TRICKY_COMMENT),
    ]


def test_rollback_and_deprecation_keep_reasons(history: Any) -> None:
    report = audit(history)

    (rollback,) = report.rollbacks
    assert (rollback.from_version, rollback.to_version, rollback.by) == ("v1.1.0", "v1.0.0", "oncall-dan")
    assert rollback.reason == "latency spike on live traffic"
    assert rollback.automatic is False
    (deprecation,) = report.deprecations
    assert (deprecation.version, deprecation.by, deprecation.at) == ("v1.1.0", "alice", at(18, 10))
    assert deprecation.reason == "superseded by v1.2.0"
    assert deprecation.end_of_life == dt.datetime(2024, 2, 15, 23, 59, 59, 999999, tzinfo=UTC)
    assert deprecation.event.event_id == f"{NAME}#13"


def test_performance_follows_production_metrics(history: Any) -> None:
    report = audit(history)

    points = [(p.at, p.version, p.label, p.metrics) for p in report.performance]
    v1 = {"accuracy": 0.91, "recall": 0.88, "inference_latency_p95": 12.5}
    v11 = {"accuracy": 0.93, "recall": 0.86, "inference_latency_p95": 14.0}
    assert points == [
        (at(11), "v1.0.0", "promoted", v1),
        (at(16), "v1.1.0", "promoted", v11),
        (at(18), "v1.0.0", "rolled back to", v1),
    ]
    assert report.performance_metrics() == ["accuracy", "recall", "inference_latency_p95"]


def test_versions_and_data_sources_come_from_lineage(history: Any) -> None:
    report = audit(history)

    rows = [(v.version, v.registered_at, v.registered_by, v.stage_at_end, v.data_sources, v.experiments)
            for v in report.versions]  # fmt: skip
    assert rows == [
        ("v1.0.0", at(10), "alice", "production", ["claims-2023q4"], ["exp-1"]),
        ("v1.1.0", at(15), "alice", "archived", ["claims-2024q1"], ["exp-2"]),
    ]
    assert report.data_sources() == {"claims-2023q4": ["v1.0.0"], "claims-2024q1": ["v1.1.0"]}
    assert report.versions[0].inputs == 10


def test_policy_in_force_at_start_and_its_changes(history: Any, clock: Any) -> None:
    report = audit(history)

    (policy,) = report.policies_at_start
    assert (policy.stage, policy.approvers, policy.min_approvals) == ("production", ["bob", "carol"], 1)
    assert (policy.set_at, policy.set_by, policy.event.event_id) == (
        at(10, 10),
        "release-manager",
        "registry settings#2",
    )
    assert report.policy_changes == []

    clock.advance(hours=1)
    history.set_approval_required(
        "production", approvers=["bob", "carol"], min_approvals=2, actor="release-manager"
    )
    changed = audit(history)

    (change,) = changed.policy_changes
    assert (change.min_approvals, change.set_at, change.event.event_id) == (
        2,
        at(18, 11),
        "registry settings#3",
    )


def test_compliant_history_passes_checkpoints(history: Any) -> None:
    report = audit(history)

    statuses = {item.key: item.status for item in report.checkpoints}
    assert list(statuses) == CHECKPOINTS
    assert statuses == {
        "approvals": PASSED,
        "signatures": PASSED,
        "end_of_life": NOT_APPLICABLE,
        "rollback_reasons": PASSED,
        "integrity": PASSED,
    }
    assert report.passed


def test_approval_evidence_names_events_and_hashes(history: Any) -> None:
    report = audit(history)
    hashes = {f"{NAME}#{event.originator_version}": event.event_hash for event in history.events(NAME)}

    approvals = checkpoint(report, "approvals")
    assert [finding.ok for finding in approvals.findings] == [True, True, True]
    assert [ref.event_id for ref in approvals.findings[1].evidence] == [
        f"{NAME}#11",
        "registry settings#2",
        f"{NAME}#9",
    ]
    assert "approved by carol, 1 of 1 required" in approvals.findings[1].text
    for ref in approvals.evidence:
        if ref.event_id.startswith(NAME):
            assert ref.event_hash == hashes[ref.event_id]
            assert ref.short_hash == hashes[ref.event_id][:12]


def test_rollback_checkpoint_quotes_reason(history: Any) -> None:
    report = audit(history)

    (finding,) = checkpoint(report, "rollback_reasons").findings
    assert finding.ok
    assert finding.text.endswith(": latency spike on live traffic")
    assert [ref.event_id for ref in finding.evidence] == [f"{NAME}#12"]


def test_rollback_is_judged_by_earlier_promotion(history: Any) -> None:
    report = audit(history)

    restored = checkpoint(report, "approvals").findings[2]
    assert restored.text.startswith(
        "v1.0.0, restored to production by a rollback at 2024-01-18T09:00:00+00:00"
    )
    assert [ref.event_id for ref in restored.evidence][:2] == [f"{NAME}#12", f"{NAME}#5"]


def test_end_of_life_in_window_passes_when_archived(history: Any, clock: Any) -> None:
    clock.now = at(20, month=2)

    report = audit(history, start="2024-01-11T00:00", end="2024-02-20")

    end_of_life = checkpoint(report, "end_of_life")
    assert end_of_life.status == PASSED
    assert end_of_life.findings[0].text.startswith(
        "v1.1.0 reached its end of life at 2024-02-15T23:59:59+00:00"
    )
    assert evidence_ids(end_of_life) == [f"{NAME}#13"]


# --- failing checkpoints --------------------------------------------------------


def test_backfilled_promotion_under_stricter_policy_fails(registry: Any, clock: Any, models: Any) -> None:
    register(registry, models, "v1.0.0", {"accuracy": 0.9}, "claims-2023q4", "exp-1")
    registry.set_approval_required(
        "production", approvers=["bob", "carol"], min_approvals=2, actor="release-manager"
    )
    clock.now = at(20)
    registry.set_approval_required("production", approvers=["bob"], min_approvals=1, actor="release-manager")
    # Backfilled to 01-12, when the policy in force still asked for two approvals.
    registry.promote_model(NAME, "v1.0.0", "dev", "staging", effective_at=at(12))
    registry.approve_model(NAME, "v1.0.0", approver="bob", comments="ok", effective_at=at(12, 10))
    registry.promote_model(NAME, "v1.0.0", "staging", "production", effective_at=at(12, 11))

    report = audit(registry, start="2024-01-10T00:00", end="2024-01-31")

    approvals = checkpoint(report, "approvals")
    assert approvals.status == FAILED
    (finding,) = approvals.findings
    assert not finding.ok
    assert "approved by bob, 1 of 2 required" in finding.text
    assert "the policy in force (registry settings#2) required 2 of bob, carol" in finding.text
    assert [ref.event_id for ref in finding.evidence] == [f"{NAME}#5", "registry settings#2", f"{NAME}#4"]
    assert not report.passed


def test_approval_by_approver_listed_later_fails(registry: Any, clock: Any, models: Any) -> None:
    register(registry, models, "v1.0.0", {"accuracy": 0.9}, "claims-2023q4", "exp-1")
    registry.set_approval_required("production", approvers=["bob"], min_approvals=1, actor="release-manager")
    clock.now = at(20)
    registry.set_approval_required(
        "production", approvers=["bob", "dave"], min_approvals=1, actor="release-manager"
    )
    registry.promote_model(NAME, "v1.0.0", "dev", "staging", effective_at=at(12))
    registry.approve_model(NAME, "v1.0.0", approver="dave", comments="fine by me", effective_at=at(12, 10))
    registry.promote_model(NAME, "v1.0.0", "staging", "production", effective_at=at(12, 11))

    report = audit(registry, start="2024-01-10T00:00", end="2024-01-31")

    (finding,) = checkpoint(report, "approvals").findings
    assert not finding.ok
    assert "approved by nobody, 0 of 1 required" in finding.text
    assert "approvals by dave do not count because the policy did not list them" in finding.text
    assert [ref.event_id for ref in finding.evidence] == [f"{NAME}#5", "registry settings#2", f"{NAME}#4"]


def test_production_without_policy_fails_approvals(registry: Any, models: Any) -> None:
    register(registry, models, "v1.0.0", {"accuracy": 0.9}, "claims-2023q4", "exp-1")
    registry.promote_model(NAME, "v1.0.0", "dev", "staging")
    registry.promote_model(NAME, "v1.0.0", "staging", "production")

    report = audit(registry, start="2024-01-10T00:00", end="2024-01-10")

    (finding,) = checkpoint(report, "approvals").findings
    assert not finding.ok
    assert "approved by nobody, 0 of 1 required; no production approval policy was in force" in finding.text
    assert [ref.event_id for ref in finding.evidence] == [f"{NAME}#4"]
    assert report.policies_at_start == []


def test_signature_break_without_major_version_fails(registry: Any, models: Any) -> None:
    # v1.1.0 drops five inputs of v1.0.0. The registry checks a new version's signature only
    # against the production version at registration, and v1.0.0 was not in production yet.
    registry.register_model(NAME, models.xgboost, version="v1.0.0",
                            input_example=models.x_train[models.features_v2].head(5))  # fmt: skip
    registry.register_model(NAME, models.logistic, version="v1.1.0",
                            input_example=models.x_train[models.features_v1].head(5))  # fmt: skip
    for version in ("v1.0.0", "v1.1.0"):
        registry.promote_model(NAME, version, "dev", "staging")
        registry.promote_model(NAME, version, "staging", "production")

    report = audit(registry, start="2024-01-10T00:00", end="2024-01-10")

    signatures = checkpoint(report, "signatures")
    assert signatures.status == FAILED
    first, broken = signatures.findings
    assert first.ok
    assert not broken.ok
    removed = ", ".join(sorted(set(models.features_v2) - set(models.features_v1)))
    assert f"breaks the signature of v1.0.0, which it replaced (inputs removed: {removed})" in broken.text
    assert [ref.event_id for ref in broken.evidence] == [f"{NAME}#8", f"{NAME}#3"]


def test_version_without_signature_fails(registry: Any) -> None:
    registry.register_model(NAME, {"threshold": 0.5}, version="v1.0.0")
    registry.promote_model(NAME, "v1.0.0", "dev", "staging")
    registry.promote_model(NAME, "v1.0.0", "staging", "production")

    report = audit(registry, start="2024-01-10T00:00", end="2024-01-10")

    (finding,) = checkpoint(report, "signatures").findings
    assert not finding.ok
    assert "no input signature was recorded" in finding.text
    assert [ref.event_id for ref in finding.evidence] == [f"{NAME}#4", f"{NAME}#2"]


def test_version_in_production_after_end_of_life_fails(registry: Any, clock: Any, models: Any) -> None:
    register(registry, models, "v1.0.0", {"accuracy": 0.9}, "claims-2023q4", "exp-1")
    registry.promote_model(NAME, "v1.0.0", "dev", "staging")
    registry.promote_model(NAME, "v1.0.0", "staging", "production")
    registry.deprecate_model(NAME, "v1.0.0", "superseded", end_of_life="2024-01-12")
    clock.now = at(15)

    still_serving = audit(registry, start="2024-01-10T00:00", end="2024-01-31")

    (finding,) = checkpoint(still_serving, "end_of_life").findings
    assert not finding.ok
    assert finding.text == (
        "v1.0.0 reached its end of life at 2024-01-12T23:59:59+00:00 (claims-triage#5) but was in production "
        "from 2024-01-12T23:59:59+00:00 to 2024-01-15T09:00:00+00:00, the end of the report, "
        "deployed by claims-triage#4"
    )
    assert [ref.event_id for ref in finding.evidence] == [f"{NAME}#5", f"{NAME}#4"]

    registry.enforce_end_of_life()
    clock.now = at(20)
    archived_late = audit(registry, start="2024-01-10T00:00", end="2024-01-31")

    (finding,) = checkpoint(archived_late, "end_of_life").findings
    assert not finding.ok
    assert "to 2024-01-15T09:00:00+00:00 (claims-triage#6)" in finding.text
    assert [ref.event_id for ref in finding.evidence] == [f"{NAME}#5", f"{NAME}#4", f"{NAME}#6"]


def test_tampered_event_fails_integrity(sqlite_registry: Any, clock: Any, models: Any) -> None:
    build_history(sqlite_registry, clock, models)
    with sqlite3.connect(sqlite_registry.home / "events.sqlite3") as connection:
        changed = connection.execute(
            "UPDATE stored_events "
            "SET state = CAST(replace(CAST(state AS TEXT), 'looks good', 'looks great') AS BLOB) "
            "WHERE originator_id = ? AND originator_version = 4",
            [model_id(NAME).hex],
        ).rowcount
    assert changed == 1

    report = audit(sqlite_registry)

    integrity = checkpoint(report, "integrity")
    assert integrity.status == FAILED
    assert evidence_ids(integrity) == [f"{NAME}#4"]
    assert report.integrity.problems_in_model == 1
    assert "its content does not match its hash" in (report.integrity.first_problem_message or "")
    assert not report.passed


# --- the window -----------------------------------------------------------------


def test_events_outside_window_excluded(history: Any) -> None:
    report = audit(history, start="2024-01-16T00:00", end="2024-01-16T23:00")

    assert [row.ref.event_id for row in report.events] == [f"{NAME}#9", f"{NAME}#10", f"{NAME}#11"]
    assert [d.version for d in report.deployments] == ["v1.1.0"]
    assert [(d.approver, d.decision) for d in report.decisions] == [("carol", "approved")]
    assert report.rollbacks == []
    assert report.deprecations == []
    assert report.production_at_start == "v1.0.0"
    assert [p.label for p in report.performance] == ["in production at start", "promoted"]


def test_empty_window_says_so(history: Any) -> None:
    report = audit(history, start="2023-12-01T00:00", end="2023-12-31")

    assert not report.has_activity
    assert report.summary().startswith(
        "No events of claims-triage took effect "
        "between 2023-12-01T00:00:00+00:00 and 2023-12-31T23:59:59+00:00."
    )
    statuses = {item.key: item.status for item in report.checkpoints}
    assert statuses == {key: NOT_APPLICABLE for key in CHECKPOINTS[:4]} | {"integrity": PASSED}
    assert "No events of claims-triage took effect between" in report.to_markdown()


def test_quiet_window_keeps_production_version(history: Any, clock: Any) -> None:
    clock.now = at(1, month=3)

    report = audit(history, start="2024-02-01T00:00", end="2024-02-10")

    assert not report.has_activity
    assert report.production_at_start == "v1.0.0"
    assert checkpoint(report, "approvals").status == PASSED
    assert checkpoint(report, "rollback_reasons").status == NOT_APPLICABLE


def test_bare_start_date_means_end_of_day(history: Any) -> None:
    report = audit(history, start="2024-01-11", end="2024-01-20")

    assert report.start == dt.datetime(2024, 1, 11, 23, 59, 59, 999999, tzinfo=UTC)
    assert f"{NAME}#5" not in [row.ref.event_id for row in report.events]


def test_end_before_start_raises(history: Any) -> None:
    with pytest.raises(InvalidDate) as raised:
        audit(history, start="2024-01-20T00:00", end="2024-01-11T00:00")

    message = str(raised.value)
    assert "end_date 2024-01-11T00:00:00+00:00 is before start_date 2024-01-20T00:00:00+00:00" in message


def test_unreadable_date_raises(history: Any) -> None:
    with pytest.raises(InvalidDate, match="invalid start_date 'last tuesday'"):
        audit(history, start="last tuesday")


def test_unknown_model_raises(registry: Any) -> None:
    with pytest.raises(ModelNotFound, match="model 'claims-triage' not found"):
        audit(registry)


# --- renderings -----------------------------------------------------------------


def test_markdown_shows_sections_and_escapes_text(history: Any) -> None:
    markdown = audit(history).to_markdown()

    for heading in ("## Compliance checkpoints", "## Versions deployed", "## Approvals and rejections",
                    "## Rollbacks", "## Deprecations", "## Performance over time", "## Data sources",
                    "## Approval policy", "## Integrity", "## Event log"):  # fmt: skip
        assert heading in markdown
    assert "| v1.0.0 | production | approved | bob | 2024-01-11T09:00:00+00:00 | looks good |" in markdown
    assert "recall fixed \\| see &lt;eval-42&gt; &amp; co" in markdown
    assert "<eval-42>" not in markdown
    assert "- production: 1 of bob, carol, set at 2024-01-10T10:00:00+00:00 by release-manager" in markdown


def test_html_escapes_text_and_loads_nothing(history: Any) -> None:
    page = audit(history).to_html()

    assert "recall fixed | see &lt;eval-42&gt; &amp; co" in page
    assert "<eval-42>" not in page
    assert '<svg id="metrics-chart"' in page
    assert '<table id="checkpoints">' in page
    for reference in ("<script", "<link", "src=", "url(", "@import", "https://"):
        assert reference not in page


def test_json_holds_whole_report(history: Any) -> None:
    report = audit(history)

    data = json.loads(report.to_json())

    assert data == report.to_dict()
    assert data["passed"] is True
    assert [item["key"] for item in data["checkpoints"]] == CHECKPOINTS
    assert data["deployments"][1]["event"]["event_id"] == f"{NAME}#11"
    assert data["approval_policy"]["at_start"][0]["approvers"] == ["bob", "carol"]
    assert data["decisions"][2]["text"] == TRICKY_COMMENT


def test_write_chooses_format_from_suffix(history: Any, tmp_path: Path) -> None:
    report = audit(history)

    for suffix, expected in (
        (".md", report.to_markdown()),
        (".html", report.to_html()),
        (".json", report.to_json()),
    ):
        path = report.write(tmp_path / f"report{suffix}")
        assert path.read_text(encoding="utf-8") == expected
    assert (
        report.write(tmp_path / "report.txt", format="json").read_text(encoding="utf-8") == report.to_json()
    )


def test_write_rejects_unknown_format(history: Any, tmp_path: Path) -> None:
    report = audit(history)

    with pytest.raises(InvalidInput, match="invalid audit report format 'pdf'"):
        report.write(tmp_path / "report.pdf", format="pdf")
    with pytest.raises(InvalidInput, match="cannot tell the audit report format"):
        report.write(tmp_path / "report.txt")
    assert list(tmp_path.iterdir()) == [tmp_path / "home"]


def test_write_to_directory_raises_and_leaves_nothing(history: Any, tmp_path: Path) -> None:
    folder = tmp_path / "reports.md"
    folder.mkdir()

    with pytest.raises(InvalidInput, match="cannot write the audit report to"):
        audit(history).write(folder)
    assert list(folder.iterdir()) == []
    assert sorted(path.name for path in tmp_path.iterdir()) == ["home", "reports.md"]


def test_html_renders_in_chromium(sqlite_registry: Any, clock: Any, models: Any, tmp_path: Path) -> None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip(
            "chromium is not installed; install it with 'apt-get install -y chromium' to render the HTML"
        )
    build_history(sqlite_registry, clock, models)
    page = audit(sqlite_registry).write(tmp_path / "report.html")
    screenshot = tmp_path / "report.png"
    options = [
        browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0",
    ]  # fmt: skip

    shot = subprocess.run(
        [*options, f"--screenshot={screenshot}", "--window-size=1200,2000", page.as_uri()],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    dom = subprocess.run(
        [*options, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120, check=False
    )

    assert shot.returncode == 0, shot.stderr
    assert screenshot.stat().st_size > 20_000
    assert dom.returncode == 0, dom.stderr
    assert '<svg id="metrics-chart"' in dom.stdout
    assert dom.stdout.count("<polyline") == 2  # accuracy and recall
    assert '<table id="checkpoints">' in dom.stdout
    # Chromium logs each console message, script error included, as a ":CONSOLE" line.
    console = [line for line in (shot.stderr + dom.stderr).splitlines() if ":CONSOLE" in line]
    assert console == []


# --- the audit command ------------------------------------------------------------


def run_cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    environment = {key: value for key, value in os.environ.items() if key != "REGISTRY_DEBUG"}
    return subprocess.run(
        [sys.executable, "-m", "registry.cli", "--home", str(home), *args],
        capture_output=True, text=True, env=environment, timeout=180, check=False,
    )  # fmt: skip


@pytest.fixture
def cli_home(sqlite_registry: Any, clock: Any, models: Any) -> Path:
    build_history(sqlite_registry, clock, models)
    home: Path = sqlite_registry.home
    return home


def test_cli_audit_writes_html_file(cli_home: Path, tmp_path: Path) -> None:
    output = tmp_path / "out" / "audit.html"

    result = run_cli(cli_home, "audit", NAME, "--from", "2024-01-11T00:00", "--to", "2024-01-20",
                     "--format", "html", "--output", str(output))  # fmt: skip

    assert result.returncode == 0, result.stderr
    assert result.stdout == f"wrote the audit report of {NAME} (html) to {output}\n"
    assert output.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_cli_audit_format_from_suffix(cli_home: Path, tmp_path: Path) -> None:
    output = tmp_path / "audit.html"

    result = run_cli(cli_home, "audit", NAME, "--from", "2024-01-11T00:00", "--to", "2024-01-20", "--output", str(output))

    assert result.returncode == 0, result.stderr
    assert result.stdout == f"wrote the audit report of {NAME} (html) to {output}\n"
    assert output.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_cli_audit_of_broken_log_fails_clearly(cli_home: Path) -> None:
    with sqlite3.connect(cli_home / "events.sqlite3") as db:
        db.execute("DELETE FROM stored_events WHERE originator_version = 3")

    result = run_cli(cli_home, "audit", NAME, "--from", "2024-01-11T00:00", "--to", "2024-01-20")

    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert "not in sequence: expected position 3, found 4" in result.stderr
    assert "Run `registry verify`" in result.stderr


def test_cli_audit_prints_markdown(cli_home: Path) -> None:
    result = run_cli(cli_home, "audit", NAME, "--from", "2024-01-11T00:00", "--to", "2024-01-20")

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"# Audit report: {NAME}\n")
    assert "latency spike on live traffic" in result.stdout


def test_cli_audit_json_prints_report(cli_home: Path) -> None:
    result = run_cli(cli_home, "--json", "audit", NAME, "--from", "2024-01-11T00:00", "--to", "2024-01-20")

    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["model"] == NAME
    assert data["passed"] is True
    assert [item["status"] for item in data["checkpoints"]] == [
        PASSED,
        PASSED,
        NOT_APPLICABLE,
        PASSED,
        PASSED,
    ]


def test_cli_audit_unknown_model_leaves_no_file(cli_home: Path, tmp_path: Path) -> None:
    output = tmp_path / "audit.md"

    result = run_cli(cli_home, "audit", "claims-triag", "--from", "2024-01-11", "--to", "2024-01-20",
                     "--output", str(output))  # fmt: skip

    assert result.returncode == 1
    assert result.stderr.startswith("error: model 'claims-triag' not found; did you mean 'claims-triage'?")
    assert len(result.stderr.splitlines()) == 1
    assert not output.exists()
    assert [path.name for path in tmp_path.iterdir()] == ["home"]


def test_cli_audit_end_before_start_fails(cli_home: Path) -> None:
    result = run_cli(cli_home, "audit", NAME, "--from", "2024-01-20", "--to", "2024-01-11")

    assert result.returncode == 1
    assert result.stderr == (
        "error: invalid window: --to 2024-01-11T23:59:59+00:00 is before --from 2024-01-20T23:59:59+00:00; "
        "pass a --to at or after --from\n"
    )


def test_cli_audit_unreadable_date_fails(cli_home: Path) -> None:
    result = run_cli(cli_home, "audit", NAME, "--from", "soon", "--to", "2024-01-11")

    assert result.returncode == 1
    assert result.stderr.startswith(
        "error: invalid --from 'soon': expected a datetime, a date, or ISO 8601 text"
    )


def test_cli_audit_requires_window(cli_home: Path) -> None:
    result = run_cli(cli_home, "audit", NAME, "--to", "2024-01-11")

    assert result.returncode == 2
    assert "Missing option '--from'" in result.stderr
