"""The README's Python examples run as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)


def test_readme_has_python_example() -> None:
    assert python_blocks()


@pytest.mark.parametrize("index", range(len(python_blocks())))
def test_readme_example_runs(index: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("REGISTRY_DATABASE_URL", raising=False)
    exec(compile(python_blocks()[index], f"README.md block {index}", "exec"), {})
    output = capsys.readouterr().out
    assert "v3.0.0 dev" in output
    assert "who may still approve: bob, carol" in output
    assert (tmp_path / "example-registry" / "events.sqlite3").is_file()


def test_readme_commands_exist() -> None:
    text = README.read_text()
    for command in ("bash scripts/demo", "bash scripts/test"):
        assert command in text
        script = README.parent / command.split()[1]
        assert script.is_file()
