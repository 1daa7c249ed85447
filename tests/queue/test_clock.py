"""The queue's clock on PostgreSQL: the server's time, asked for now and then, not every time."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import Engine, create_engine, event, func, select

from broadcaster.queue.clock import DatabaseClock

pytestmark = pytest.mark.parametrize(
    "database_url", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = create_engine(database_url)
    yield engine
    engine.dispose()


def questions(engine: Engine) -> list[str]:
    """The statements ``engine`` runs from now on, as a list that fills up."""
    asked: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *args: asked.append(args[2]))
    return asked


def test_the_server_is_asked_once_per_refresh_and_its_time_carried_forward(
    engine: Engine,
) -> None:
    asked = questions(engine)
    clock = DatabaseClock(refresh=60.0)
    with engine.connect() as conn:
        readings = [clock(conn) for _ in range(50)]
        asked_by_clock = len(asked)
        server = conn.execute(select(func.clock_timestamp())).scalar_one()
    assert asked_by_clock == 1
    assert readings == sorted(readings)  # time never runs backwards between questions
    assert abs(server - readings[-1]) < timedelta(seconds=1)


def test_a_clock_asks_again_once_its_answer_is_old(engine: Engine) -> None:
    asked = questions(engine)
    clock = DatabaseClock(refresh=0.0)
    with engine.connect() as conn:
        clock(conn)
        clock(conn)
    assert len(asked) == 2
