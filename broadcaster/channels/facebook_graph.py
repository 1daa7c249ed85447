"""The one module that speaks facebook-sdk 3.1.0: swap the SDK here and nowhere else.

facebook-sdk is unmaintained (PLATFORMS.md §1) and needs help on every call:

* its default Graph version is v2.8 and its constructor refuses two-digit versions, so the
  version is set on the object after construction;
* it has no ``appsecret_proof``: :class:`GraphClient` computes it and adds it to every call;
* it passes ``timeout=None`` unless told, and drops the HTTP status and headers of every answer:
  a ``requests`` response hook on the session keeps both (the usage headers drive throttling);
* an answer without a ``Content-Type`` crashes it with ``KeyError``.

Everything the adapter sees is SDK-neutral: :class:`GraphFailure` (Graph answered with an error,
or with something that is not a Graph answer) and :class:`GraphUnreachable` (no answer at all).
Calls are blocking; the adapter runs them in its own bounded thread pool.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import facebook
import requests
from urllib3.exceptions import MaxRetryError

__all__ = ["GraphClient", "GraphFailure", "GraphUnreachable"]

#: Posts asked for per page of a feed read, and how many pages a read may follow.
_PAGE_SIZE = 50
_MAX_PAGES = 6


@dataclass(eq=False)
class GraphFailure(Exception):
    """Graph answered, but not with what was asked: an error body, or an answer it cannot read.

    Attributes:
        code: Graph's ``error.code`` (None when the body was not a Graph error).
        subcode: ``error.error_subcode``.
        message: Graph's message, or what was wrong with the answer.
        status: The HTTP status (facebook-sdk drops it; the session hook keeps it).
        headers: The answer's headers.
    """

    code: int | None
    subcode: int | None
    message: str
    status: int | None
    headers: Mapping[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.message


@dataclass(eq=False)
class GraphUnreachable(Exception):
    """No answer came. ``maybe_arrived`` is False only when the request never left (no
    connection could be made); a timeout or a dropped connection may follow a request Graph
    carried out."""

    reason: str
    maybe_arrived: bool

    def __str__(self) -> str:
        return self.reason


class GraphClient:
    """One Page's Graph API client: a page token, its proof, one HTTP session."""

    def __init__(
        self,
        *,
        page_id: str,
        token: str,
        app_secret: str,
        version: str,
        timeout: float,
        session: requests.Session,
        on_headers: Callable[[Mapping[str, str]], None],
    ) -> None:
        """Build the SDK object (no network I/O).

        Args:
            page_id: The Page's numeric id.
            token: The Page access token.
            app_secret: The app's secret, for ``appsecret_proof``.
            version: Graph API version, e.g. ``v24.0``.
            timeout: Seconds each HTTP request may take.
            session: The HTTP session (rewriting the API root where overridden); closed by
                :meth:`close`.
            on_headers: Called with the headers of every answer, errors included.
        """
        self.page_id = page_id
        self._token = token
        self._app_secret = app_secret
        self._proof = _proof(app_secret, token)
        self._session = session
        self._on_headers = on_headers
        self._last = threading.local()  # each call runs wholly in one pool thread
        session.hooks["response"].append(self._observe)
        self._graph = facebook.GraphAPI(access_token=token, timeout=timeout, session=session)
        # Set after construction: 3.1.0's constructor accepts only #.# versions up to 3.1.
        self._graph.version = version

    def _observe(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self._last.status = response.status_code
        self._last.headers = dict(response.headers)
        self._on_headers(response.headers)

    # -- calls ---------------------------------------------------------------------------------

    def post(self, message: str, link: str | None) -> str:
        """Publish a post on the Page's feed; return its id (``{page}_{post}``)."""
        fields = {"message": message, **({"link": link} if link else {})}
        answer = self._call(f"{self.page_id}/feed", post_args=fields)
        post_id = answer.get("id")
        if not isinstance(post_id, str) or not post_id:
            raise self._odd("the answer to a new post has no post id")
        return post_id

    def edit(self, post_id: str, message: str) -> None:
        """Replace a post's text (Graph cannot change a post's link)."""
        self._call(post_id, post_args={"message": message})

    def delete(self, post_id: str) -> None:
        """Delete a post. Not ``GraphAPI.delete_object``: it cannot carry the proof."""
        self._call(post_id, method="DELETE")

    def page(self) -> dict[str, Any]:
        """The Page's id and name, read with the page token."""
        return self._call(self.page_id, args={"fields": "id,name"})

    def token_info(self, app_id: str) -> dict[str, Any]:
        """What Graph knows of the page token (``debug_token``), asked with the app's token."""
        app_token = f"{app_id}|{self._app_secret}"
        answer = self._call(
            "debug_token",
            args={"input_token": self._token, "access_token": app_token},
            proof=_proof(self._app_secret, app_token),
        )
        data = answer.get("data")
        return data if isinstance(data, dict) else {}

    def recent_posts(self, since: int) -> Iterator[dict[str, Any]]:
        """The Page's own posts created since ``since`` (Unix time), newest first.

        ``/posts`` rather than ``/feed``: the feed also holds visitors' posts, and a visitor who
        copies our text must not look like our post.
        """
        args: dict[str, Any] = {
            "fields": "id,message,link,created_time",
            "since": str(since),
            "limit": str(_PAGE_SIZE),
        }
        for _ in range(_MAX_PAGES):
            answer = self._call(f"{self.page_id}/posts", args=dict(args))
            yield from answer.get("data") or []
            after = ((answer.get("paging") or {}).get("cursors") or {}).get("after")
            if not (answer.get("paging") or {}).get("next") or not after:
                return
            args["after"] = after

    def close(self) -> None:
        """Close the HTTP session."""
        self._session.close()

    # -- one request ---------------------------------------------------------------------------

    def _call(
        self,
        path: str,
        *,
        args: dict[str, Any] | None = None,
        post_args: dict[str, Any] | None = None,
        method: str | None = None,
        proof: str | None = None,
    ) -> dict[str, Any]:
        self._last.status, self._last.headers = None, {}
        signed = {"appsecret_proof": proof or self._proof}
        if post_args is not None:
            post_args = {**post_args, **signed}
        else:
            args = {**(args or {}), **signed}
        try:
            answer = self._graph.request(
                f"{self._graph.version}/{path}", args=args, post_args=post_args, method=method
            )
        except facebook.GraphAPIError as exc:
            raise self._failure(exc) from None
        except requests.RequestException as exc:
            raise _unreachable(exc) from None
        except (KeyError, ValueError) as exc:
            # No Content-Type (KeyError) or a body that is not JSON: not Graph's own answer,
            # e.g. a proxy's error page.
            raise self._odd(f"Graph's answer could not be read ({type(exc).__name__})") from None
        if not isinstance(answer, dict):
            raise self._odd("Graph's answer is not a JSON object")
        return answer

    def _failure(self, exc: facebook.GraphAPIError) -> GraphFailure:
        result = exc.result if isinstance(exc.result, dict) else {}
        error = result.get("error")
        if not isinstance(error, dict):
            error = {}
        code = error.get("code")
        subcode = error.get("error_subcode")
        return GraphFailure(
            code=code if isinstance(code, int) else None,
            subcode=subcode if isinstance(subcode, int) else None,
            message=str(exc.message) if exc.message else "Graph reported an error",
            status=getattr(self._last, "status", None),
            headers=getattr(self._last, "headers", {}),
        )

    def _odd(self, message: str) -> GraphFailure:
        status = getattr(self._last, "status", None)
        suffix = f" (HTTP {status})" if status is not None else ""
        return GraphFailure(
            None, None, message + suffix, status, getattr(self._last, "headers", {})
        )


def _proof(app_secret: str, token: str) -> str:
    """``appsecret_proof``: the token signed with the app secret, sent with every call."""
    return hmac.new(app_secret.encode(), token.encode(), hashlib.sha256).hexdigest()


def _unreachable(exc: requests.RequestException) -> GraphUnreachable:
    """Whether a failed request may have reached Graph, from how it failed."""
    if isinstance(exc, requests.ConnectTimeout):
        return GraphUnreachable("no connection to Graph (timed out connecting)", False)
    if isinstance(exc, requests.ConnectionError) and exc.args:
        cause = exc.args[0]
        # A failed connect surfaces as MaxRetryError; an answer lost after the request went
        # out (the connection dropped) as ProtocolError.
        if isinstance(cause, MaxRetryError):
            return GraphUnreachable("no connection to Graph (refused or unresolvable)", False)
        return GraphUnreachable("the connection to Graph dropped before its answer", True)
    if isinstance(exc, requests.Timeout):
        return GraphUnreachable("Graph did not answer within the timeout", True)
    return GraphUnreachable(f"the request to Graph failed: {type(exc).__name__}", True)
