"""`broadcaster check` says each problem once, with everything it affects."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import Cli


def override(workspace_dir: Path, text: str) -> Path:
    path = workspace_dir / "templates" / "website" / "index.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_a_syntax_error_is_one_problem_not_one_per_target(cli: Cli, workspace_dir: Path) -> None:
    path = override(workspace_dir, "{% extends 'website/base.html' %}\n{{ entries }\n")
    result = cli("check", "--json")
    assert result.exit_code == 2
    problems = result.json()["problems"]
    assert len(problems) == 1, problems
    assert str(path) in problems[0] and "line 2" in problems[0]


def test_a_problem_shared_by_targets_names_them_all_once(cli: Cli, workspace_dir: Path) -> None:
    override(workspace_dir, "{{ organisation.namn }}\n")
    result = cli("check")
    assert result.exit_code == 2
    failures = [line for line in result.stdout.splitlines() if line.startswith("fail")]
    assert len(failures) == 1, result.stdout
    assert "web-borgholm, web-morbylanga" in failures[0]
    assert "organisation.namn is undefined" in failures[0]
