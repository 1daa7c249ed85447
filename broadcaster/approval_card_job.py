"""The worker's ``approval_card`` jobs: post the card, keep it current, tell the author.

A job names an announcement. It takes the announcement's turn (card jobs of one announcement
never act at once: an older state is never written over a newer one, and the card is posted
once), reads where things stand, and then, with no transaction open, talks to the Bot Connector
as our bot (the ``[teams_bot]`` identity, through the Teams bot adapter):

- no card yet: post it as a new thread in ``[approval] teams_channel_id``;
- the card shows an older revision and the current one awaits approval: mark the old card as
  replaced and post a new thread for the new revision (approvers are notified of a new thread,
  not of an edit);
- otherwise: replace the posted card (PUT) when what it shows has changed;
- once the revision is approved (and sending) or rejected: a reply in the thread that names the
  author and says so, once.

What it did is written in the worker's settlement transaction (:meth:`record`), which also ends
its turn. Failures follow the queue's classification: a refusal to slow down or a 5xx is tried
again with backoff; a refusal that needs a person (bot not installed, bad credentials) is a dead
letter with the fix in its error.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from broadcaster.app import App
from broadcaster.approval_card import CardView, build_card
from broadcaster.approval_card_queue import cards_enabled
from broadcaster.approval_card_view import ChannelLines, card_view
from broadcaster.channels.base import Receipt
from broadcaster.config import TeamsBotTarget
from broadcaster.errors import ChannelError, PermanentError
from broadcaster.model import AnnouncementState
from broadcaster.queue.jobs import Job, JobState, Settlement
from broadcaster.queue.lease import Lease
from broadcaster.queue.retry import RetryPolicy
from broadcaster.store.announcements import get_announcement
from broadcaster.store.approval_cards import PostedCard, finish_turn, take_turn
from broadcaster.store.database import is_unavailable

if TYPE_CHECKING:
    from broadcaster.channels.teams_bot import TeamsBotChannel

__all__ = ["MAX_CARD_ATTEMPTS", "ApprovalCardRunner", "CardOutcome", "author_notice"]

log = logging.getLogger("broadcaster.approval")

#: A card job that failed this many times with retryable errors becomes a dead letter (with
#: the default backoff, after about two hours of Teams being down; the next decision tries anew).
MAX_CARD_ATTEMPTS = 30
#: The configured target the approval cards are posted as (for the adapter's messages).
CARD_TARGET_ID = "approval.teams_channel_id"
_S = AnnouncementState
_SENDING = (_S.DISPATCHING, _S.SENT, _S.PARTIALLY_FAILED)
_GONE = (_S.DRAFT, _S.CANCELLED)


@dataclass(frozen=True, kw_only=True)
class CardOutcome:
    """What a card job did: the ``approval_cards`` columns to write when its turn ends."""

    announcement_id: int
    job_id: int
    changes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class _Plan:
    """What a card job is about to do, decided while it held the turn."""

    card: PostedCard
    #: The card to PUT over the posted one (None: it is up to date, or none is posted).
    replace: dict[str, Any] | None = None
    #: A card to post as a new thread, and the revision it shows (None: nothing to post).
    post: dict[str, Any] | None = None
    revision: int | None = None
    #: (key, text) of the reply that tells the author (None: nothing new to tell).
    tell: tuple[str, str] | None = None
    summary: str = ""


def digest(card: dict[str, Any]) -> str:
    """A fingerprint of a card's JSON (an unchanged card is not sent again)."""
    return hashlib.sha256(json.dumps(card, sort_keys=True).encode()).hexdigest()


def author_notice(view: CardView) -> tuple[str, str] | None:
    """(key, text) telling the author where their revision stands, once it is decided."""
    if view.revision != view.current_revision:
        return None
    names = ", ".join(d.person for d in view.approvals)
    head = f"{view.author}: announcement {view.announcement_id} (revision {view.revision})"
    if view.state == _S.REJECTED and view.rejection is not None:
        r = view.rejection
        return (
            f"rejected:{view.revision}",
            f"{head} was rejected by {r.person}: {r.reason}\nEdit it "
            f"(`broadcaster edit {view.announcement_id}`) and submit it again.",
        )
    if view.state in _SENDING:
        return f"sending:{view.revision}", f"{head} is approved by {names} and being sent."
    if view.state == _S.APPROVED:
        return (
            f"approved:{view.revision}",
            f"{head} is approved by {names}; send it with "
            f"`broadcaster send {view.announcement_id}`.",
        )
    return None


