"""`broadcaster sandbox` at the command line: a .env that makes the reference workspace load."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from broadcaster.cli.sandbox_cmd import DEFAULT_PORT as CLI_DEFAULT_PORT
from broadcaster.sandbox import (
    CREDENTIAL_ENV_NAMES,
    DEFAULT_PORT,
    EXERCISE_ENV_NAMES,
    URL_ENV_NAMES,
)
from broadcaster.workspace import load_workspace


def test_cli_default_port_is_the_sandbox_default() -> None:
    assert CLI_DEFAULT_PORT == DEFAULT_PORT


def test_sandbox_env_runs_the_reference_workspace(tmp_path: Path, shared_dir: Path) -> None:
    # The CMS webhook's URL read from .env (DESIGN §4), so that the sandbox can redirect it; a
    # literal URL is refused in an exercise (tests/cli/test_exercise_cli.py).
    reference = (shared_dir / "examples" / "broadcaster.toml").read_text(encoding="utf-8")
    (tmp_path / "broadcaster.toml").write_text(
        reference.replace(
            'url = "https://cms.morbylanga.se/api/broadcaster"',
            'url = "env:MORBYLANGA_CMS_WEBHOOK_URL"',
        ),
        encoding="utf-8",
    )
    env_file = tmp_path / "sandbox.env"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "broadcaster",
            "sandbox",
            "--port",
            "0",
            "--env-file",
            str(env_file),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        values: dict[str, str] = {}
        wanted = set(URL_ENV_NAMES) | set(CREDENTIAL_ENV_NAMES) | set(EXERCISE_ENV_NAMES)
        while not wanted <= set(values):
            line = process.stdout.readline()
            assert line, process.stderr.read() if process.stderr else "sandbox exited"
            if not line.startswith("#") and "=" in line:
                key, _, value = line.rstrip("\n").partition("=")
                values[key] = value
        (tmp_path / ".env").write_text("".join(f"{k}={v}\n" for k, v in values.items()))
        workspace = load_workspace(tmp_path / "broadcaster.toml", {})  # secrets from .env only
        assert len(workspace.config.targets) == 9
        assert workspace.config.broadcaster.exercise
        assert all(
            v.startswith("http://127.0.0.1:") for k, v in values.items() if k in URL_ENV_NAMES
        )
        assert env_file.stat().st_mode & 0o077 == 0
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=20)  # waits, and closes the pipes
    assert process.returncode == 0
