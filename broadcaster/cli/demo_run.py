"""``broadcaster demo``: the whole flow once, on the embedded defaults (run by demo_cmd.py).

A fresh example workspace, the platform sandbox started in this process with every channel
that needs an account switched on against it, the seed incident's first update drafted by the
communications officer and submitted. ``broadcaster serve`` runs in this process too: its worker
posts the approval card in the approvers' Teams channel, the sandbox (acting as Teams) clicks
Approve on it as one approver — a signed request to the bot's endpoint — and the other approves
at the command line. That last approval sends it; the worker delivers it and updates the card.
The result: per target, and for the approvers' channel, what the sandbox says arrived.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from broadcaster.app import App, open_app
from broadcaster.approval import approve
from broadcaster.approval_card_queue import cards_enabled
from broadcaster.authoring import DraftInput, create_draft, submit
from broadcaster.channels.registry import ChannelRegistry
from broadcaster.cli.demo_teams import (
    BotConnector,
    TeamsPlayer,
    card_status,
    click_approve,
    posted_card,
    serving,
    wait_for,
)
from broadcaster.config import SmsTarget, TargetConfig, WebsiteStaticTarget
from broadcaster.dispatch import dispatch_revision
from broadcaster.errors import BroadcastError, InputError
from broadcaster.fileio import atomic_write
from broadcaster.identity import TRUSTED_NAME, os_account
from broadcaster.model import AnnouncementState, Severity
from broadcaster.recipients import RecipientLists, import_list
from broadcaster.reports import announcement_status
from broadcaster.scaffold import example_update, init_workspace
from broadcaster.scaffold.accounts import switch_on_account_blocks
from broadcaster.store.announcements import get_announcement
from broadcaster.worker_runtime import run_worker
from broadcaster.workspace import CONFIG_FILENAME, load_workspace

__all__ = ["DEMO_BODY", "DEMO_SMS", "DEMO_TITLE", "CardArrival", "DemoResult", "run_demo"]

OFFICER = "kommunikator"
#: Who approves, in order: the first clicks Approve on the card in Teams, the second approves at
#: the command line (and so sends it).
APPROVERS = ("anna.hasselbom", "jens.odevall")
DEMO_TITLE = "Dataintrång hos Borgholms och Mörbylånga kommuner"
DEMO_BODY = example_update()  # the uppdatering.md that `broadcaster init` writes
#: The update's short form for SMS (its "sms" override), as an officer writes one: the full text
#: would take a dozen segments per recipient, and the SMS targets allow three.
DEMO_SMS = (
    "Servrarna är nedstängda efter ett dataintrång. Ring Borgholm 0485-880 00, "
    "Mörbylånga 0485-470 00. Trygghetslarmen fungerar."
)


@dataclass(frozen=True)
class CardArrival:
    """The approval card in the approvers' channel: where it is and what the sandbox got."""

    channel_id: str
    activity_id: str
    #: What the sandbox accepted in that channel ("1 card, 2 updates").
    arrived: str


@dataclass(frozen=True)
class DemoResult:
    """Where the demo left its workspace and what it produced."""

    workspace: Path
    announcement_id: int
    status: dict[str, Any]
    timezone: str
    pages: list[Path]
    #: Target id -> what the sandbox recorded arriving for it (empty for the static sites).
    arrivals: dict[str, str]
    #: The approval card the bot posted in the approvers' channel.
    card: CardArrival


class PlatformSandbox(Protocol):
    """The running platform emulators (``broadcaster.sandbox.Sandbox``), handed in by the CLI:
    the core does not import the sandbox."""

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        ...

    @property
    def records(self) -> Any:
        """What the emulators received (``find(platform, direction=..., method=...)``)."""
        ...

    @property
    def teams(self) -> TeamsPlayer:
        """Teams, clicking on the cards the bot posted."""
        ...

    @property
    def connector(self) -> BotConnector:
        """The Bot Connector: what the bot posted in Teams, and updated."""
        ...

    def env(self) -> dict[str, str]:
        """The ``.env`` entries that point a workspace at these emulators."""
        ...


