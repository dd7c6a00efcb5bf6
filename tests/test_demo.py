"""The demo, the README's first command, runs end to end on real models."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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
