"""One sandbox: every emulator, its shared state, and the Starlette app serving them on one port.

Paths (``BROADCASTER_*`` is the DESIGN §4 variable each replaces):

==================  ==================================  ======================================
``/graph/``         Facebook Graph API                  ``BROADCASTER_FACEBOOK_API_URL``
``/twilio``         Twilio REST API                     ``BROADCASTER_TWILIO_API_URL``
``/telegram``       Telegram Bot API                    ``BROADCASTER_TELEGRAM_API_URL``
``/login``          Microsoft Entra ID                  ``BROADCASTER_TEAMS_LOGIN_URL``
``/botframework``   Bot Framework OpenID metadata/keys  ``BROADCASTER_TEAMS_OPENID_URL``
``/connector/emea`` Bot Connector (Teams)               ``BROADCASTER_TEAMS_SERVICE_URL``
``/workflows``      Power Automate Workflows webhook    ``TEAMS_MORBYLANGA_WORKFLOW_URL``
``/cms``            CMS webhook receiver                ``MORBYLANGA_CMS_WEBHOOK_URL``
``/_sandbox``       records, faults, state, act as Teams
==================  ==================================  ======================================
"""

from __future__ import annotations

import random
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import fields
from pathlib import Path
from typing import Any

from starlette.applications import Starlette

from .cms import CmsEmulator
from .connector import ConnectorEmulator
from .control import control_routes
from .credentials import (
    BORGHOLM_PAGE_ID,
    CMS_PATH,
    MORBYLANGA_PAGE_ID,
    TEAMS_CHANNEL_IDS,
    TELEGRAM_CHAT,
    Credentials,
    environment,
)
from .exchange import Context, Emulator
from .facebook import FacebookEmulator
from .faults import FaultBook
from .microsoft import BotFrameworkEmulator, LoginEmulator
from .records import Recorder
from .specs import Specs
from .teams import TeamsActor
from .telegram import TelegramEmulator
from .twilio import TwilioEmulator
from .workflows import WorkflowsEmulator

__all__ = ["CMS_PATH", "SandboxApp"]


class SandboxApp:
    """The emulators of one sandbox and their ASGI app; holds all state, nothing is global."""

    def __init__(
        self,
        *,
        specs_dir: Path | None,
        seed: int | None = None,
        clock: Callable[[], float] = time.time,
        callback_delay_s: float = 0.05,
    ) -> None:
        """Create the sandbox state.

        Args:
            specs_dir: Directory of the vendored platform specs, or None for structural checks.
            seed: Makes credentials and ``ratio`` faults reproducible; None is random.
            clock: Source of Unix time (tests may pass a fake).
            callback_delay_s: Pause between a Twilio message's status changes.
        """
        credentials = Credentials.generate(seed)
        # Ratio faults only need to be unpredictable enough for an exercise, not secure.
        rng = random.Random(seed)  # noqa: S311
        self.ctx = Context(
            credentials=credentials,
            specs=Specs(specs_dir),
            records=Recorder(clock),
            faults=FaultBook(rng, clock),
            clock=clock,
            rng=rng,
            secrets=[getattr(credentials, f.name) for f in fields(credentials)],
        )
        self.facebook = FacebookEmulator(self.ctx)
        self.twilio = TwilioEmulator(self.ctx)
        self.twilio.courier.delay_s = callback_delay_s
        self.telegram = TelegramEmulator(self.ctx)
        self.login = LoginEmulator(self.ctx)
        self.botframework = BotFrameworkEmulator(self.ctx)
        self.connector = ConnectorEmulator(self.ctx, self.login.key)
        self.workflows = WorkflowsEmulator(self.ctx)
        self.cms = CmsEmulator(self.ctx)
        self.teams = TeamsActor(
            self.ctx,
            self.botframework.key,
            self.connector,
            lambda: self.env()["BROADCASTER_TEAMS_SERVICE_URL"],
        )
        mounts = [e.mounted() for e in self.emulators]
        self.asgi = Starlette(routes=[*control_routes(self), *mounts], lifespan=self._lifespan)

    @property
    def emulators(self) -> list[Emulator]:
        """Every platform emulator."""
        return [self.facebook, self.twilio, self.telegram, self.login, self.botframework,
                self.connector, self.workflows, self.cms]  # fmt: skip

    @asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        yield
        await self.twilio.courier.aclose()

    def bind(self, base_url: str) -> None:
        """Record where the sandbox listens (``http://127.0.0.1:PORT``)."""
        self.ctx.base_url = base_url.rstrip("/")

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return self.ctx.base_url

    def env(self) -> dict[str, str]:
        """The ``.env`` entries: URL overrides, credentials and the exercise settings."""
        return environment(self.ctx.base_url, self.ctx.credentials)

    def env_text(self) -> str:
        """The complete ``.env``: ``KEY=value`` lines and ``#`` comments only."""
        root = self.ctx.base_url
        lines = [
            f"# broadcaster sandbox: platform emulators on {root} (exercise mode)",
            "# Save as .env next to broadcaster.toml (the reference configuration). Ctrl-C stops.",
            "# It makes the workspace an exercise that refuses to call anything but this sandbox.",
            *(f"{key}={value}" for key, value in self.env().items()),
            f"# Facebook pages: {BORGHOLM_PAGE_ID} (Borgholm), {MORBYLANGA_PAGE_ID} (Mörbylånga)",
            f"# Teams channels: {', '.join(TEAMS_CHANNEL_IDS)}; Telegram channel: {TELEGRAM_CHAT}",
            "# Twilio: numbers ending 0003/0005/0006/0007 are undelivered, 0008 fails",
            f"# Website webhook (CMS) receiver: {root}{CMS_PATH} (its URL above carries a "
            'token); in broadcaster.toml write url = "env:MORBYLANGA_CMS_WEBHOOK_URL" and '
            'secret = "env:MORBYLANGA_CMS_WEBHOOK_SECRET"',
            f"# Records, faults and state: {root}/_sandbox/",
        ]
        if not self.ctx.specs.full:
            lines.append(
                "# Full schema validation is off: no platform specs found "
                "(set BROADCASTER_SPECS_DIR); structural checks only."
            )
        return "\n".join(lines) + "\n"

    def reset(self) -> None:
        """Forget records, faults and everything posted; credentials and keys stay."""
        for emulator in self.emulators:
            emulator.reset()
        self.ctx.faults.clear()
        self.ctx.records.clear()

    def state(self) -> dict[str, Any]:
        """What is on each platform now, as JSON."""
        return {
            "facebook": [vars(p) for p in self.facebook.posts(include_deleted=True)],
            "twilio": [m.to_json() for m in self.twilio.messages()],
            "telegram": [m.to_json() | {"deleted": m.deleted}
                         for m in self.telegram.messages(include_deleted=True)],
            "connector": [vars(a) for a in self.connector.activities(include_deleted=True)],
            "workflows": [vars(p) for p in self.workflows.posts()],
            "cms": [r.to_json() for r in self.cms.resources(include_deleted=True)],
        }  # fmt: skip