def run_demo(
    directory: Path | None,
    environ: Mapping[str, str],
    say: Callable[[str], None],
    sandbox: PlatformSandbox,
) -> DemoResult:
    """Run the demo in ``directory`` (a new temporary folder when None) against ``sandbox``,
    narrating via ``say``."""
    root = (directory or Path(tempfile.mkdtemp(prefix="broadcaster-demo-"))).resolve()
    init_workspace(root)
    say(f"Created an example workspace for Borgholm and Mörbylånga in {root}")
    switched_on = _point_at_sandbox(root, sandbox.env())
    say(
        f"Started the platform sandbox at {sandbox.base_url} and switched on "
        f"{', '.join(switched_on) or 'no account channel'} against it (an exercise)"
    )
    workspace = load_workspace(root / CONFIG_FILENAME, environ)
    app = open_app(workspace)
    try:
        _import_example_lists(app, say)
        announcement_id, activity_id = _send_the_update(app, say, sandbox)
        status = announcement_status(app, announcement_id)
        numbers = _list_numbers(app)
    finally:
        app.close()
    arrivals = {t.id: _arrived(sandbox, t, numbers) for t in workspace.config.targets}
    channel = workspace.config.approval.teams_channel_id or ""
    card = CardArrival(channel, activity_id, _card_arrived(sandbox, channel))
    pages = [
        workspace.path(target.output_dir) / "index.html"
        for target in workspace.config.targets
        if isinstance(target, WebsiteStaticTarget)
    ]
    timezone = workspace.config.broadcaster.timezone
    return DemoResult(root, announcement_id, status, timezone, pages, arrivals, card)


def _point_at_sandbox(root: Path, sandbox_env: Mapping[str, str]) -> list[str]:
    """Switch on every account channel this broadcaster delivers to; secrets go in .env."""
    from broadcaster.channels.registry import default_registry

    registry = default_registry()
    switched_on = switch_on_account_blocks(
        root / CONFIG_FILENAME, lambda channel, mode: _delivers(registry, channel, mode)
    )
    env_path = root / ".env"
    lines = [env_path.read_text(encoding="utf-8").rstrip("\n"), ""]
    lines.append("# Written by `broadcaster demo`: the sandbox it ran against (an exercise).")
    lines += [f"{name}={value}" for name, value in sandbox_env.items()]
    atomic_write(env_path, "\n".join(lines) + "\n", mode=0o600)
    return switched_on


def _delivers(registry: ChannelRegistry, channel: str, mode: str | None) -> bool:
    try:
        registry.adapter_class(channel, mode)
    except InputError:
        return False
    return True


def _sms_targets(app: App) -> list[SmsTarget]:
    return [t for t in app.config.targets if isinstance(t, SmsTarget)]


def _import_example_lists(app: App, say: Callable[[str], None]) -> None:
    """Import the example lists ``init`` wrote for the SMS targets that are switched on."""
    for target in _sms_targets(app):
        path = app.workspace.path(f"lists/{target.list}.csv")
        report = import_list(app, OFFICER, target.list, path, organisation=target.organisation)
        say(
            f"{OFFICER} imported the list {target.list}: {report['imported']} fictitious "
            f"numbers, {report['opted_out']} opted out"
        )


def _list_numbers(app: App) -> dict[str, set[str]]:
    """SMS target id -> the numbers of its list (to find what the sandbox got for it)."""
    with app.store.read() as conn:
        lists = RecipientLists(conn)
        return {t.id: set(lists.members(t.list)) for t in _sms_targets(app)}


def _send_the_update(
    app: App, say: Callable[[str], None], sandbox: PlatformSandbox
) -> tuple[int, str]:
    """Draft, submit, approve in Teams and at the CLI, send; the announcement and card ids."""
    if not cards_enabled(app.config):
        raise BroadcastError(
            "demo: approval cards in Teams are off (they need [teams_bot] and [approval] "
            "teams_channel_id); run the demo in a new folder so it writes its own workspace"
        )
    draft = create_draft(
        app,
        OFFICER,
        DraftInput(
            title=DEMO_TITLE,
            body=DEMO_BODY,
            severity=Severity.CRISIS,
            overrides={"sms": DEMO_SMS},
            to=("all",),
        ),
    )
    targets = ", ".join(draft.revision.content.targets)
    say(f"{OFFICER} drafted announcement {draft.id} for {targets}")
    clicker, last = APPROVERS
    with serving(app) as running:
        say(
            f"Started `broadcaster serve` at {running.url} with its worker: the Teams bot's "
            f"endpoint is {running.url}/api/messages"
        )
        submit(app, OFFICER, draft.id)
        running.wake_worker()
        say(f"{OFFICER} submitted it for approval ({app.config.approval.required} needed)")
        card: str = wait_for(
            app, running, "post the approval card", lambda: posted_card(app, draft.id)
        )
        say(
            f"The worker posted the approval card through the bot in the approvers' channel "
            f"{app.config.approval.teams_channel_id}"
        )
        shown = click_approve(app, sandbox.teams, f"{running.url}/api/messages", clicker, card)
        say(
            f"{clicker} approved in Teams: clicked Approve on the card the bot posted in the "
            "approvers' channel"
        )
        say(
            "serve verified the click's Bot Framework token and answered with the card as it "
            "stands" + (f": {shown}" if shown else "")
        )
        _approve_at_the_cli(app, say, last, draft.id, draft.revision.number)
        running.wake_worker()
        wait_for(app, running, "deliver the update", lambda: _delivered(app, draft.id))
    say("The worker in serve delivered it: one delivery per target (per number, for SMS)")
    # What serve's worker had not started when it stopped (the card's last update, at times).
    asyncio.run(run_worker(app, until_idle=True))
    posted = sandbox.connector.activity(card)
    now = card_status(posted.card() if posted is not None else None)
    say(
        "The worker updated the card in the approvers' channel"
        + (f"; in Teams it now says: {now}" if now else "")
    )
    return draft.id, card


