"""Help stays complete while it is fast: every command and option is shown with its help text."""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer.main
from typer._click import Command
from typer.core import TyperGroup, TyperOption

from broadcaster import help_cache
from broadcaster.app import open_app
from broadcaster.cli import app
from broadcaster.cli.root_help import render_root_help
from broadcaster.help_cache import CACHE_FILE, fingerprint
from broadcaster.model import Content
from broadcaster.store.announcements import get_announcement
from broadcaster.workspace import load_workspace
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


def test_the_cached_root_help_is_current() -> None:
    """`broadcaster --help` prints broadcaster/cli/root-help.txt while it matches the code."""
    stamp, _, page = Path(CACHE_FILE).read_text(encoding="utf-8").partition("\n")
    assert stamp == f"# fingerprint {fingerprint()}", "run `make help-cache`"
    assert page == render_root_help(), "run `make help-cache`"


TYPER_HELP = "import sys; sys.argv[0] = 'broadcaster'; from broadcaster.cli import main; main()"


def test_the_script_prints_what_typer_would(tmp_path: Path) -> None:
    env = {**os.environ, "COLUMNS": "100"}
    script = Path(sys.executable).with_name("broadcaster")
    fast = subprocess.run([script, "--help"], env=env, capture_output=True, text=True, cwd=tmp_path)
    typer_page = subprocess.run(
        [sys.executable, "-c", TYPER_HELP, "--help"],
        env=env,
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert fast.returncode == typer_page.returncode == 0
    assert fast.stdout == typer_page.stdout


def test_a_stale_or_too_wide_page_is_not_shown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    assert help_cache.cached_root_help() is not None
    monkeypatch.setenv("COLUMNS", "60")  # Typer would wrap to 60 columns
    assert help_cache.cached_root_help() is None
    monkeypatch.setenv("COLUMNS", "100")
    stale = tmp_path / "root-help.txt"
    stale.write_text("# fingerprint 00000000\nUsage: an old page\n", encoding="utf-8")
    monkeypatch.setattr(help_cache, "CACHE_FILE", str(stale))
    assert help_cache.cached_root_help() is None


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


# ---------------------------------------------------------------------------------------------
# Defaults that help states in words are what the code does

#: (command, option) -> the words of its help; each has a test below (or the one named).
STATED_DEFAULTS = {
    ("draft", "--to"): "default: all",
    ("draft", "--language"): "default: [broadcaster] language, sv",
    ("edit", "--to"): "default: unchanged",
    ("edit", "--language"): "default: unchanged",
    **{
        (name, "--as"): "default: BROADCASTER_USER, else your OS account"
        for name in ("draft", "edit", "submit", "cancel", "approve", "reject", "send")
    },
    ("unschedule", "--as"): "default: BROADCASTER_USER, else your OS account",
    # tests/cli/test_approver_cli.py::test_show_of_an_older_revision_and_of_nothing
    ("show", "--revision"): "default: the current one",
    ("deadletters", "--as"): "default: BROADCASTER_USER, else your OS account",
    # tests/test_demo.py::test_demo_without_dir_keeps_a_new_temporary_folder
    ("demo", "--dir"): "default: a new temporary folder, kept",
}


def test_every_default_stated_in_words_is_listed_and_tested() -> None:
    stated = {
        (name, param.opts[-1]): flat(param.help or "")
        for name, command in commands().items()
        for param in command.params
        if isinstance(param, TyperOption) and "default" in (param.help or "").lower()
    }
    assert sorted(stated) == sorted(STATED_DEFAULTS)
    for key, words in STATED_DEFAULTS.items():
        assert words in stated[key], key


def stored(workspace_dir: Path, announcement_id: int) -> Content:
    app = open_app(load_workspace(workspace_dir / "broadcaster.toml", {}))
    try:
        with app.store.read() as conn:
            return get_announcement(conn, announcement_id).revision.content
    finally:
        app.close()


def test_draft_defaults_to_all_targets_and_the_workspace_language(
    cli: Cli, workspace_dir: Path
) -> None:
    config = workspace_dir / "broadcaster.toml"
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace("[approval]", 'language = "en"\n\n[approval]'), "utf-8")
    result = cli("draft", "-t", "Water", "-b", "Boil it.", "--json")
    assert result.exit_code == 0, result.stderr
    content = stored(workspace_dir, result.json()["id"])
    assert content.targets == ("web-borgholm", "web-morbylanga")
    assert content.language == "en"


def test_edit_keeps_targets_and_language_by_default(cli: Cli, workspace_dir: Path) -> None:
    draft = cli("draft", "-t", "T", "-b", "B", "--to", "borgholm", "--language", "en", "--json")
    assert draft.exit_code == 0, draft.stderr
    edited = cli("edit", str(draft.json()["id"]), "--title", "T2", "--json")
    assert edited.exit_code == 0, edited.stderr
    content = stored(workspace_dir, draft.json()["id"])
    assert (content.title, content.targets, content.language) == ("T2", ("web-borgholm",), "en")


def test_as_defaults_to_broadcaster_user(workspace_dir: Path) -> None:
    cli = Cli(cwd=workspace_dir, env={"BROADCASTER_USER": "lena.kommunikator"})
    assert cli("draft", "-t", "T", "-b", "B").exit_code == 0
    assert cli("list", "--json").json()["announcements"][0]["author"] == "lena.kommunikator"
