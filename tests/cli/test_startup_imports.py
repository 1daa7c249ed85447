"""A CLI that answers at once: the commands typed most often import only what they use.

Timing belongs to ``bench/cli_startup.py``; this checks the behaviour behind it. Each command runs
in a fresh interpreter through the console script's entry point, ``broadcaster.__main__:main``, and
reports ``sys.modules`` as it exits. (Python's import profiler would miss modules loaded with
``importlib.import_module``, which is how the channel registry loads adapters.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

#: Runs `broadcaster ARGS` as the console script does and writes sys.modules to a file at exit.
PROBE = """
import atexit, json, sys
out, sys.argv = sys.argv[1], ["broadcaster", *sys.argv[2:]]
atexit.register(lambda: open(out, "w").write(json.dumps(sorted(sys.modules))))
from broadcaster.__main__ import main
main()
"""

#: Rendering, HTTP, the platform SDKs, the web server, migrations and the PostgreSQL driver.
NEVER_FOR_READING = (
    "jinja2",
    "markdown_it",
    "httpx",
    "requests",
    "telegram",
    "facebook",
    "twilio",
    "msal",
    "jwt",
    "phonenumbers",
    "starlette",
    "uvicorn",
    "alembic",
    "psycopg",
    "sqlalchemy.dialects.postgresql",
    "broadcaster.rendering",
    "broadcaster.channels.base",
    "broadcaster.channels.website",
    "broadcaster.sandbox",
)
#: The root help is a cached page (broadcaster/help_cache.py): not even Typer is started.
NEVER_FOR_HELP = (*NEVER_FOR_READING, "sqlalchemy", "pydantic", "rich", "dotenv", "typer")
#: A command's help needs Typer (whose option parsing loads pydantic), but neither the
#: database, the configuration nor rich.
NEVER_FOR_COMMAND_HELP = (*NEVER_FOR_READING, "sqlalchemy", "broadcaster.config", "rich", "dotenv")


def user_env() -> dict[str, str]:
    env = {**os.environ, "BROADCASTER_USER": "anna.hasselbom"}
    env.pop("BROADCASTER_CONFIG", None)
    return env


def imported_modules(cwd: Path, *args: str) -> set[str]:
    """Every module `broadcaster ARGS` has loaded when it exits."""
    out = cwd / "modules.json"
    run = subprocess.run(
        [sys.executable, "-c", PROBE, str(out), *args],
        cwd=cwd,
        env=user_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    return set(json.loads(out.read_text(encoding="utf-8")))


def loaded(modules: set[str], name: str) -> bool:
    return any(module == name or module.startswith(name + ".") for module in modules)


@pytest.fixture
def one_announcement(workspace_dir: Path) -> Path:
    """A workspace whose database exists and holds announcement 1 (so no command migrates)."""
    draft = [sys.executable, "-m", "broadcaster", "draft", "-t", "Vattenläcka", "-b", "Koka."]
    subprocess.run(draft, cwd=workspace_dir, env=user_env(), check=True, capture_output=True)
    return workspace_dir


def test_help_imports_no_service(tmp_path: Path) -> None:
    modules = imported_modules(tmp_path, "--help")
    assert loaded(modules, "broadcaster.help_cache")  # the probe sees imports at all
    assert sorted(name for name in NEVER_FOR_HELP if loaded(modules, name)) == []


def test_command_help_imports_no_service(tmp_path: Path) -> None:
    modules = imported_modules(tmp_path, "list", "--help")
    assert loaded(modules, "typer")
    assert sorted(name for name in NEVER_FOR_COMMAND_HELP if loaded(modules, name)) == []


@pytest.mark.parametrize(
    "command",
    [["list", "--json"], ["status", "1", "--json"], ["status", "--json"]],
    ids=" ".join,
)
def test_reading_commands_import_no_renderer_sdk_or_postgres(
    one_announcement: Path, command: list[str]
) -> None:
    modules = imported_modules(one_announcement, *command)
    assert loaded(modules, "broadcaster.reports") and loaded(modules, "sqlalchemy")
    assert sorted(name for name in NEVER_FOR_READING if loaded(modules, name)) == []
    assert not loaded(modules, "rich")  # --json output is plain json.dumps


def test_the_probe_sees_a_command_that_renders(one_announcement: Path) -> None:
    """preview must load Jinja2: the lists above are checked against real imports."""
    modules = imported_modules(one_announcement, "preview", "1", "--json")
    assert loaded(modules, "jinja2") and loaded(modules, "broadcaster.channels.website")