class ApprovalCardRunner:
    """The handler of ``approval_card`` jobs; one per worker, with one bot adapter."""

    def __init__(
        self, app: App, policy: RetryPolicy | None = None, rng: random.Random | None = None
    ) -> None:
        self.app = app
        queue = app.config.queue
        self.policy = policy or RetryPolicy(
            base_seconds=queue.retry_base_seconds, cap_seconds=queue.retry_cap_seconds
        )
        self.rng = rng or random.Random()  # noqa: S311 - jitter, not security
        self.turn = timedelta(seconds=queue.lease_seconds)
        self.lines = ChannelLines(app)
        self._bot: TeamsBotChannel | None = None

    async def __call__(self, job: Job, lease: Lease) -> Settlement:
        """Bring one announcement's card up to date."""
        if job.announcement_id is None:
            return Settlement(job_id=job.id, state=JobState.DEAD, error="the job names nothing")
        if not cards_enabled(self.app.config):
            return Settlement(job_id=job.id, state=JobState.DONE)  # Teams was configured away
        plan = await asyncio.to_thread(self._plan, job)
        if plan is None:  # another card job of this announcement is at work: after it
            return Settlement(job_id=job.id, state=JobState.QUEUED, delay=1.0, attempted=False)
        changes: dict[str, Any] = {}
        outcome = CardOutcome(announcement_id=job.announcement_id, job_id=job.id, changes=changes)
        try:
            async with lease.deadline(self._bot_channel().call_timeout()):
                await self._carry_out(plan, changes)
        except TimeoutError:
            return self._retry(job, "Teams did not answer in time", None, outcome)
        except ChannelError as exc:
            if not exc.retryable:
                error = f"the approval card could not be posted or updated: {exc}"
                log.warning("announcement %s: %s", job.announcement_id, error)
                return Settlement(job_id=job.id, state=JobState.DEAD, error=error, outcome=outcome)
            return self._retry(job, str(exc), getattr(exc, "retry_after", None), outcome)
        except Exception as exc:
            if is_unavailable(exc):
                raise
            log.exception("approval card job %s failed in broadcaster itself", job.id)
            return self._retry(job, f"{type(exc).__name__}: {exc}", None, outcome, failed=True)
        return Settlement(job_id=job.id, state=JobState.DONE, outcome=outcome)

    def record(self, conn: Connection, settlements: Sequence[Settlement], now: datetime) -> None:
        """Write what each job did to its card and end its turn."""
        for settlement in settlements:
            outcome = settlement.outcome
            if isinstance(outcome, CardOutcome):
                finish_turn(
                    conn, outcome.announcement_id, outcome.job_id, now, changes=outcome.changes
                )

    async def aclose(self) -> None:
        """Close the bot adapter's connections."""
        if self._bot is not None:
            await self._bot.aclose()

    # -- deciding ---------------------------------------------------------------------------

    def _plan(self, job: Job) -> _Plan | None:
        """Take the announcement's turn and decide what to do; None: another job has it."""
        announcement_id = job.announcement_id or 0
        now = self.app.clock()
        with self.app.store.write() as conn:
            card = take_turn(conn, announcement_id, job.id, now + self.turn, now)
        if card is None:
            return None
        with self.app.store.read() as conn:
            plan, view = self._decide(conn, announcement_id, card)
        notice = author_notice(view) if view is not None else None
        if notice is not None and notice[0] != card.told_author:
            plan = dataclasses.replace(plan, tell=notice)
        return plan

    def _decide(
        self, conn: Connection, announcement_id: int, card: PostedCard
    ) -> tuple[_Plan, CardView | None]:
        """What the card needs, and the view of the revision it then shows."""
        announcement = get_announcement(conn, announcement_id)
        current = announcement.revision.number
        plan = _Plan(card=card, summary=f"Approval needed: {announcement.revision.content.title}")
        gone = announcement.state in _GONE
        if not card.posted and gone:
            return plan, None  # withdrawn or edited before it was ever shown
        if not card.posted or (card.revision != current and not gone):
            # No card yet, or submitted again after an edit: a new thread asks (approvers are
            # notified of a new thread, not of an edit), and the old card says it was replaced.
            view = self._view(conn, announcement_id, None)
            old = (
                build_card(self._view(conn, announcement_id, card.revision))
                if card.posted
                else None
            )
            return dataclasses.replace(
                plan, replace=old, post=build_card(view), revision=current
            ), view
        view = self._view(conn, announcement_id, card.revision)
        shown = build_card(view)
        changed = shown if digest(shown) != card.digest else None
        return dataclasses.replace(plan, replace=changed), view

    def _view(self, conn: Connection, announcement_id: int, revision: int | None) -> CardView:
        return card_view(self.app, conn, announcement_id, revision=revision, lines=self.lines)

    # -- talking to Teams -------------------------------------------------------------------

    async def _carry_out(self, plan: _Plan, changes: dict[str, Any]) -> None:
        from broadcaster.channels.teams_card import card_activity

        bot = self._bot_channel()
        card = plan.card
        receipt = _receipt(card)
        if plan.replace is not None and receipt is not None:
            try:
                await bot.replace(receipt, card_activity(plan.replace, plan.summary))
            except PermanentError as exc:
                if plan.post is None:
                    raise
                # The old card may have been deleted in Teams: the new one matters more.
                log.warning("the replaced approval card could not be updated: %s", exc)
            if plan.post is None:
                changes["digest"] = digest(plan.replace)
        if plan.post is not None:
            channel_id = self.app.config.approval.teams_channel_id or ""
            receipt = await bot.start_thread(channel_id, card_activity(plan.post, plan.summary))
            changes.update(
                revision=plan.revision,
                service_url=str(receipt.data["service_url"]),
                conversation_id=str(receipt.data["conversation_id"]),
                activity_id=receipt.platform_id,
                digest=digest(plan.post),
            )
        if plan.tell is not None and receipt is not None:
            key, text = plan.tell
            await bot.reply(receipt, {"type": "message", "textFormat": "plain", "text": text})
            changes["told_author"] = key

    def _bot_channel(self) -> TeamsBotChannel:
        """The Teams bot adapter, posting in the approvers' channel (built on first use)."""
        from broadcaster.channels.teams_bot import TeamsBotChannel

        if self._bot is None:
            config = self.app.config
            target = TeamsBotTarget(
                id=CARD_TARGET_ID,
                organisation=config.organisations[0].id,
                channel="teams",
                mode="bot",
                channel_id=config.approval.teams_channel_id or "",
            )
            target._bot = config.teams_bot
            bot = self.app.registry.create(target, self.app.channel_context())
            if not isinstance(bot, TeamsBotChannel):
                raise TypeError("the registry built no Teams bot adapter")  # a bug of ours
            self._bot = bot
        return self._bot

    def _retry(
        self,
        job: Job,
        error: str,
        retry_after: float | None,
        outcome: CardOutcome,
        *,
        failed: bool = False,
    ) -> Settlement:
        if job.attempts >= MAX_CARD_ATTEMPTS:
            return Settlement(
                job_id=job.id,
                state=JobState.DEAD,
                error=f"gave up on the approval card after {job.attempts} attempts: {error}; "
                "approvers can still decide at the command line",
                outcome=outcome,
                failed=failed,
            )
        delay = self.policy.delay(job.attempts, retry_after, self.rng)
        log.warning("approval card of announcement %s: %s; again in %.0f s",
                    job.announcement_id, error, delay)  # fmt: skip
        return Settlement(
            job_id=job.id,
            state=JobState.QUEUED,
            delay=delay,
            error=error,
            outcome=outcome,
            failed=failed,
        )


def _receipt(card: PostedCard) -> Receipt | None:
    if not card.posted or card.activity_id is None:
        return None
    return Receipt(
        card.activity_id,
        {"service_url": card.service_url or "", "conversation_id": card.conversation_id or ""},
    )
