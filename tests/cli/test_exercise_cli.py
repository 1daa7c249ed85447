"""The sandbox's .env makes a workspace an exercise that cannot reach a real platform."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from broadcaster.config import TeamsWorkflowTarget, WebsiteWebhookTarget
from broadcaster.errors import ConfigError
from broadcaster.sandbox import URL_ENV_NAMES
from broadcaster.sandbox.credentials import Credentials, environment
from broadcaster.workspace import load_workspace
from tests.conftest import Cli

ROOT = "http://127.0.0.1:8765"
BANNER = "ÖVNING"
CMS_LITERAL = 'url = "https://cms.morbylanga.se/api/broadcaster"'
CMS_FROM_ENV = 'url = "env:MORBYLANGA_CMS_WEBHOOK_URL"'


def sandbox_env() -> dict[str, str]:
    """What `broadcaster sandbox` prints for a sandbox on ROOT (fixed credentials)."""
    return environment(ROOT, Credentials.generate(seed=9))


def write_env(folder: Path, env: dict[str, str]) -> None:
    (folder / ".env").write_text("".join(f"{k}={v}\n" for k, v in env.items()), "utf-8")


@pytest.fixture
def exercise_cli(workspace_dir: Path) -> Cli:
    """An `init` workspace with the sandbox's .env saved beside it."""
    write_env(workspace_dir, sandbox_env())
    return Cli(cwd=workspace_dir, env={"BROADCASTER_USER": "kommunikator"})


def test_every_command_says_it_is_an_exercise(exercise_cli: Cli, workspace_dir: Path) -> None:
    human = [
        ["check"],
        ["draft", "-t", "Övning: vattenläcka", "-b", "Koka vattnet."],
        ["list"],
        ["preview", "1"],
        ["submit", "1"],
        ["approve", "1", "--as", "anna.hasselbom"],
        ["approve", "1", "--as", "jens.odevall"],
        ["send", "1"],
        ["worker", "--until-idle"],
        ["status", "1"],
        ["audit", "1"],
        ["deadletters"],
    ]
    for args in human:
        result = exercise_cli(*args)
        assert result.exit_code == 0, (args, result.stderr)
        assert result.stdout.lstrip().startswith(BANNER), (args, result.stdout)
    for args in (["check"], ["list"], ["preview", "1"], ["status", "1"], ["audit", "1"]):
        result = exercise_cli(*args, "--json")
        assert result.exit_code == 0, (args, result.stderr)
        json.loads(result.stdout)  # the banner stays out of the JSON
        assert BANNER in result.stderr, args
    page = (workspace_dir / "site" / "borgholm" / "index.html").read_text(encoding="utf-8")
    assert "detta är en övning" in page  # broadcaster.toml says exercise = false


def test_no_banner_without_the_sandbox_env(cli: Cli) -> None:
    result = cli("list")
    assert result.exit_code == 0 and BANNER not in result.stdout + result.stderr


def test_a_bad_exercise_switch_is_a_clear_error(workspace_dir: Path) -> None:
    write_env(workspace_dir, {**sandbox_env(), "BROADCASTER_EXERCISE": "maybe"})
    result = Cli(cwd=workspace_dir, env={})("list")
    assert result.exit_code == 2
    assert "BROADCASTER_EXERCISE='maybe': write 1" in result.stderr
    assert "Traceback" not in result.stderr


# ---------------------------------------------------------------------------------------------
# The reference configuration (every target kind) against the sandbox


@pytest.fixture
def reference(shared_dir: Path, tmp_path: Path) -> Path:
    text = (shared_dir / "examples" / "broadcaster.toml").read_text(encoding="utf-8")
    assert CMS_LITERAL in text
    path = tmp_path / "broadcaster.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_sandbox_env_redirects_every_url_bearing_target(reference: Path) -> None:
    reference.write_text(reference.read_text("utf-8").replace(CMS_LITERAL, CMS_FROM_ENV), "utf-8")
    write_env(reference.parent, sandbox_env())
    workspace = load_workspace(reference, {})
    assert workspace.config.broadcaster.exercise
    assert all(workspace.env[name].startswith(ROOT + "/") for name in URL_ENV_NAMES)
    webhooks = [
        t.url if isinstance(t, WebsiteWebhookTarget) else t.webhook_url
        for t in workspace.config.targets
        if isinstance(t, WebsiteWebhookTarget | TeamsWorkflowTarget)
    ]
    assert len(webhooks) == 2
    assert all(url.get_secret_value().startswith(ROOT + "/") for url in webhooks)


def test_a_url_the_sandbox_cannot_redirect_is_refused(reference: Path) -> None:
    write_env(reference.parent, sandbox_env())
    with pytest.raises(ConfigError) as caught:
        load_workspace(reference, {})
    [problem] = caught.value.problems
    assert "targets[7] (web-morbylanga).url goes to cms.morbylanga.se" in problem
    assert 'write url = "env:NAME"' in problem


def test_a_missing_override_is_refused_for_each_target_it_leaves(reference: Path) -> None:
    reference.write_text(reference.read_text("utf-8").replace(CMS_LITERAL, CMS_FROM_ENV), "utf-8")
    env = sandbox_env()
    del env["BROADCASTER_FACEBOOK_API_URL"]
    write_env(reference.parent, env)
    with pytest.raises(ConfigError) as caught:
        load_workspace(reference, {})
    problems = caught.value.problems
    assert len(problems) == 2
    assert all("BROADCASTER_FACEBOOK_API_URL is not set" in p for p in problems)
    assert "fb-borgholm" in problems[0] and "fb-morbylanga" in problems[1]


def test_an_exercise_checks_approval_clicks_against_the_sandbox_keys(reference: Path) -> None:
    reference.write_text(reference.read_text("utf-8").replace(CMS_LITERAL, CMS_FROM_ENV), "utf-8")
    env = sandbox_env()
    del env["BROADCASTER_TEAMS_OPENID_URL"]
    write_env(reference.parent, env)
    with pytest.raises(ConfigError) as caught:
        load_workspace(reference, {})
    [problem] = caught.value.problems
    assert "BROADCASTER_TEAMS_OPENID_URL is not set, not to the sandbox" in problem
