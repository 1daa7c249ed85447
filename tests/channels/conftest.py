"""Fixtures shared by the channel tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from broadcaster.app import App, open_app
from broadcaster.sandbox import Sandbox
from broadcaster.workspace import load_workspace
from tests.channels.test_sms import sms_toml
from tests.conftest import set_database_url


@pytest.fixture
def sms_app(workspace_dir: Path, database_url: str, sandbox: Sandbox) -> Iterator[App]:
    """Borgholm's SMS target on each test database, pointed at the sandbox's Twilio (the real
    clock: Twilio stamps its messages with it)."""
    set_database_url(workspace_dir, database_url)
    config = workspace_dir / "broadcaster.toml"
    config.write_text(config.read_text(encoding="utf-8") + sms_toml(), encoding="utf-8")
    env = "".join(f"{name}={value}\n" for name, value in sandbox.env().items())
    (workspace_dir / ".env").write_text(env, encoding="utf-8")
    app = open_app(load_workspace(config, {}))
    yield app
    app.close()
