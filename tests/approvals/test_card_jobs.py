"""The worker posts the approval card through the sandbox's Bot Connector and keeps it current."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from broadcaster.app import App
from broadcaster.approval_card import action_data
from broadcaster.approval_card_view import card_view
from broadcaster.authoring import EditInput, edit, submit
from broadcaster.model import AnnouncementState, Severity
from broadcaster.queue.jobs import JobKind
from broadcaster.sandbox.connector import StoredActivity
from broadcaster.sandbox.teams import find_execute_action
from broadcaster.server.card_actions import ApprovalCardActions
from broadcaster.store.approval_cards import PostedCard, card_of
from tests.approvals.conftest import (
    ANN,
    ANNA,
    APPROVERS_CHANNEL,
    AUTHOR,
    JENS,
    OBJECT_IDS,
    caller,
    count_jobs,
    open_workspace,
    submitted,
    write_config,
)
from tests.approvals.test_card import assert_valid, texts
from tests.conftest import Cli
from tests.queue.conftest import work_until


def card_row(app: App, announcement_id: int) -> PostedCard | None:
    with app.store.read() as conn:
        return card_of(conn, announcement_id)


def threads(sandbox: Any) -> list[StoredActivity]:
    """Cards the bot started as threads in the approvers' channel."""
    return [a for a in sandbox.connector.activities(APPROVERS_CHANNEL) if a.reply_to is None]


def replies(sandbox: Any, root: str) -> list[str]:
    return [
        str(a.activity.get("text"))
        for a in sandbox.connector.activities(APPROVERS_CHANNEL)
        if a.reply_to == root
    ]


def shown(activity: StoredActivity) -> str:
    card = activity.card()
    assert card is not None
    return "\n".join(texts(card))


def run_until(app: App, done: Any) -> None:
    work_until(app, done, timeout=30.0)


def click(app: App, sandbox: Any, who: str, verb: str = "approve", **extra: Any) -> Any:
    with app.store.read() as conn:
        data = {**action_data(card_view(app, conn, extra.pop("announcement_id"))), **extra}
    activity = sandbox.teams.invoke(verb=verb, user_object_id=OBJECT_IDS[who], data=data)
    return asyncio.run(ApprovalCardActions(app)(activity, caller()))


def test_submit_posts_the_card_and_decisions_update_it_for_everyone(
    teams_app: App, sandbox: Any, full_specs: Path
) -> None:
    announcement = submitted(teams_app, severity=Severity.CRISIS)
    assert count_jobs(teams_app, JobKind.APPROVAL_CARD) == 1
    run_until(teams_app, lambda: bool(threads(sandbox)))
    [posted] = threads(sandbox)
    row = card_row(teams_app, announcement.id)
    assert row is not None and row.activity_id == posted.id and row.revision == 1
    card = posted.card()
    assert card is not None
    assert_valid(card, full_specs)
    approve = find_execute_action(card, "approve")
    assert approve is not None and approve["data"]["hash"] == announcement.revision.content_hash
    assert "Waiting: 0 of 2 approvals" in shown(posted)

    click(teams_app, sandbox, ANNA, announcement_id=announcement.id)
    run_until(teams_app, lambda: "1 of 2 approvals: anna.hasselbom" in shown(threads(sandbox)[0]))
    puts = sandbox.records.find("connector", method="PUT", direction="in")
    assert puts and puts[-1].status == 200
    assert puts[-1].path.endswith(f"/activities/{posted.id}")

    click(teams_app, sandbox, JENS, announcement_id=announcement.id)
    # Sent once the worker has delivered it; the card says so too.
    run_until(teams_app, lambda: "Sent." in shown(threads(sandbox)[0]))
    [updated] = threads(sandbox)
    assert "Approved (2 of 2)" in shown(updated)
    final = updated.card()
    assert final is not None and "actions" not in final
    assert_valid(final, full_specs)
    [told] = replies(sandbox, posted.id)
    assert told.startswith(f"{AUTHOR}: announcement {announcement.id} (revision 1) is approved")
    assert "being sent" in told
    # The card is posted once, as one thread; nothing is said twice.
    assert len(sandbox.records.find("connector", method="POST", direction="in")) == 2


def test_a_rejection_is_shown_and_the_author_told_why(teams_app: App, sandbox: Any) -> None:
    announcement = submitted(teams_app)
    run_until(teams_app, lambda: bool(threads(sandbox)))
    click(teams_app, sandbox, ANN, "reject", announcement_id=announcement.id,
          reason="Fel telefonnummer i andra stycket")  # fmt: skip
    [posted] = threads(sandbox)
    run_until(teams_app, lambda: bool(replies(sandbox, posted.id)))
    assert "Rejected by ann.willsund" in shown(threads(sandbox)[0])
    [told] = replies(sandbox, posted.id)
    assert "was rejected by ann.willsund: Fel telefonnummer i andra stycket" in told
    assert told.startswith(AUTHOR)


def test_an_edited_and_resubmitted_update_gets_a_new_card(teams_app: App, sandbox: Any) -> None:
    announcement = submitted(teams_app)
    run_until(teams_app, lambda: bool(threads(sandbox)))
    edit(teams_app, AUTHOR, announcement.id, EditInput(body="Ny text."))
    submit(teams_app, AUTHOR, announcement.id)
    run_until(teams_app, lambda: len(threads(sandbox)) == 2)
    old, new = threads(sandbox)
    assert "Edited: revision 2 replaces this one" in shown(old)
    old_card = old.card()
    assert old_card is not None and "actions" not in old_card
    new_card = new.card()
    assert new_card is not None
    approve = find_execute_action(new_card, "approve")
    assert approve is not None and approve["data"]["revision"] == 2
    row = card_row(teams_app, announcement.id)
    assert row is not None and (row.activity_id, row.revision) == (new.id, 2)