def _approve_at_the_cli(
    app: App, say: Callable[[str], None], person: str, announcement_id: int, revision: int
) -> None:
    """``person`` approves as ``broadcaster approve --as`` would; the last approval sends."""
    # One account plays every person: in an exercise their names are believed, and said to be.
    believed = {"method": TRUSTED_NAME, "os_user": os_account()}
    outcome = approve(app, person, announcement_id, proof=believed)
    if outcome.sending:  # a crisis update is sent by its last approval (send_on_approval)
        say(
            f"{person} approved revision {revision} at the command line (a trusted name in an "
            "exercise): the last approval needed, so it is sent ([approval] send_on_approval)"
        )
        return
    say(f"{person} approved revision {revision} at the command line (a trusted name)")
    dispatch_revision(app, OFFICER, announcement_id)
    say(f"{OFFICER} sent it")


def _delivered(app: App, announcement_id: int) -> bool:
    with app.store.read() as conn:
        state = get_announcement(conn, announcement_id).state
    return state in (AnnouncementState.SENT, AnnouncementState.PARTIALLY_FAILED)


# Where the sandbox files what a target posted: its platform, and the object the post was about.
_SANDBOX_PLACES: dict[tuple[str, str | None], tuple[str, str | None]] = {
    ("facebook", None): ("facebook", "page_id"),
    ("telegram", None): ("telegram", "chat_id"),
    ("teams", "bot"): ("connector", "channel_id"),
    ("teams", "workflow"): ("workflows", None),
    ("website", "webhook"): ("cms", None),
}


def _arrived(
    sandbox: PlatformSandbox, target: TargetConfig, numbers: Mapping[str, set[str]]
) -> str:
    """What the sandbox recorded for ``target``: accepted posts, or "" for the static sites."""
    if target.id in numbers:  # SMS: one message per number of the target's list
        texts = [
            r
            for r in sandbox.records.find("twilio", direction="in", method="POST")
            if r.target in numbers[target.id] and r.status is not None and 200 <= r.status < 300
        ]
        return f"{len(texts)} SMS accepted" if texts else "nothing accepted"
    place = _SANDBOX_PLACES.get((str(target.channel), getattr(target, "mode", None)))
    if place is None:
        place = _SANDBOX_PLACES.get((str(target.channel), None))
    if place is None:
        return ""
    platform, key = place
    wanted = getattr(target, key, None) if key else None
    records = [
        r
        for r in sandbox.records.find(platform, direction="in", method="POST")
        if (wanted is None or r.target == wanted or str(wanted) in r.path)
        and r.status is not None
        and 200 <= r.status < 300
    ]
    return f"{len(records)} post(s) accepted" if records else "nothing accepted"


def _card_arrived(sandbox: PlatformSandbox, channel_id: str) -> str:
    """What the sandbox accepted in the approvers' channel: cards (new threads; not the replies
    in them) and their updates."""

    def accepted(method: str, thread: bool | None = None) -> int:
        return sum(
            1
            for r in sandbox.records.find("connector", direction="in", method=method)
            if r.target == channel_id
            and r.status is not None
            and 200 <= r.status < 300
            and (thread is None or r.path.endswith("/conversations") == thread)
        )

    cards, updates = accepted("POST", True), accepted("PUT")
    if not cards:
        return "nothing accepted"
    return f"{_count(cards, 'card', 'cards')}, {_count(updates, 'update', 'updates')}"


def _count(number: int, one: str, more: str) -> str:
    return f"{number} {one if number == 1 else more}"
