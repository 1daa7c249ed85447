"""The effective limits of one target: adapter defaults, overridden by ``[channels.*]`` and the
target's own keys."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from broadcaster.channels.base import Channel
from broadcaster.config import Config, TargetConfig
from broadcaster.model import ChannelName
from broadcaster.queue.ratelimit import RateKey

__all__ = ["TargetLimits", "channel_in_flight", "limits_for"]


@dataclass(frozen=True)
class TargetLimits:
    """What one target may take, and how long its deliveries are worth trying."""

    rate_keys: tuple[RateKey, ...]
    concurrency: int
    max_attempts: int
    max_age: timedelta
    #: Sends at once over the whole channel, per worker (None: no limit of its own).
    channel_in_flight: int | None = None


def limits_for(config: Config, target: TargetConfig, adapter: type[Channel]) -> TargetLimits:
    """Combine, most specific first: the target, its channel's section, the adapter's defaults."""
    channel = config.channels.get(target.channel)
    keys: list[RateKey] = []
    target_rate = target.rate_per_second or adapter.default_rate_per_second
    if target_rate:
        keys.append((f"target:{target.id}", target_rate))
    if channel is not None and channel.rate_per_second:
        keys.append((f"channel:{target.channel}", channel.rate_per_second))
    max_age_hours = channel.max_age_hours if channel and channel.max_age_hours else None
    return TargetLimits(
        rate_keys=tuple(sorted(keys)),
        concurrency=target.concurrency
        or (
            channel.concurrency if channel and channel.concurrency else adapter.default_concurrency
        ),
        max_attempts=(
            channel.max_attempts if channel and channel.max_attempts else adapter.max_attempts
        ),
        max_age=timedelta(hours=max_age_hours)
        if max_age_hours
        else timedelta(seconds=adapter.max_age_seconds),
        channel_in_flight=channel_in_flight(config, target.channel),
    )


def channel_in_flight(config: Config, channel: ChannelName) -> int | None:
    """Sends at once over every target of ``channel``, per worker (``[channels.x] in_flight``)."""
    limits = config.channels.get(channel)
    return limits.in_flight if limits is not None else None
