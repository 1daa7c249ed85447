"""The website channel. ``static`` mode: a crisis site written into a folder (DESIGN §6).

In the seed incident one municipality's website was down for days; a static folder can be served
by any web server or copied to a backup host (``publish_command``), and a delivery to it is
retried until it works while every other channel goes out at once.
"""

from __future__ import annotations

import asyncio
import subprocess
from typing import ClassVar

from broadcaster.channels.base import Channel, ChannelContext, Receipt, Rendered
from broadcaster.channels.static_site import StaticSite, entry_from_message, page_path
from broadcaster.config import TargetConfig, WebsiteStaticTarget
from broadcaster.errors import InputError, PermanentError, RenderError, TransientError
from broadcaster.rendering.message import Message

__all__ = ["WebsiteChannel"]

_PUBLISH_TIMEOUT_S = 300


class WebsiteChannel(Channel):
    """Publishes announcements to a static crisis site."""

    name: ClassVar[str] = "website"
    can_verify = True
    blind_resend_ok = True  # publishing is an upsert by uid and revision
    # A website that is down (as in the seed) is worth retrying for a long time.
    max_attempts = 60
    max_age_seconds = 48 * 3600
    # One writer per site: the files are rebuilt as a whole (and guarded by a lock as well).
    default_concurrency = 1

    def __init__(self, target: TargetConfig, context: ChannelContext) -> None:
        super().__init__(target, context)
        if not isinstance(target, WebsiteStaticTarget):
            raise InputError(
                f"target {target.id}: website mode {getattr(target, 'mode', '?')!r} "
                "has no adapter in this version of broadcaster (static mode works)"
            )
        self.static_target = target

    def _site(self, message: Message) -> StaticSite:
        return StaticSite(
            root=self.context.resolve_path(self.static_target.output_dir),
            organisation=message.organisation,
            renderer=self.context.renderer,
            exercise=self.context.exercise,
            public_url=self.static_target.public_url,
            language=message.content.language,
        )

    def render(self, message: Message) -> Rendered:
        """The site's files as they will be once this message is published."""
        return Rendered(files=self._site(message).preview(entry_from_message(message)))

    async def send(self, message: Message, rendered: Rendered) -> Receipt:
        """Write the site (and run ``publish_command``, if set)."""
        site = self._site(message)
        try:
            path = await asyncio.to_thread(site.publish, entry_from_message(message))
        except RenderError as exc:
            raise PermanentError(self.name, f"templates fail: {exc}") from None
        except OSError as exc:
            # Disk full, permissions, a missing mount: an administrator can fix it, so retry.
            raise TransientError(self.name, f"cannot write {site.root}: {exc}") from None
        if self.static_target.publish_command:
            await asyncio.to_thread(self._run_publish_command)
        return Receipt(path)

    async def verify(self, message: Message) -> Receipt | None:
        """Whether the site already shows this revision."""
        site = self._site(message)
        shown = await asyncio.to_thread(site.has, message.uid, message.revision)
        return Receipt(page_path(message.uid)) if shown else None

    def _run_publish_command(self) -> None:
        command = self.static_target.publish_command or []
        try:
            result = subprocess.run(
                command,
                cwd=self.context.resolve_path("."),
                capture_output=True,
                text=True,
                timeout=_PUBLISH_TIMEOUT_S,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise TransientError(self.name, f"publish_command failed: {exc}") from None
        if result.returncode != 0:
            tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
            raise TransientError(
                self.name,
                f"publish_command exited with {result.returncode}: {' / '.join(tail)}",
            )
