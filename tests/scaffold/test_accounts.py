"""The example workspace's account channels: commented out for `init`, switched on by the demo."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from broadcaster.config import FacebookTarget, TeamsBotTarget, TelegramTarget
from broadcaster.sandbox.credentials import (
    APPROVER_OBJECT_IDS,
    TEAMS_CHANNEL_IDS,
    Credentials,
    environment,
)
from broadcaster.scaffold import init_workspace
from broadcaster.scaffold.accounts import switch_on_account_blocks
from broadcaster.workspace import load_workspace

SANDBOX_ENV = environment("http://127.0.0.1:9", Credentials.generate(seed=1))


@pytest.fixture
def config(tmp_path: Path) -> Path:
    init_workspace(tmp_path / "ws")
    return tmp_path / "ws" / "broadcaster.toml"


def test_a_new_workspace_loads_without_any_account(config: Path) -> None:
    workspace = load_workspace(config, {})
    assert {t.channel for t in workspace.config.targets} == {"website"}


def test_the_demo_switches_on_only_what_it_can_deliver(config: Path) -> None:
    before = config.read_text(encoding="utf-8")
    chosen = switch_on_account_blocks(config, lambda channel, mode: channel == "facebook")
    assert chosen == ["fb-borgholm", "fb-morbylanga"]
    workspace = load_workspace(config, SANDBOX_ENV)
    kinds = {type(t) for t in workspace.config.targets}
    assert FacebookTarget in kinds and TelegramTarget not in kinds
    assert workspace.config.teams_bot is None  # no bot target, so no bot identity either
    assert workspace.config.approval.teams_channel_id is None  # nor approval cards in Teams
    assert workspace.config.approval.identities == {}
    # Only the chosen blocks changed: the prose and the other blocks are as init wrote them.
    after = config.read_text(encoding="utf-8")
    assert after.count("\n") == before.count("\n")
    assert '# id = "telegram-oland"' in after and '\nid = "fb-borgholm"' in after


def test_a_teams_bot_target_brings_the_bot_identity(config: Path) -> None:
    chosen = switch_on_account_blocks(config, lambda channel, mode: mode == "bot")
    assert chosen == ["teams-borgholm-staff"]
    workspace = load_workspace(config, SANDBOX_ENV)
    assert [type(t) for t in workspace.config.targets][-1] is TeamsBotTarget
    assert workspace.config.teams_bot is not None


def test_the_bot_brings_approvals_in_the_reference_approvers_channel(config: Path) -> None:
    """Approval cards go to the sandbox's approvers' channel; clicks map to its object ids."""
    before = config.read_text(encoding="utf-8")
    assert '# teams_channel_id = "' in before and "# [approval.identities]" in before
    assert load_workspace(config, {}).config.approval.teams_channel_id is None
    switch_on_account_blocks(config, lambda channel, mode: mode == "bot")
    approval = load_workspace(config, SANDBOX_ENV).config.approval
    assert approval.teams_channel_id == TEAMS_CHANNEL_IDS[0]
    people = ("jens.odevall", "anna.hasselbom", "ann.willsund")  # as examples/broadcaster.toml
    assert approval.identities == dict(zip(people, APPROVER_OBJECT_IDS, strict=True))
    assert config.read_text(encoding="utf-8").count("\n") == before.count("\n")


def test_everything_on_is_the_reference_set_of_channels(config: Path) -> None:
    switch_on_account_blocks(config, lambda channel, mode: True)
    workspace = load_workspace(config, SANDBOX_ENV)
    assert sorted(t.id for t in workspace.config.targets) == [
        "cms-morbylanga",
        "fb-borgholm",
        "fb-morbylanga",
        "sms-borgholm",
        "sms-morbylanga",
        "teams-borgholm-staff",
        "teams-morbylanga-staff",
        "telegram-oland",
        "web-borgholm",
        "web-morbylanga",
    ]
    assert stat.S_IMODE(config.stat().st_mode) == 0o644


def test_the_cms_target_reads_its_url_and_secret_from_the_sandbox_env(config: Path) -> None:
    from broadcaster.config import WebsiteWebhookTarget

    chosen = switch_on_account_blocks(config, lambda channel, mode: mode == "webhook")
    assert chosen == ["cms-morbylanga"]
    workspace = load_workspace(config, SANDBOX_ENV)
    (cms,) = [t for t in workspace.config.targets if isinstance(t, WebsiteWebhookTarget)]
    assert cms.url.get_secret_value() == SANDBOX_ENV["MORBYLANGA_CMS_WEBHOOK_URL"]
    assert "?token=" in cms.url.get_secret_value()
    assert cms.secret.get_secret_value() == SANDBOX_ENV["MORBYLANGA_CMS_WEBHOOK_SECRET"]


def test_the_example_lists_are_there_for_the_sms_targets(config: Path) -> None:
    """Each SMS target's list has an example file of fictitious numbers, private to the owner."""
    from broadcaster.config import SmsTarget
    from broadcaster.recipients import parse_csv

    switch_on_account_blocks(config, lambda channel, mode: channel == "sms")
    workspace = load_workspace(config, SANDBOX_ENV)
    lists = [t.list for t in workspace.config.targets if isinstance(t, SmsTarget)]
    assert lists == ["borgholm-residents", "morbylanga-residents"]
    seen: set[str] = set()
    for name in lists:
        path = workspace.path(f"lists/{name}.csv")
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        parsed = parse_csv(path)
        assert not parsed.skipped and len(parsed.members) == 45
        numbers = {m.number for m in parsed.members}
        # PTS's series for fiction, 070-174 06 05 .. 99: no real person gets the demo's texts.
        assert all(n.startswith("+46701740") and 605 <= int(n[-3:]) <= 699 for n in numbers)
        assert not numbers & seen
        seen |= numbers
