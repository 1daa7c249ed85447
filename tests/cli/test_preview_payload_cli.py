"""`preview --json`: beside what the reader sees, the payload exactly as the platform gets it."""

from __future__ import annotations

import html
from pathlib import Path
from typing import ClassVar

import pytest

from broadcaster.channels.base import Channel, Receipt, Rendered
from broadcaster.rendering.message import Message
from tests.conftest import Cli
from tests.fakes import add_telegram_target, use_registry, website_and

TITLE = "Vatten <b>kokas</b> & dricks"


class HtmlTelegram(Channel):
    """A Telegram-like adapter: its payload is HTML, its reader sees plain text."""

    name: ClassVar[str] = "telegram"

    def render(self, message: Message) -> Rendered:
        return Rendered(text=f"<b>{html.escape(message.content.title)}</b>")

    def readable(self, message: Message, rendered: Rendered) -> str:
        return message.content.title

    async def send(self, message: Message, rendered: Rendered) -> Receipt:
        raise AssertionError("preview never sends")


@pytest.fixture
def cli_with_telegram(cli: Cli, workspace_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    add_telegram_target(workspace_dir)
    use_registry(monkeypatch, website_and(HtmlTelegram))
    return cli


def drafted(cli: Cli) -> str:
    result = cli("draft", "--title", TITLE, "--body", "Text", "--json")
    assert result.exit_code == 0, result.stderr
    return str(result.json()["id"])


def test_preview_json_has_the_raw_payload_beside_the_readable_text(cli_with_telegram: Cli) -> None:
    result = cli_with_telegram("preview", drafted(cli_with_telegram), "--json")
    assert result.exit_code == 0, result.stderr
    targets = {t["target"]: t for t in result.json()["targets"]}
    telegram = targets["telegram-oland"]
    assert telegram["text"] == TITLE  # as read
    assert telegram["payload"] == {"text": "<b>Vatten &lt;b&gt;kokas&lt;/b&gt; &amp; dricks</b>"}
    website = targets["web-borgholm"]
    assert website["payload"] == {"files": website["files"]}  # files: no text payload
    assert "index.html" in website["payload"]["files"]
    assert TITLE in website["text"]


def test_the_human_preview_shows_no_payload(cli_with_telegram: Cli) -> None:
    result = cli_with_telegram("preview", drafted(cli_with_telegram), "--target", "telegram-oland")
    assert result.exit_code == 0, result.stderr
    assert TITLE in result.stdout
    assert "&lt;" not in result.stdout and "payload" not in result.stdout


def test_a_target_that_cannot_render_has_no_payload(cli: Cli, workspace_dir: Path) -> None:
    template = workspace_dir / "templates" / "website" / "index.html"
    template.parent.mkdir(parents=True, exist_ok=True)
    template.write_text("{{ organisation.namn }}\n", encoding="utf-8")
    result = cli("preview", drafted(cli), "--json")
    assert result.exit_code == 2
    for target in result.json()["targets"]:
        assert target["payload"] is None
        assert "organisation.namn is undefined" in target["errors"][0]
