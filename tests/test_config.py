"""Configuration: the reference file loads; every kind of mistake is one clear line."""

from __future__ import annotations

from pathlib import Path

import pytest

from broadcaster.config import (
    FacebookTarget,
    SmsTarget,
    TeamsBotTarget,
    TeamsWorkflowTarget,
    TelegramTarget,
    WebsiteStaticTarget,
    WebsiteWebhookTarget,
)
from broadcaster.errors import ConfigError
from broadcaster.sandbox import CREDENTIAL_ENV_NAMES
from broadcaster.workspace import find_config, load_workspace

# The names the reference file reads (a sandbox test checks they are exactly these).
REFERENCE_SECRETS = {name: f"value-of-{name.lower()}" for name in CREDENTIAL_ENV_NAMES}
REFERENCE_SECRETS["TEAMS_MORBYLANGA_WORKFLOW_URL"] = "https://example.logic.azure.com/x?sig=y"


@pytest.fixture
def reference_text(shared_dir: Path) -> str:
    """The reference configuration, whose key names are the contract."""
    return (shared_dir / "examples" / "broadcaster.toml").read_text(encoding="utf-8")


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "broadcaster.toml"
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(path: Path, env: dict[str, str]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_workspace(path, env)
    return caught.value.problems


def test_reference_configuration_loads_every_target_kind(
    tmp_path: Path, reference_text: str
) -> None:
    path = write_config(tmp_path, reference_text)
    workspace = load_workspace(path, REFERENCE_SECRETS)
    kinds = [type(t) for t in workspace.config.targets]
    assert kinds == [
        FacebookTarget,
        FacebookTarget,
        SmsTarget,
        SmsTarget,
        TeamsBotTarget,
        TeamsWorkflowTarget,
        WebsiteStaticTarget,
        WebsiteWebhookTarget,
        TelegramTarget,
    ]
    facebook = workspace.config.targets[0]
    assert isinstance(facebook, FacebookTarget)
    assert facebook.access_token.get_secret_value() == "value-of-fb_borgholm_page_token"
    assert workspace.config.teams_bot is not None
    assert workspace.config.approval.identities["anna.hasselbom"].endswith("0002")
    groups = workspace.config.group_members()
    assert groups["staff"] == ["teams-borgholm-staff", "teams-morbylanga-staff"]
    assert "telegram-oland" in groups["borgholm"]
    assert len(groups["all"]) == 9


def test_secrets_never_show_in_repr_or_dump(tmp_path: Path, reference_text: str) -> None:
    workspace = load_workspace(write_config(tmp_path, reference_text), REFERENCE_SECRETS)
    rendered = repr(workspace.config) + str(workspace.config.model_dump())
    for secret in REFERENCE_SECRETS.values():
        assert secret not in rendered


def test_every_missing_secret_is_named_once_with_file_and_key(
    tmp_path: Path, reference_text: str
) -> None:
    path = write_config(tmp_path, reference_text)
    env = dict(REFERENCE_SECRETS)
    del env["FB_APP_SECRET"], env["TELEGRAM_BOT_TOKEN"]
    problems = problems_of(path, env)
    assert all(line.startswith(f"{path}: ") for line in problems)
    # One missing variable is one problem, said once with every key that reads it.
    [facebook] = [p for p in problems if "FB_APP_SECRET" in p]
    assert "targets[0] (fb-borgholm).app_secret, targets[1] (fb-morbylanga).app_secret:" in facebook
    assert any("targets[8] (telegram-oland).bot_token" in p for p in problems)
    assert len(problems) == 2


def test_dotenv_supplies_secrets_and_the_environment_wins(
    tmp_path: Path, reference_text: str
) -> None:
    path = write_config(tmp_path, reference_text)
    env = dict(REFERENCE_SECRETS)
    del env["TELEGRAM_BOT_TOKEN"]
    env["FB_APP_SECRET"] = "from-environment"
    (tmp_path / ".env").write_text(
        "TELEGRAM_BOT_TOKEN=from-dotenv\nFB_APP_SECRET=from-dotenv\n", encoding="utf-8"
    )
    config = load_workspace(path, env).config
    telegram, facebook = config.targets[8], config.targets[0]
    assert isinstance(telegram, TelegramTarget) and isinstance(facebook, FacebookTarget)
    assert telegram.bot_token.get_secret_value() == "from-dotenv"
    assert facebook.app_secret.get_secret_value() == "from-environment"


BROKEN = [
    pytest.param(
        ('page_id = "111111111111111"', 'page_id = "111111111111111"\nbogus = 1'),
        "targets[0] (fb-borgholm).bogus: unknown key",
        id="unknown-key",
    ),
    pytest.param(
        ('access_token = "env:FB_BORGHOLM_PAGE_TOKEN"', 'access_token = "EAAB-literal"'),
        "targets[0] (fb-borgholm).access_token: secrets are not written in the configuration",
        id="literal-secret",
    ),
    pytest.param(
        ('id = "fb-morbylanga"', 'id = "fb-borgholm"'),
        "targets[1] (fb-borgholm).id: duplicate id 'fb-borgholm'",
        id="duplicate-target",
    ),
    pytest.param(
        ('id = "sms-borgholm"', 'id = "SMS Borgholm"'),
        "targets[2] (SMS Borgholm).id: use lowercase letters",
        id="bad-id",
    ),
    pytest.param(
        ('kommunkod = "0840"', 'kommunkod = "840"'),
        "organisations[1] (morbylanga).kommunkod: must be the four-digit SCB kommunkod",
        id="bad-kommunkod",
    ),
    pytest.param(
        ('website = "https://www.borgholm.se"', 'website = "www.borgholm.se"'),
        "organisations[0] (borgholm).website: 'www.borgholm.se' is not an http(s) URL",
        id="bad-url",
    ),
    pytest.param(
        ('channel = "telegram"', 'channel = "telegraph"'),
        "targets[8] (telegram-oland): unknown channel or mode",
        id="unknown-channel",
    ),
    pytest.param(
        ('mode = "webhook"', 'mode = "ftp"'),
        "targets[7] (web-morbylanga): unknown channel or mode",
        id="unknown-mode",
    ),
    pytest.param(
        ('"telegram-oland"]', '"telegram-oland", "fax-oland"]'),
        "groups.public: unknown target 'fax-oland'",
        id="group-unknown-target",
    ),
    pytest.param(
        ('organisation = "borgholm"\nchat_id', 'organisation = "kalmar"\nchat_id'),
        "targets[8] (telegram-oland).organisation: unknown organisation 'kalmar'",
        id="unknown-organisation",
    ),
    pytest.param(
        ('timezone = "Europe/Stockholm"', 'timezone = "Europe/Öland"'),
        "broadcaster.timezone: unknown time zone 'Europe/Öland'",
        id="bad-timezone",
    ),
    pytest.param(
        ("required = 2", "required = 4"),
        "approval.required: 4 approvals needed but only 3 approvers listed",
        id="impossible-approval",
    ),
    pytest.param(
        (
            'sender = "Borgholm"',
            'sender = "Borgholm"\nmessaging_service_sid = "MG' + "0" * 32 + '"',
        ),
        "targets[2] (sms-borgholm): set exactly one of sender and messaging_service_sid",
        id="sms-two-senders",
    ),
    pytest.param(
        ("\n[teams_bot]", "\n[teams_robot]"),
        "teams_robot: unknown key",
        id="unknown-section",
    ),
]


@pytest.mark.parametrize(("edit", "expected"), BROKEN)
def test_broken_configuration_is_one_clear_line(
    tmp_path: Path, reference_text: str, edit: tuple[str, str], expected: str
) -> None:
    old, new = edit
    text = reference_text
    assert old in text, "the edit no longer applies to the reference file"
    path = write_config(tmp_path, text.replace(old, new, 1))
    problems = problems_of(path, REFERENCE_SECRETS)
    assert any(f"{path}: {expected}" in p for p in problems), problems


def test_bot_mode_without_teams_bot_section_is_refused(tmp_path: Path, reference_text: str) -> None:
    text = reference_text
    start = text.index("\n[teams_bot]")
    end = text.index("\n[[organisations]]")
    path = write_config(tmp_path, text[:start] + text[end:])
    problems = problems_of(path, REFERENCE_SECRETS)
    assert any(
        "targets[4] (teams-borgholm-staff).mode: mode 'bot' needs a [teams_bot] section" in p
        for p in problems
    )


def test_invalid_toml_names_file_and_line(tmp_path: Path) -> None:
    path = write_config(tmp_path, '[broadcaster]\ntimezone = "Europe/Stockholm\n')
    (problem,) = problems_of(path, {})
    assert problem.startswith(f"{path}: not valid TOML")
    assert "line 2" in problem


def test_find_config_order(tmp_path: Path) -> None:
    (tmp_path / "a.toml").write_text("")
    (tmp_path / "broadcaster.toml").write_text("")
    env = {"BROADCASTER_CONFIG": str(tmp_path / "a.toml")}
    assert find_config(None, {}, tmp_path) == tmp_path / "broadcaster.toml"
    assert find_config(None, env, tmp_path) == tmp_path / "a.toml"
    (tmp_path / "b.toml").write_text("")
    assert find_config("b.toml", env, tmp_path) == tmp_path / "b.toml"
    with pytest.raises(ConfigError, match="no configuration file here"):
        find_config(None, {}, tmp_path / "elsewhere")
