"""Graph API objects: the error answer, a Page post, its fields and a cursor-paged feed read."""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from starlette.responses import JSONResponse, Response

from .exchange import EmulatorError

__all__ = ["GraphError", "Post", "feed_page", "post_fields"]

_MESSAGES = {
    1: "An unknown error has occurred.",
    2: "An unexpected error has occurred. Please retry your request later.",
    4: "(#4) Application request limit reached",
    10: "(#10) This endpoint requires the 'pages_read_engagement' permission or the 'Page "
    "Public Content Access' feature.",
    17: "(#17) User request limit reached",
    32: "(#32) Page request limit reached",
    100: "(#100) Invalid parameter",
    190: "Invalid OAuth access token - Cannot parse access token",
    200: "(#200) If posting to a page, requires both pages_read_engagement and "
    "pages_manage_posts as an admin with sufficient administrative permission",
    368: "(#368) The action attempted has been deemed abusive or is otherwise disallowed",
    506: "(#506) Duplicate status message",
    613: "(#613) Calls to this api have exceeded the rate limit.",
    80001: "(#80001) There have been too many calls to this Page account. "
    "Wait a bit and try again.",
}


class GraphError(EmulatorError):
    """A Graph API error answer."""

    def __init__(
        self,
        code: int,
        message: str | None = None,
        *,
        subcode: int | None = None,
        kind: str = "OAuthException",
        status: int = 400,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Describe the error; ``message`` defaults to Graph's text for ``code``."""
        self.code, self.subcode, self.kind, self.status = code, subcode, kind, status
        self.message = message or _MESSAGES.get(code, "An unknown error has occurred.")
        self.headers = headers or {}
        super().__init__(self.message)

    def response(self) -> Response:
        """Graph's error JSON."""
        error: dict[str, Any] = {"message": self.message, "type": self.kind, "code": self.code}
        if self.subcode is not None:
            error["error_subcode"] = self.subcode
        error["fbtrace_id"] = secrets.token_urlsafe(8)
        return JSONResponse({"error": error}, self.status, headers=self.headers)


@dataclass
class Post:
    """A post on a Page feed as the emulator keeps it."""

    id: str
    page_id: str
    message: str | None
    link: str | None
    created_time: float
    updated_time: float
    published: bool = True
    scheduled_publish_time: int | None = None
    deleted: bool = False
    edits: list[str] = field(default_factory=list)


_DEFAULT_FIELDS = ("created_time", "message", "id")
_MAX_LIMIT = 100


def _graph_time(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")


def post_fields(post: Post, fields: str | None) -> dict[str, Any]:
    """The requested ``fields`` of a post (Graph's defaults when None).

    Raises:
        GraphError: A field the PagePost node does not have.
    """
    available: dict[str, Any] = {
        "id": post.id,
        "message": post.message,
        "link": post.link,
        "created_time": _graph_time(post.created_time),
        "updated_time": _graph_time(post.updated_time),
        "is_published": post.published,
        "scheduled_publish_time": post.scheduled_publish_time,
        "permalink_url": f"https://www.facebook.com/{post.page_id}/posts/{post.id.split('_')[1]}",
        "from": {"id": post.page_id},
    }
    names = [f.strip() for f in fields.split(",")] if fields else list(_DEFAULT_FIELDS)
    for name in names:
        if name not in available:
            raise GraphError(
                100, f"(#100) Tried accessing nonexisting field ({name}) on node type (PagePost)"
            )
    return {n: available[n] for n in names if available[n] is not None}


def _cursor(index: int) -> str:
    return base64.urlsafe_b64encode(str(index).encode()).decode()


def _index(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        return int(base64.urlsafe_b64decode(cursor.encode()).decode()) + 1
    except ValueError:
        return 0


def feed_page(posts: list[Post], params: dict[str, Any], url: str) -> dict[str, Any]:
    """One page of a feed read: ``{"data": [...], "paging": {...}}``.

    Args:
        posts: The Page's published posts, newest first.
        params: Query parameters: ``fields``, ``limit``, ``since``, ``until`` (Unix times),
            ``after`` (cursor), ``access_token`` and ``appsecret_proof``.
        url: The URL of this request without query, for the ``next`` link.
    """
    try:
        limit = min(int(params.get("limit", 25)), _MAX_LIMIT)
        since = float(params["since"]) if "since" in params else None
        until = float(params["until"]) if "until" in params else None
    except ValueError:
        raise GraphError(100, "(#100) Invalid parameter") from None
    selected = [
        p
        for p in posts
        if (since is None or p.created_time >= since) and (until is None or p.created_time <= until)
    ]
    start = _index(params.get("after"))
    chunk = selected[start : start + limit]
    data = [post_fields(p, params.get("fields")) for p in chunk]
    paging: dict[str, Any] = {}
    if chunk:
        paging["cursors"] = {"before": _cursor(start), "after": _cursor(start + len(chunk) - 1)}
    if start + limit < len(selected):
        query = {k: v for k, v in params.items() if k != "after"}
        query["after"] = paging["cursors"]["after"]
        paging["next"] = f"{url}?{urlencode(query)}"
    return {"data": data, "paging": paging} if paging else {"data": data}
