"""When to try a failed delivery again: exponential backoff with full jitter, capped.

Full jitter (a uniform draw between 0 and the exponential bound) spreads the retries of many
deliveries that failed together, so a platform coming back is not hit by all of them at once.
A platform's own ``Retry-After`` is honoured exactly instead.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

__all__ = ["RetryPolicy"]


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """Backoff settings shared by all channels (limits per channel live on the adapters)."""

    base_seconds: float = 2.0
    cap_seconds: float = 600.0
    #: After an unknown outcome, how soon to verify with the platform.
    verify_after_seconds: float = 5.0

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        """Seconds to wait before attempt ``attempt + 1``."""
        if retry_after is not None:
            return max(0.0, retry_after)
        bound = min(self.cap_seconds, self.base_seconds * 2 ** max(0, attempt - 1))
        return rng.uniform(0, bound)