def test_teams_down_at_submit_the_card_is_posted_later(teams_app: App, sandbox: Any) -> None:
    sandbox.faults.fail("connector", status=503, count=3)
    announcement = submitted(teams_app)  # nothing waits for Teams
    assert announcement.state == AnnouncementState.PENDING_APPROVAL
    run_until(teams_app, lambda: bool(threads(sandbox)))
    answers = [r.status for r in sandbox.records.find("connector", method="POST", direction="in")]
    assert answers == [503, 503, 503, 201]
    assert len(threads(sandbox)) == 1


def test_a_card_job_waits_for_another_holding_the_announcements_turn(
    teams_app: App, sandbox: Any
) -> None:
    from broadcaster.store.approval_cards import take_turn

    announcement = submitted(teams_app)
    now = teams_app.clock()
    from datetime import timedelta

    with teams_app.store.write() as conn:
        assert take_turn(conn, announcement.id, 999_999, now + timedelta(seconds=1), now)
    # The worker's job defers until that turn lapses, then posts.
    run_until(teams_app, lambda: bool(threads(sandbox)))
    assert len(threads(sandbox)) == 1


def test_without_a_bot_nothing_is_queued_and_submit_says_so(
    workspace_dir: Path, database_url: str, sandbox: Any, cli: Cli
) -> None:
    write_config(workspace_dir, database_url, teams=False)
    cli.env.update(sandbox.env())
    assert cli("draft", "--title", "Läget", "--body", "Text").exit_code == 0
    result = cli("submit", "1")
    assert result.exit_code == 0, result.stderr
    assert "Approvals happen at the command line" in result.stdout
    assert "[teams_bot] section" in result.stdout
    app = open_workspace(workspace_dir / "broadcaster.toml", sandbox)
    try:
        assert count_jobs(app, JobKind.APPROVAL_CARD) == 0
    finally:
        app.close()


def test_with_a_bot_submit_says_the_card_goes_to_teams(
    workspace_dir: Path, database_url: str, sandbox: Any, cli: Cli
) -> None:
    write_config(workspace_dir, database_url)
    cli.env.update(sandbox.env())
    for _ in range(2):
        assert cli("draft", "--title", "Läget", "--body", "Text").exit_code == 0
    result = cli("submit", "1", "--json")
    assert result.exit_code == 0, result.stderr
    assert result.json()["teams_card"] is True
    result = cli("submit", "2")
    assert result.exit_code == 0, result.stderr
    assert "approval card goes to the approvers' Teams channel" in " ".join(result.stdout.split())


def test_a_bot_blocked_in_the_channel_is_a_dead_letter_that_says_what_to_do(
    teams_app: App, sandbox: Any
) -> None:
    from sqlalchemy import select

    from broadcaster.store.schema import jobs

    sandbox.connector.block(APPROVERS_CHANNEL)
    submitted(teams_app)

    def dead() -> Any:
        with teams_app.store.read() as conn:
            return conn.execute(
                select(jobs.c.state, jobs.c.last_error).where(
                    jobs.c.kind == JobKind.APPROVAL_CARD, jobs.c.state == "dead"
                )
            ).first()

    run_until(teams_app, lambda: dead() is not None)
    _, error = dead()
    assert "the approval card could not be posted or updated" in error
    assert "unblock it or install the app in the team again" in error
    assert threads(sandbox) == []


def test_deadletters_lists_a_card_given_up_on_and_retry_cards_posts_it(
    teams_app: App, sandbox: Any, cli: Cli
) -> None:
    cli.env.update(sandbox.env())
    sandbox.connector.block(APPROVERS_CHANNEL)
    announcement = submitted(teams_app, title="Kokvatten i Löttorp")
    run_until(teams_app, lambda: _dead_cards(cli) != [])
    [card] = _dead_cards(cli)
    assert (card["announcement_id"], card["title"]) == (announcement.id, "Kokvatten i Löttorp")
    assert "unblock it or install the app in the team again" in card["last_error"]
    human = cli("deadletters")
    assert human.exit_code == 0, human.stderr
    text = " ".join(human.stdout.split())
    assert "No dead deliveries." in text
    assert f"#{announcement.id} Kokvatten i Löttorp (1 tries): the approval card could not" in text
    assert "then: broadcaster deadletters --retry-cards" in text

    # One thing at a time: --retry-cards with --all is refused before anything is queued.
    assert cli("deadletters", "--retry-cards", "--all").exit_code == 2
    sandbox.connector.reset()  # the bot is let back into the channel
    result = cli("deadletters", "--retry-cards", "--json", "--as", "admin")
    assert result.exit_code == 0, result.stderr
    assert result.json() == {"retried_cards": [announcement.id]}
    assert _dead_cards(cli) == []  # a newer card job took over
    run_until(teams_app, lambda: bool(threads(sandbox)))
    row = card_row(teams_app, announcement.id)
    assert row is not None and row.activity_id == threads(sandbox)[0].id
    again = cli("deadletters", "--retry-cards", "--json")
    assert again.json() == {"retried_cards": []}


def test_retry_cards_without_teams_says_what_is_missing(
    workspace_dir: Path, database_url: str, cli: Cli
) -> None:
    write_config(workspace_dir, database_url, teams=False)
    result = cli("deadletters", "--retry-cards", "--json")
    assert result.exit_code == 2
    assert "need [teams_bot] and [approval] teams_channel_id" in result.json()["error"]["message"]


def _dead_cards(cli: Cli) -> list[dict[str, Any]]:
    result = cli("deadletters", "--json")
    assert result.exit_code == 0, result.stderr
    cards: list[dict[str, Any]] = result.json()["approval_cards"]
    return cards
