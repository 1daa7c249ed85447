"""Rate slots shared through the database."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta

from broadcaster.app import App
from broadcaster.queue.ratelimit import Slot, push_back, reserve
from tests.conftest import FakeClock

WAIT = timedelta(seconds=30)


def test_slots_are_spaced_by_the_rate(db_app: App, clock: FakeClock) -> None:
    keys = [("target:sms", 4.0)]
    with db_app.store.write() as conn:
        slots = [reserve(conn, keys, clock(), WAIT).at for _ in range(5)]
    assert [(s - clock()).total_seconds() for s in slots] == [0.0, 0.25, 0.5, 0.75, 1.0]


def test_the_strictest_key_decides(db_app: App, clock: FakeClock) -> None:
    keys = [("channel:telegram", 1.0), ("target:tg", 10.0)]
    with db_app.store.write() as conn:
        first = reserve(conn, keys, clock(), WAIT).at
        second = reserve(conn, keys, clock(), WAIT).at
    assert (second - first).total_seconds() == 1.0


def test_a_slot_too_far_away_is_not_taken(db_app: App, clock: FakeClock) -> None:
    keys = [("target:slow", 0.01)]  # one send per 100 s
    with db_app.store.write() as conn:
        first = reserve(conn, keys, clock(), WAIT)
        later = reserve(conn, keys, clock(), WAIT)
        again = reserve(conn, keys, clock(), WAIT)
    assert first.reserved
    assert later == again == Slot(at=clock() + timedelta(seconds=100), reserved=False)


def test_push_back_pauses_the_key_for_everyone(db_app: App, clock: FakeClock) -> None:
    keys = [("target:fb", 100.0)]
    with db_app.store.write() as conn:
        push_back(conn, "target:fb", clock() + timedelta(seconds=2))
        push_back(conn, "target:fb", clock() + timedelta(seconds=1))  # never brings it forward
        slot = reserve(conn, keys, clock(), WAIT).at
    assert slot == clock() + timedelta(seconds=2)


def test_concurrent_reservations_never_share_or_crowd_a_slot(db_app: App) -> None:
    """Four threads (four workers) reserve at once; every slot is its own, spaced by the rate."""
    import threading

    from broadcaster.timeutil import utcnow

    keys = [("target:busy", 50.0)]
    slots: list[datetime] = []
    lock = threading.Lock()
    start = threading.Barrier(4)

    def reserve_many() -> None:
        start.wait()
        for _ in range(25):
            with db_app.store.write() as conn:
                slot = reserve(conn, keys, utcnow(), timedelta(seconds=60)).at
            with lock:
                slots.append(slot)

    threads = [threading.Thread(target=reserve_many) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ordered = sorted(slots)
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(ordered)]
    assert len(set(ordered)) == 100
    assert min(gaps) >= 0.02 - 1e-6  # 50/s: never closer than 20 ms
