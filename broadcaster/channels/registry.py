"""The explicit registry of channel adapters, keyed by :attr:`Channel.name`.

Adapters are registered by import path and imported on first use, so that the CLI starts without
loading every platform SDK.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from broadcaster.errors import InputError

if TYPE_CHECKING:
    # Only for annotations: importing the adapter base would load Jinja2 and markdown for every
    # command that opens the application, including ``list`` and ``status``.
    from broadcaster.channels.base import Channel, ChannelContext
    from broadcaster.config import TargetConfig

__all__ = ["ChannelRegistry", "default_registry"]


class ChannelRegistry:
    """Maps channel names to adapter classes (given as ``module:Class``)."""

    def __init__(self) -> None:
        self._paths: dict[str, str | type[Channel]] = {}

    def register(self, name: str, path: str) -> None:
        """Add an adapter; a second adapter for the same channel is an error, not a silent swap."""
        if name in self._paths:
            raise ValueError(f"channel {name!r} is already registered ({self._paths[name]})")
        self._paths[name] = path

    def register_class(self, name: str, adapter: type[Channel]) -> None:
        """Add an adapter class that is already imported (tests, third-party code)."""
        if name in self._paths:
            raise ValueError(f"channel {name!r} is already registered ({self._paths[name]})")
        self._paths[name] = adapter

    def names(self) -> list[str]:
        """The registered channel names."""
        return sorted(self._paths)

    def adapter_class(self, name: str) -> type[Channel]:
        """The adapter class for a channel, imported now."""
        try:
            path = self._paths[name]
        except KeyError:
            raise InputError(
                f"channel {name!r} has no adapter in this version of broadcaster "
                f"(available: {', '.join(self.names())})"
            ) from None
        if isinstance(path, type):
            adapter = path
        else:
            module_name, class_name = path.split(":")
            adapter = getattr(importlib.import_module(module_name), class_name)
        if adapter.name != name:
            raise ValueError(f"{path} says its name is {adapter.name!r}, registered as {name!r}")
        return adapter

    def create(self, target: TargetConfig, context: ChannelContext) -> Channel:
        """Build the adapter for one target."""
        return self.adapter_class(target.channel)(target, context)


def default_registry() -> ChannelRegistry:
    """A registry holding every adapter that ships with broadcaster."""
    registry = ChannelRegistry()
    registry.register("website", "broadcaster.channels.website:WebsiteChannel")
    return registry
