"""Exercise mode (krisövning) switched on from the environment, and the sandbox's guarantee.

``broadcaster sandbox`` prints a ``.env`` with ``BROADCASTER_EXERCISE=1``, which marks every
output as an exercise whatever ``broadcaster.toml`` says, and ``BROADCASTER_SANDBOX_URL``, which
promises that nothing reaches a real platform. That promise is checked here, when the workspace
loads: every address a target would call (a platform's API root, a Workflows or CMS webhook URL)
must lie under the sandbox's address, or the workspace does not load. A forgotten override would
otherwise post an exercise to the public.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from urllib.parse import urlsplit

from pydantic import SecretStr

from broadcaster.config import (
    Config,
    TargetConfig,
    TeamsBotTarget,
    TeamsWorkflowTarget,
    WebsiteWebhookTarget,
)
from broadcaster.model import ChannelName

__all__ = ["EXERCISE_VAR", "SANDBOX_VAR", "apply_exercise", "exercise_problems"]

EXERCISE_VAR = "BROADCASTER_EXERCISE"
SANDBOX_VAR = "BROADCASTER_SANDBOX_URL"

_ON = ("1", "true", "yes", "on")
_OFF = ("", "0", "false", "no", "off")

#: The DESIGN §4 overrides each kind of target calls through (Teams bots log in, then post).
_API_ROOTS: dict[ChannelName, tuple[str, ...]] = {
    ChannelName.FACEBOOK: ("BROADCASTER_FACEBOOK_API_URL",),
    ChannelName.SMS: ("BROADCASTER_TWILIO_API_URL",),
    ChannelName.TELEGRAM: ("BROADCASTER_TELEGRAM_API_URL",),
}
# The bot also fetches Bot Framework's signing keys to check the clicks on approval cards: from
# the real Bot Framework, the sandbox's clicks would all be refused.
_TEAMS_BOT_ROOTS = (
    "BROADCASTER_TEAMS_LOGIN_URL",
    "BROADCASTER_TEAMS_SERVICE_URL",
    "BROADCASTER_TEAMS_OPENID_URL",
)


def apply_exercise(config: Config, env: Mapping[str, str]) -> tuple[Config, list[str]]:
    """The configuration with exercise mode on when the environment says so, and any problems.

    ``BROADCASTER_EXERCISE`` can only switch exercise mode on: a stray ``0`` in a shell must not
    make a workspace whose ``broadcaster.toml`` says ``exercise = true`` post for real.
    """
    value = env.get(EXERCISE_VAR, "").strip().lower()
    if value in _OFF:
        return config, []
    if value not in _ON:
        return config, [f"{EXERCISE_VAR}={env[EXERCISE_VAR]!r}: write 1 to run as an exercise"]
    general = config.broadcaster.model_copy(update={"exercise": True})
    return config.model_copy(update={"broadcaster": general}), []


def exercise_problems(config: Config, env: Mapping[str, str]) -> list[str]:
    """Every address that would leave the sandbox named by ``BROADCASTER_SANDBOX_URL``."""
    root = env.get(SANDBOX_VAR, "").strip()
    if not root:
        return []
    problems = []
    for key, where, hint in _destinations(config, env):
        if where is None or not where.startswith(root.rstrip("/") + "/"):
            goes = "is not set" if where is None else f"goes to {_host(where)}"
            problems.append(
                f"{key} {goes}, not to the sandbox at {root}: in an exercise nothing may reach "
                f"a real platform; {hint}"
            )
    return problems


def _destinations(config: Config, env: Mapping[str, str]) -> Iterator[tuple[str, str | None, str]]:
    """(key, address or None, how to fix it) for everything the workspace would call."""
    use_env = "use the .env that `broadcaster sandbox` prints"
    if config.teams_bot is not None or any(isinstance(t, TeamsBotTarget) for t in config.targets):
        for name in _TEAMS_BOT_ROOTS:
            yield name, env.get(name) or None, use_env
    for index, target in enumerate(config.targets):
        key = f"targets[{index}] ({target.id})"
        for name in _API_ROOTS.get(target.channel, ()):
            yield f"{key}: {name}", env.get(name) or None, use_env
        url = _webhook(target)
        if url is not None:
            field = "url" if isinstance(target, WebsiteWebhookTarget) else "webhook_url"
            hint = (
                f'write {field} = "env:NAME" in broadcaster.toml and set NAME in .env to the '
                "sandbox's address (it prints one for each webhook)"
            )
            yield f"{key}.{field}", url.get_secret_value(), hint


def _webhook(target: TargetConfig) -> SecretStr | None:
    if isinstance(target, WebsiteWebhookTarget):
        return target.url
    if isinstance(target, TeamsWorkflowTarget):
        return target.webhook_url
    return None


def _host(url: str) -> str:
    # Only the host: a webhook URL read from .env may carry a token in its path or query.
    return urlsplit(url).netloc or "an address that is not a URL"
