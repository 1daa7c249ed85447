"""Rate slots shared through the database."""

from __future__ import annotations

import itertools
import threading
from datetime import datetime, timedelta

from broadcaster.app import App
from broadcaster.queue.ratelimit import RateKey, Slot, push_back, reserve_many
from broadcaster.timeutil import utcnow
from tests.conftest import FakeClock

WAIT = timedelta(seconds=30)


def reserve(app: App, keys: list[RateKey], now: datetime, count: int = 1) -> list[Slot]:
    with app.store.write() as conn:
        return reserve_many(conn, [tuple(keys)] * count, now, WAIT)


def test_slots_are_spaced_by_the_rate(db_app: App, clock: FakeClock) -> None:
    keys = [("target:sms", 4.0)]
    waits = [reserve(db_app, keys, clock())[0].wait for _ in range(3)]
    waits += [slot.wait for slot in reserve(db_app, keys, clock(), count=2)]
    assert waits == [0.0, 0.25, 0.5, 0.75, 1.0]  # one at a time or several at once, the same


def test_the_strictest_key_decides(db_app: App, clock: FakeClock) -> None:
    keys = [("channel:telegram", 1.0), ("target:tg", 10.0)]
    first, second = reserve(db_app, keys, clock(), count=2)
    assert second.wait - first.wait == 1.0


def test_a_request_sharing_one_key_waits_for_it(db_app: App, clock: FakeClock) -> None:
    with db_app.store.write() as conn:
        slots = reserve_many(
            conn,
            [
                (("channel:sms", 2.0), ("target:a", 100.0)),
                (("channel:sms", 2.0), ("target:b", 100.0)),
            ],
            clock(),
            WAIT,
        )
    assert [s.wait for s in slots] == [0.0, 0.5]


def test_a_slot_too_far_away_is_not_taken(db_app: App, clock: FakeClock) -> None:
    keys = [("target:slow", 0.01)]  # one send per 100 s
    first, later, again = reserve(db_app, keys, clock(), count=3)
    assert first.reserved
    assert later == again == Slot(wait=100.0, reserved=False)
    assert reserve(db_app, keys, clock())[0] == Slot(wait=100.0, reserved=False)


def test_push_back_pauses_the_key_for_everyone(db_app: App, clock: FakeClock) -> None:
    keys = [("target:fb", 100.0)]
    with db_app.store.write() as conn:
        push_back(conn, "target:fb", clock() + timedelta(seconds=2))
        push_back(conn, "target:fb", clock() + timedelta(seconds=1))  # never brings it forward
    assert reserve(db_app, keys, clock())[0].wait == 2.0


def test_concurrent_reservations_never_share_or_crowd_a_slot(db_app: App) -> None:
    """Four threads (four workers) reserve at once; every slot is its own, spaced by the rate."""
    keys = (("target:busy", 50.0),)
    slots: list[datetime] = []
    lock = threading.Lock()
    start = threading.Barrier(4)

    def take() -> None:
        start.wait()
        for _ in range(25):
            with db_app.store.write() as conn:
                now = utcnow()
                (slot,) = reserve_many(conn, [keys], now, timedelta(seconds=60))
            with lock:
                slots.append(now + timedelta(seconds=slot.wait))

    threads = [threading.Thread(target=take) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ordered = sorted(slots)
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(ordered)]
    assert len(set(ordered)) == 100
    assert min(gaps) >= 0.02 - 1e-6  # 50/s: never closer than 20 ms
