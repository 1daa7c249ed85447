"""Backoff: exponential with full jitter, capped; Retry-After exact."""

from __future__ import annotations

import random

from broadcaster.queue.retry import RetryPolicy


def test_full_jitter_stays_under_the_exponential_bound_and_the_cap() -> None:
    policy = RetryPolicy(base_seconds=2, cap_seconds=60)
    rng = random.Random(7)
    for attempt, bound in [(1, 2), (2, 4), (3, 8), (5, 32), (6, 60), (20, 60)]:
        delays = [policy.delay(attempt, None, rng) for _ in range(500)]
        assert min(delays) >= 0 and max(delays) <= bound
        assert max(delays) > bound * 0.9  # the whole range is used: it is jitter, not a constant


def test_retry_after_wins_exactly() -> None:
    policy = RetryPolicy(base_seconds=2, cap_seconds=60)
    assert policy.delay(9, 2.0, random.Random()) == 2.0
    assert policy.delay(1, 300.0, random.Random()) == 300.0  # even above the cap
    assert policy.delay(1, -5.0, random.Random()) == 0.0
