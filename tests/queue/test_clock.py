"""The queue's clock on PostgreSQL: the server's time, asked for now and then, not every time."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import create_engine, event, func, select

from broadcaster.queue.clock import DatabaseClock

pytestmark = pytest.mark.parametrize(
    "database_url", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)


def test_the_server_is_asked_once_per_refresh_and_its_time_carried_forward(
    database_url: str,
) -> None:
    engine = create_engine(database_url)
    asked: list[str] = []
    event.listen(
        engine, "before_cursor_execute", lambda _c, _cur, statement, *_: asked.append(statement)
    )
    clock = DatabaseClock(refresh=60.0)
    try:
        with engine.connect() as conn:
            readings = [clock(conn) for _ in range(50)]
            asked_by_clock = len(asked)
            server = conn.execute(select(func.clock_timestamp())).scalar_one()
    finally:
        engine.dispose()
    assert asked_by_clock == 1
    assert readings == sorted(readings)  # time never runs backwards between questions
    assert abs(server - readings[-1]) < timedelta(seconds=1)


def test_a_clock_asks_again_once_its_answer_is_old(database_url: str) -> None:
    engine = create_engine(database_url)
    asked: list[str] = []
    event.listen(
        engine, "before_cursor_execute", lambda _c, _cur, statement, *_: asked.append(statement)
    )
    clock = DatabaseClock(refresh=0.0)
    try:
        with engine.connect() as conn:
            clock(conn)
            clock(conn)
    finally:
        engine.dispose()
    assert len(asked) == 2
