"""The demo, the README's first command, runs end to end on real models."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

DEMO = Path(__file__).resolve().parents[1] / "scripts" / "demo.py"


@pytest.fixture(scope="module")
def demo_output(tmp_path_factory: pytest.TempPathFactory) -> str:
    output = tmp_path_factory.mktemp("demo")
    finished = subprocess.run(
        [sys.executable, str(DEMO), "--output", str(output)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert finished.returncode == 0, finished.stderr
    return finished.stdout


def test_demo_refuses_self_approval(demo_output: str) -> None:
    assert "SelfApprovalNotAllowed: 'alice' registered breast-cancer-classifier v3.0.0" in demo_output


def test_demo_auto_versions_candidate_minor(demo_output: str) -> None:
    assert "proposes v3.1.0" in demo_output


def test_demo_answers_point_in_time(demo_output: str) -> None:
    assert "at 2024-03-10T09:00:00+00:00 production was v3.0.0" in demo_output
    assert "at 2024-03-15T09:00:00+00:00 production was v3.1.0" in demo_output


def test_demo_rolls_back_to_v3_0_0(demo_output: str) -> None:
    assert "production is v3.0.0 again; v3.1.0 is archived" in demo_output


def test_demo_scores_holdout_with_production(demo_output: str) -> None:
    line = next(line for line in demo_output.splitlines() if "held-out accuracy" in line)
    accuracy = float(line.split("held-out accuracy ")[1].split()[0])
    assert line.strip().startswith("v3.0.0")
    assert accuracy > 0.85


def test_demo_refuses_reading_past_end_of_life(demo_output: str) -> None:
    assert "EndOfLifeReached: breast-cancer-classifier v3.1.0 reached its end of life" in demo_output


def test_demo_lists_versions_from_catalog(demo_output: str) -> None:
    assert "v3.1.0   archived" in demo_output


def test_demo_traces_lineage(demo_output: str) -> None:
    assert "models that use the feature set fe-v1: breast-cancer-classifier-v3.0.0" in demo_output


def test_demo_writes_model_registry_doc(demo_output: str) -> None:
    assert "docs/breast-cancer-classifier/model-registry.md" in demo_output
    assert "## Current production model\n\n- Version: v3.0.0" in demo_output


def test_demo_compares_both_versions(demo_output: str) -> None:
    assert "a: breast-cancer-classifier-v3.0.0" in demo_output
    assert "added     worst_area, worst_perimeter, worst_radius, worst_smoothness, worst_texture" in demo_output


def audit_reports(demo_output: str) -> dict[str, Path]:
    """Return the audit report files that the demo printed, by suffix."""
    prefix = "audit report: "
    paths = [Path(line.split(prefix, 1)[1]) for line in demo_output.splitlines() if prefix in line]
    return {path.suffix: path for path in paths}


def audit_json(demo_output: str) -> Any:
    return json.loads(audit_reports(demo_output)[".json"].read_text(encoding="utf-8"))


def test_demo_writes_audit_reports(demo_output: str) -> None:
    reports = audit_reports(demo_output)

    assert sorted(reports) == [".html", ".json", ".md"]
    assert all(path.parent.name == "breast-cancer-classifier" for path in reports.values())
    assert '<svg id="metrics-chart"' in reports[".html"].read_text(encoding="utf-8")
    markdown = reports[".md"].read_text(encoding="utf-8")
    assert "| v3.1.0 | production | rejected | carol | 2024-03-13T09:00:00+00:00 |" in markdown


def test_demo_audit_lists_deployments(demo_output: str) -> None:
    deployments = audit_json(demo_output)["deployments"]

    assert [(d["version"], d["kind"], d["at"], d["by"], d["approved_by"]) for d in deployments] == [
        ("v3.0.0", "promotion", "2024-03-06T09:00:00+00:00", "alice", ["bob", "carol"]),
        ("v3.1.0", "promotion", "2024-03-14T09:00:00+00:00", "alice", ["bob", "carol"]),
        ("v3.0.0", "rollback", "2024-03-17T09:00:00+00:00", "oncall-erin", []),
    ]


def test_demo_audit_keeps_approvers_and_comments(demo_output: str) -> None:
    decisions = audit_json(demo_output)["decisions"]

    assert [(d["version"], d["approver"], d["decision"], d["text"]) for d in decisions] == [
        ("v3.0.0", "bob", "approved", "metrics checked on the test split"),
        ("v3.0.0", "carol", "approved", "signature and requirements reviewed"),
        ("v3.1.0", "bob", "approved", "AUC up on the test split"),
        ("v3.1.0", "carol", "rejected", "p95 latency not measured under load yet"),
        ("v3.1.0", "carol", "approved", "load test passed"),
    ]


def test_demo_audit_records_rollback_and_deprecation(demo_output: str) -> None:
    report = audit_json(demo_output)

    (rollback,) = report["rollbacks"]
    assert (rollback["from_version"], rollback["to_version"]) == ("v3.1.0", "v3.0.0")
    assert rollback["reason"] == "false negatives up on live traffic since v3.1.0"
    (deprecation,) = report["deprecations"]
    assert deprecation["version"] == "v3.1.0"
    assert deprecation["reason"] == "rolled back; superseded by the next release"
    assert deprecation["end_of_life"] == "2024-04-16T23:59:59.999999+00:00"


def test_demo_audit_checkpoints_pass(demo_output: str) -> None:
    report = audit_json(demo_output)

    assert {item["key"]: item["status"] for item in report["checkpoints"]} == {
        "approvals": "passed",
        "signatures": "passed",
        "end_of_life": "passed",
        "rollback_reasons": "passed",
        "integrity": "passed",
    }
    (end_of_life,) = [item for item in report["checkpoints"] if item["key"] == "end_of_life"]
    first_finding = end_of_life["findings"][0]["text"]
    assert first_finding.startswith("v3.1.0 reached its end of life at 2024-04-16T23:59:59+00:00")
    assert report["integrity"]["ok"] is True
    assert report["passed"] is True
