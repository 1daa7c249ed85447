"""The application context: one workspace, its store, the clock and the channel registry.

Every command opens an App, so this module imports only what opening one needs. Rendering (Jinja2,
markdown) and the channel adapters are imported when a command first asks for them: ``list`` and
``status`` never do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING

from broadcaster.channels.registry import ChannelRegistry, default_registry
from broadcaster.queue.clock import DatabaseClock
from broadcaster.store.database import Store, open_store
from broadcaster.timeutil import Clock, utcnow

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from broadcaster.channels.base import ChannelContext
    from broadcaster.config import Config
    from broadcaster.rendering import Renderer
    from broadcaster.workspace import Workspace

__all__ = ["App", "open_app"]


@dataclass
class App:
    """Everything a command or the worker needs, built once per process."""

    workspace: Workspace
    store: Store
    clock: Clock = utcnow
    registry: ChannelRegistry = field(default_factory=default_registry)
    #: Leases, run times and rate slots in the database's time (see broadcaster.queue.clock);
    #: None: when ``clock`` is the real one. A clock moved by hand (tests) is used as it is.
    database_time: bool | None = None
    _database_clock: DatabaseClock = field(default_factory=DatabaseClock, repr=False)

    @property
    def config(self) -> Config:
        """The validated configuration."""
        return self.workspace.config

    @cached_property
    def renderer(self) -> Renderer:
        """The Jinja2 renderer with this workspace's overrides."""
        from broadcaster.rendering import Renderer

        general = self.config.broadcaster
        return Renderer(self.workspace.templates_dir, general.timezone)

    def channel_context(self) -> ChannelContext:
        """What adapters of this workspace are built with."""
        from broadcaster.channels.base import ChannelContext

        general = self.config.broadcaster
        return ChannelContext(
            renderer=self.renderer,
            timezone=general.timezone,
            clock=self.clock,
            resolve_path=self.workspace.path,
            exercise=general.exercise,
            endpoints={
                name: value
                for name, value in self.workspace.env.items()
                if name.startswith("BROADCASTER_") and name.endswith("_URL") and value
            },
            public_base_url=general.public_base_url.rstrip("/")
            if general.public_base_url
            else None,
        )

    def queue_clock(self, conn: Connection) -> datetime:
        """The time for the queue's decisions, read inside the transaction that makes them."""
        use_database = self.clock is utcnow if self.database_time is None else self.database_time
        return self._database_clock(conn) if use_database else self.clock()

    def close(self) -> None:
        """Release the database connections."""
        self.store.close()


def open_app(
    workspace: Workspace, clock: Clock = utcnow, *, database_time: bool | None = None
) -> App:
    """Open the workspace's database (migrating it if needed) and build the context."""
    store = open_store(workspace.database_url)
    return App(workspace=workspace, store=store, clock=clock, database_time=database_time)
