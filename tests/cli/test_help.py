"""Help stays complete while it is fast: every command and option is shown with its help text."""

from __future__ import annotations

import inspect

import pytest
import typer.main
from typer._click import Command
from typer.core import TyperGroup, TyperOption

from broadcaster.cli import app
from tests.conftest import Cli


def root() -> TyperGroup:
    command = typer.main.get_command(app)
    assert isinstance(command, TyperGroup)
    return command


def commands() -> dict[str, Command]:
    return dict(root().commands)


def flat(text: str) -> str:
    """Text with line wrapping undone, so wrapped help can be searched."""
    return " ".join(text.split())


def first_sentence(command: Command) -> str:
    summary = inspect.cleandoc(command.help or "").split("\n\n")[0]
    return flat(summary)


def test_root_help_lists_every_command_with_its_whole_summary(cli: Cli) -> None:
    result = cli("--help")
    assert result.exit_code == 0
    shown = flat(result.stdout)
    assert len(commands()) >= 17
    for name, command in commands().items():
        assert f"{name} {first_sentence(command)}" in shown, name
    assert "..." not in shown.partition("Commands:")[2]  # no summary is cut short
    assert "--config FILE" in shown and "--version" in shown


@pytest.mark.parametrize("name", sorted(commands()))
def test_command_help_shows_every_option_with_its_help(cli: Cli, name: str) -> None:
    result = cli(name, "--help")
    assert result.exit_code == 0, result.stderr
    shown = flat(result.stdout)
    assert first_sentence(commands()[name]) in shown
    for param in commands()[name].params:
        if isinstance(param, TyperOption) and not param.hidden:
            assert param.opts[-1] in shown, (name, param.opts)
            if param.help:
                assert flat(param.help) in shown, (name, param.opts)
