"""The commented-out channel blocks of the example ``broadcaster.toml``, switched on by the demo.

``broadcaster init`` writes the channels that need accounts (a CMS webhook, Facebook, SMS,
Telegram, Teams) as commented blocks below a marker line, so a new workspace loads without
secrets. The demo has the sandbox's secrets and switches on every block whose channel this
broadcaster can deliver to. The bot's identity comes with a Teams bot target, and with it
approvals in Teams: the ``[approval.identities]`` block and the commented ``teams_channel_id``
line of the ``[approval]`` section (a key of a table defined above the marker cannot be set
below it).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from broadcaster.fileio import atomic_write

__all__ = ["MARKER", "switch_on_account_blocks"]

#: The line after which the commented blocks start.
MARKER = "# Channels that need accounts."
#: Settings blocks (tables without an ``id``) switched on with the first Teams bot target.
_BOT_SETTINGS = ("teams_bot", "approval")
#: The ``[approval]`` line (above the marker) that sends approval cards to the approvers' channel.
_APPROVERS_CHANNEL = re.compile(r"^# (teams_channel_id = .*)$", re.MULTILINE)


def switch_on_account_blocks(
    config_path: Path, can_deliver: Callable[[str, str | None], bool]
) -> list[str]:
    """Uncomment each target block whose (channel, mode) ``can_deliver``; returns their ids.

    The settings blocks without an ``id`` (``[teams_bot]``, ``[approval.identities]``) and the
    ``[approval] teams_channel_id`` line are switched on when a Teams bot target is. Blocks are
    separated by blank lines; only lines starting with ``# `` inside a block (and that one line)
    are touched, so comments elsewhere in the file stay as they are.
    """
    text = config_path.read_text(encoding="utf-8")
    head, marker, tail = text.partition(MARKER)
    if not marker:
        return []
    blocks = tail.split("\n\n")
    chosen: list[str] = []
    modes: set[str | None] = set()
    settings: list[int] = []
    for index, block in enumerate(blocks):
        table = _parse(block)
        if table is None:
            continue
        if any(name in table for name in _BOT_SETTINGS):
            settings.append(index)
            continue
        target = table.get("targets", [{}])[0]
        if "id" in target and can_deliver(target["channel"], target.get("mode")):
            blocks[index] = _uncomment(block)
            chosen.append(target["id"])
            modes.add(target.get("mode"))
    if "bot" in modes:  # the bot's identity comes with the first target that needs it
        for index in settings:
            blocks[index] = _uncomment(blocks[index])
        head = _APPROVERS_CHANNEL.sub(r"\1", head, count=1)
    atomic_write(config_path, head + marker + "\n\n".join(blocks), mode=0o644)
    return chosen


def _parse(block: str) -> dict[str, Any] | None:
    """The TOML a commented block holds, or None for prose and anything that is not TOML."""
    lines = block.strip("\n").splitlines()
    if not lines or not all(line.startswith("# ") for line in lines):
        return None
    try:
        return tomllib.loads(_uncomment(block))
    except tomllib.TOMLDecodeError:
        return None


def _uncomment(block: str) -> str:
    return "\n".join(line[2:] if line.startswith("# ") else line for line in block.split("\n"))
