"""Effective limits: the target's keys win over [channels.*], which win over adapter defaults."""

from __future__ import annotations

from datetime import timedelta

from broadcaster.app import App
from broadcaster.channels.website import WebsiteChannel
from broadcaster.config import ChannelLimits
from broadcaster.limits import limits_for


def test_adapter_defaults(app: App) -> None:
    target = app.config.targets[0]
    limits = limits_for(app.config, target, WebsiteChannel)
    assert limits.rate_keys == ()
    assert (limits.concurrency, limits.max_attempts) == (1, 60)
    assert limits.max_age == timedelta(hours=48)


def test_channel_section_then_target_keys(app: App) -> None:
    config = app.config.model_copy(
        update={
            "channels": {
                "website": ChannelLimits(
                    rate_per_second=5, concurrency=3, max_attempts=4, max_age_hours=2
                )
            }
        }
    )
    target = config.targets[0]
    limits = limits_for(config, target, WebsiteChannel)
    assert limits.rate_keys == (("channel:website", 5.0),)
    assert (limits.concurrency, limits.max_attempts, limits.max_age) == (3, 4, timedelta(hours=2))
    own = target.model_copy(update={"rate_per_second": 1.0, "concurrency": 2})
    limits = limits_for(config, own, WebsiteChannel)
    assert limits.rate_keys == (("channel:website", 5.0), ("target:web-borgholm", 1.0))
    assert limits.concurrency == 2
