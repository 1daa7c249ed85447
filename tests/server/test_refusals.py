"""A flood of refused requests is audited one by one only up to a budget per address and
minute; the rest are counted and summarised (``broadcaster/server/refusals.py``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from broadcaster.server.refusals import OTHER_ADDRESSES, RefusalBudget, Unaudited
from broadcaster.store.audit import list_events
from tests.server.botframework import start_bot_server, stop_bot_server
from tests.server.conftest import Caller, ServeFactory, callback_form, sms_deliveries

T0 = datetime(2026, 12, 4, 20, 0, tzinfo=UTC)
BOT = "/api/messages"


def test_each_address_gets_its_budget_then_is_counted() -> None:
    budget = RefusalBudget(per_window=3)
    admitted = [budget.admit(BOT, "10.0.0.1", T0 + timedelta(seconds=n)) for n in range(5)]
    assert admitted == [True, True, True, False, False]
    # Another address, and the same address at another endpoint, have budgets of their own.
    assert budget.admit(BOT, "10.0.0.2", T0)
    assert budget.admit("/twilio/status", "10.0.0.1", T0)
    assert budget.take_due(T0 + timedelta(seconds=30)) == []  # the minute is not over
    [summary] = budget.take_due(T0 + timedelta(minutes=1))
    assert summary == Unaudited(
        endpoint=BOT,
        client_ip="10.0.0.1",
        count=2,
        first=T0 + timedelta(seconds=3),
        last=T0 + timedelta(seconds=4),
    )
    # Taken once; the next minute starts a new budget.
    assert budget.take_due(T0 + timedelta(minutes=2)) == []
    assert budget.admit(BOT, "10.0.0.1", T0 + timedelta(minutes=2))


def test_a_minute_over_budget_is_counted_until_its_summary_is_written() -> None:
    budget = RefusalBudget(per_window=1)
    assert budget.admit(BOT, "10.0.0.1", T0)
    assert not budget.admit(BOT, "10.0.0.1", T0 + timedelta(seconds=10))
    # Past the minute but not yet summarised: still counted, into the same summary.
    assert not budget.admit(BOT, "10.0.0.1", T0 + timedelta(seconds=70))
    [summary] = budget.take_due(T0 + timedelta(seconds=75))
    assert (summary.count, summary.last) == (2, T0 + timedelta(seconds=70))
    assert budget.admit(BOT, "10.0.0.1", T0 + timedelta(seconds=80))


def test_shutdown_takes_every_summary_and_unknown_addresses_share_one_entry() -> None:
    budget = RefusalBudget(per_window=1, max_clients=2)
    for address in ("10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", None):
        budget.admit(BOT, address, T0)
    budget.admit(BOT, "10.0.0.1", T0)
    # Past two addresses, the others share one budget: one was audited, two were counted.
    summaries = {s.client_ip: s.count for s in budget.take_due(T0, everything=True)}
    assert summaries == {"10.0.0.1": 1, OTHER_ADDRESSES: 2}
    assert budget.take_due(T0 + timedelta(hours=1), everything=True) == []


def events(app: Any, action: str) -> list[Any]:
    with app.store.read() as conn:
        return list_events(conn, actions=[action])


def test_forged_bot_requests_beyond_the_budget_are_refused_and_summarised(
    workspace_dir: Path, database_url: str, sandbox: Any
) -> None:
    bot = start_bot_server(workspace_dir, database_url, sandbox)
    try:
        forged = bot.token(sandbox.login.key)  # a key Bot Framework does not publish
        answers = [bot.post(token=forged).status_code for _ in range(25)]
        assert answers == [401] * 25
        assert len(bot.refusals()) == 20
        assert events(bot.app, "requests_refused_unaudited") == []
        bot.running.stop()  # shutdown writes what is still counted
        [summary] = events(bot.app, "requests_refused_unaudited")
        assert summary.actor == "unauthenticated"
        assert {k: summary.details[k] for k in ("endpoint", "client_ip", "count")} == {
            "endpoint": BOT,
            "client_ip": "127.0.0.1",
            "count": 5,
        }
        assert bot.card_actions.calls == []
    finally:
        stop_bot_server(bot)


def test_forged_callbacks_beyond_the_budget_are_refused_and_summarised(
    serve_factory: ServeFactory,
) -> None:
    running = serve_factory()
    [sent] = sms_deliveries(running.app)
    caller = Caller(running.url)
    form = callback_form(sent.id, "delivered")
    answers = [caller.post(sent.id, form, token="f" * 32).status_code for _ in range(23)]
    assert answers == [403] * 23
    assert len(events(running.app, "callback_refused")) == 20
    # Genuine callbacks are not held back by the flood from the same address.
    assert caller.post(sent.id, form).json() == {"result": "applied"}
    running.stop()
    [summary] = events(running.app, "requests_refused_unaudited")
    assert (summary.details["endpoint"], summary.details["count"]) == ("/twilio/status", 3)
