"""Send an SDK's requests for a platform's public API root to an override root (DESIGN §4).

Two SDKs cannot be given a base URL per client:

* facebook-sdk 3.1.0 joins the module constant ``https://graph.facebook.com/`` with each path, but
  takes a ``requests.Session``; :func:`graph_session` returns one that rewrites the prefix, so two
  clients in one process can talk to two different roots (the module constant is process-global).
* msal refuses any authority that is not ``https`` (also the token endpoint it discovers), but takes
  an ``http_client``; :func:`msal_http_client` returns a session that keeps msal's https URLs and
  rewrites ``https://login.microsoftonline.com`` on the wire.

Both also apply a default timeout: facebook-sdk passes ``timeout=None`` unless told otherwise and
msal ignores its own ``timeout`` argument once an ``http_client`` is given, and a request without a
timeout can hang a worker forever.
"""

from __future__ import annotations

from typing import Any

import requests

from broadcaster.platform_urls import LOGIN_URL, rewrite_url

__all__ = [
    "GRAPH_URL",
    "LOGIN_URL",
    "RewritingSession",
    "graph_session",
    "msal_http_client",
    "rewrite_url",
]

GRAPH_URL = "https://graph.facebook.com/"
DEFAULT_TIMEOUT_S = 30.0


class RewritingSession(requests.Session):
    """A ``requests.Session`` that rewrites one public API root and applies a default timeout."""

    def __init__(
        self,
        public_root: str,
        override_root: str | None,
        *,
        timeout: float | None = DEFAULT_TIMEOUT_S,
    ) -> None:
        """Create the session.

        Args:
            public_root: The platform's public API root that the SDK uses.
            override_root: Where to send those requests instead; None sends them unchanged.
            timeout: Used whenever the caller passes no timeout (or None).
        """
        super().__init__()
        self.public_root = public_root
        self.override_root = override_root
        self.default_timeout = timeout

    def request(
        self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any
    ) -> requests.Response:
        """Send the request to the rewritten URL (see :class:`requests.Session.request`)."""
        if isinstance(url, bytes):
            url = url.decode()
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.default_timeout
        return super().request(
            method, rewrite_url(url, self.public_root, self.override_root), *args, **kwargs
        )


def graph_session(
    api_url: str | None, *, timeout: float | None = DEFAULT_TIMEOUT_S
) -> RewritingSession:
    """Session for ``facebook.GraphAPI(session=...)`` honouring ``BROADCASTER_FACEBOOK_API_URL``.

    Args:
        api_url: The override of ``https://graph.facebook.com/`` (version and path are appended),
            or None for the real Graph API.
        timeout: Default timeout in seconds.
    """
    return RewritingSession(GRAPH_URL, api_url, timeout=timeout)


def msal_http_client(
    login_url: str | None, *, timeout: float | None = DEFAULT_TIMEOUT_S
) -> RewritingSession:
    """``http_client`` for msal honouring ``BROADCASTER_TEAMS_LOGIN_URL``.

    Keep the authority ``https://login.microsoftonline.com/<tenant>`` in msal; this client sends
    its requests to the override. Pair it with ``instance_discovery=False``.

    Args:
        login_url: The override of ``https://login.microsoftonline.com``, or None for the real one.
        timeout: Default timeout in seconds.
    """
    return RewritingSession(LOGIN_URL, login_url, timeout=timeout)
