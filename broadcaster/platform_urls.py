"""Public API roots and the override roots that replace them (DESIGN §4).

Every call to Microsoft's login — msal's token requests in the Teams bot, and the fetch of a
tenant's signing keys when ``serve`` checks a click — can be pointed at an emulator with
``BROADCASTER_TEAMS_LOGIN_URL``; :func:`rewrite_url` is how either side swaps the root.
"""

from __future__ import annotations

__all__ = ["LOGIN_URL", "TEAMS_LOGIN_URL_VAR", "rewrite_url"]

#: Microsoft Entra ID (login.microsoftonline.com), the root every tenant's URLs start with.
LOGIN_URL = "https://login.microsoftonline.com"
#: The variable naming the root that replaces :data:`LOGIN_URL` (the sandbox's ``/login``).
TEAMS_LOGIN_URL_VAR = "BROADCASTER_TEAMS_LOGIN_URL"


def rewrite_url(url: str, public_root: str, override_root: str | None) -> str:
    """Replace ``public_root`` at the start of ``url`` by ``override_root``.

    The root only matches on a path boundary: ``https://login.microsoftonline.com.example`` is not
    ``https://login.microsoftonline.com``. Without an override the URL is returned unchanged.

    Args:
        url: The URL about to be requested.
        public_root: The platform's public API root, e.g. ``https://graph.facebook.com/``.
        override_root: The root to use instead, e.g. ``http://127.0.0.1:8765/graph/``.

    Returns:
        The URL to request.
    """
    if not override_root:
        return url
    public = public_root.rstrip("/")
    if url != public and not url.startswith(public + "/"):
        return url
    return override_root.rstrip("/") + url[len(public) :]
