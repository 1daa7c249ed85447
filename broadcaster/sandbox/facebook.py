"""Facebook Graph API emulator: Page feed posts, edits, deletes and reads.

Mounted at ``/graph``, so ``BROADCASTER_FACEBOOK_API_URL=http://127.0.0.1:PORT/graph/`` replaces
``https://graph.facebook.com/``. It checks what Graph checks for a server-side Page token: the
token (form body for POST, query for GET/DELETE, or ``Authorization: Bearer``), that it belongs to
the Page, and ``appsecret_proof`` (HMAC-SHA256 of the token with the app secret; the app is set to
"Require App Secret"). Errors are Graph's ``{"error": {"message", "type", "code",
"error_subcode", "fbtrace_id"}}``, always with ``Content-Type: application/json`` (facebook-sdk
crashes without it). Answers carry ``X-App-Usage`` (the app's
calls over every Page) and ``X-Business-Use-Case-Usage`` (one Page's calls, with the minutes until
a spent budget comes back).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import re
import secrets
import threading
from collections import deque
from typing import Any

from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from .credentials import FACEBOOK_APP_ID, PAGE_NAMES
from .exchange import Context, Emulator, Incoming, retry_after_headers
from .faults import Fault
from .graph_model import GraphError, Post, feed_page, post_fields

__all__ = ["FacebookEmulator"]

_VERSION = re.compile(r"^v\d{1,2}\.\d{1,2}$")
_CODE_FOR_STATUS = {400: 100, 401: 190, 403: 200, 404: 100, 429: 4, 500: 1, 502: 2, 503: 2}
_THROTTLE_CODES = frozenset({4, 17, 32, 613, 80001})
_APP_THROTTLE_CODES = frozenset({4, 17})
_TOKEN_PROBLEMS = {
    "expired": (463, "Error validating access token: Session has expired."),
    "password_changed": (
        460,
        "Error validating access token: The session has been invalidated because the user "
        "changed their password or Facebook has changed the session for security reasons.",
    ),
    "invalid": (467, "Error validating access token: The access token is invalid."),
}
_UNSUPPORTED = (
    "Unsupported {method} request. Object with ID '{id}' does not exist, cannot be loaded due to "
    "missing permissions, or does not support this operation."
)
_SCHEDULE_MIN_S, _SCHEDULE_MAX_S = 10 * 60, 30 * 24 * 3600


class FacebookEmulator(Emulator):
    """Graph API: ``/{v}/{page}/feed`` (GET, POST) and ``/{v}/{post}`` (GET, POST, DELETE)."""

    platform = "facebook"
    mount = "/graph"

    def __init__(self, ctx: Context) -> None:
        """Create the emulator; Page tokens come from the sandbox credentials."""
        super().__init__(ctx)
        self._lock = threading.Lock()
        self._posts: dict[str, Post] = {}
        self._next_id = 10**15
        self._token_problems: dict[str, tuple[int, str]] = {}
        self._token_expiry: dict[str, int] = {}  # page id -> Unix time (absent: never expires)
        self._calls: dict[str, deque[float]] = {}
        self.duplicate_window_s = 24 * 3600.0
        #: Calls per rolling hour: of one Page (``X-Business-Use-Case-Usage``) and of the whole
        #: app over every Page (``X-App-Usage``), as Graph counts them.
        self.hourly_call_budget = 200
        self.app_hourly_call_budget = 2000

    # Python API -------------------------------------------------------------------------------

    def posts(self, page_id: str | None = None, *, include_deleted: bool = False) -> list[Post]:
        """Posts, oldest first, of one Page or all."""
        with self._lock:
            return [
                p
                for p in self._posts.values()
                if (page_id is None or p.page_id == page_id) and (include_deleted or not p.deleted)
            ]

    def invalidate_token(self, page_id: str, reason: str = "expired") -> None:
        """Make a Page token fail with 190: ``expired``, ``password_changed`` or ``invalid``."""
        self._token_problems[page_id] = _TOKEN_PROBLEMS[reason]

    def expire_token_at(self, page_id: str, when: int) -> None:
        """Give a Page's token an expiry (Unix time), as ``debug_token`` reports it."""
        self._token_expiry[page_id] = when

    def restore_token(self, page_id: str) -> None:
        """Accept a Page's token again."""
        self._token_problems.pop(page_id, None)

    def reset(self) -> None:
        """Forget posts, call counts and token problems."""
        with self._lock:
            self._posts.clear()
            self._calls.clear()
            self._token_problems.clear()
            self._token_expiry.clear()

    # Emulator ---------------------------------------------------------------------------------

    def routes(self) -> list[BaseRoute]:
        """Node and edge routes."""
        return [
            self.route("/{version}/debug_token", self._debug_token, ["GET"]),
            self.route("/{version}/{node}", self._node, ["GET", "POST", "DELETE"]),
            self.route("/{version}/{node}/{edge}", self._edge, ["GET", "POST"]),
        ]

    def targets(self, incoming: Incoming) -> list[str]:
        """The Page id (a post id ``{page}_{n}`` names its Page), then the node itself."""
        node = incoming.path_params.get("node", "")
        page = node.split("_", 1)[0]
        return [page, node] if page != node else [page]

    def fault_response(self, fault: Fault) -> Response:
        """Graph error JSON; throttling codes also report a spent quota in the usage headers."""
        code = fault.code if isinstance(fault.code, int) else _CODE_FOR_STATUS.get(fault.status, 1)
        headers = retry_after_headers(fault.retry_after)
        if code in _APP_THROTTLE_CODES:
            headers["X-App-Usage"] = json.dumps(_usage(100))
        elif code in _THROTTLE_CODES and fault.target is not None:
            # A Page's budget is spent: its business use-case header says so, with an estimate.
            minutes = math.ceil((fault.retry_after or 0) / 60)
            headers["X-Business-Use-Case-Usage"] = json.dumps(
                _page_usage(fault.target, 100, minutes)
            )
        error = GraphError(
            code, fault.message, subcode=fault.subcode, status=fault.status, headers=headers
        )
        return error.response()

    def unknown_path(self, incoming: Incoming) -> Response:
        """Graph's answer for paths it cannot parse."""
        return GraphError(2500, f"Unknown path components: {incoming.path}").response()

    # Handlers ---------------------------------------------------------------------------------

    async def _debug_token(self, incoming: Incoming) -> Response:
        """What Graph knows of a token, asked with the app's own token (``{app-id}|{secret}``)."""
        app_token = f"{FACEBOOK_APP_ID}|{self.ctx.credentials.fb_app_secret}"
        asker = incoming.field("access_token") or ""
        if not hmac.compare_digest(asker, app_token):
            raise GraphError(190, "Invalid OAuth access token - Cannot parse access token")
        token = incoming.field("input_token") or ""
        tokens = self.ctx.credentials.page_tokens.items()
        page_id = next((p for p, t in tokens if hmac.compare_digest(t, token)), None)
        if page_id is None:
            data: dict[str, Any] = {"is_valid": False, "error": {"code": 190, "message": "Invalid"}}
        else:
            problem = self._token_problems.get(page_id)
            data = {
                "app_id": FACEBOOK_APP_ID,
                "type": "PAGE",
                "profile_id": page_id,
                "is_valid": problem is None,
                "expires_at": self._token_expiry.get(page_id, 0),  # 0: never
                "scopes": ["pages_manage_posts", "pages_read_engagement"],
            }
            if problem is not None:
                data["error"] = {"code": 190, "subcode": problem[0], "message": problem[1]}
        return JSONResponse({"data": data})

    async def _node(self, incoming: Incoming) -> Response:
        page_id = self._authorise(incoming)
        node = incoming.path_params["node"]
        if incoming.method == "GET":
            return self._answer(incoming, page_id, self._read_node(incoming, node, page_id))
        post = self._own_post(node, page_id, incoming.method.lower())
        with self._lock:
            if incoming.method == "DELETE":
                post.deleted = True
            else:
                self._edit(post, incoming)
        return self._answer(incoming, page_id, {"success": True})

    async def _edge(self, incoming: Incoming) -> Response:
        page_id = self._authorise(incoming)
        node, edge = incoming.path_params["node"], incoming.path_params["edge"]
        if node == "me":
            node = page_id
        if node not in PAGE_NAMES or edge not in ("feed", "posts", "published_posts"):
            raise GraphError(100, f"(#100) Tried accessing nonexisting field ({edge})")
        if node != page_id:
            raise GraphError(200 if incoming.method == "POST" else 10, status=403)
        if incoming.method == "POST":
            if edge != "feed":
                raise GraphError(100, _UNSUPPORTED.format(method="post", id=node), subcode=33)
            return self._answer(incoming, page_id, {"id": self._create(incoming, page_id).id})
        live = [p for p in self.posts(page_id) if p.published][::-1]
        body = feed_page(live, incoming.params(), self.ctx.base_url + incoming.path)
        return self._answer(incoming, page_id, body)

    # Helpers ----------------------------------------------------------------------------------

    def _authorise(self, incoming: Incoming) -> str:
        if not _VERSION.match(incoming.path_params["version"]):
            raise GraphError(2500, f"Unknown path components: {incoming.path}")
        token = incoming.field("access_token") or _bearer(incoming.headers)
        if not token:
            raise GraphError(104, "An access token is required to request this resource.")
        page_id = next((p for p, t in self.ctx.credentials.page_tokens.items() if t == token), None)
        if page_id is None:
            raise GraphError(190)
        if page_id in self._token_problems:
            subcode, message = self._token_problems[page_id]
            raise GraphError(190, message, subcode=subcode)
        proof = incoming.field("appsecret_proof")
        secret = self.ctx.credentials.fb_app_secret.encode()
        expected = hmac.new(secret, token.encode(), hashlib.sha256).hexdigest()
        if not proof:
            raise GraphError(
                100,
                "API calls from the server require an appsecret_proof argument",
                kind="GraphMethodException",
            )
        if not hmac.compare_digest(proof, expected):
            raise GraphError(
                100,
                "Invalid appsecret_proof provided in the API argument",
                kind="GraphMethodException",
            )
        return page_id

    def _read_node(self, incoming: Incoming, node: str, page_id: str) -> dict[str, Any]:
        if node in ("me", page_id):
            return {"name": PAGE_NAMES[page_id], "id": page_id}
        with self._lock:
            post = self._posts.get(node)
        if post is None or post.deleted or post.page_id != page_id:
            raise GraphError(
                100,
                _UNSUPPORTED.format(method="get", id=node),
                subcode=33,
                kind="GraphMethodException",
            )
        return post_fields(post, incoming.params().get("fields"))

    def _own_post(self, node: str, page_id: str, method: str) -> Post:
        with self._lock:
            post = self._posts.get(node)
        if post is None or post.deleted:
            raise GraphError(
                100,
                _UNSUPPORTED.format(method=method, id=node),
                subcode=33,
                kind="GraphMethodException",
            )
        if post.page_id != page_id:
            raise GraphError(200, status=403)
        return post

    def _edit(self, post: Post, incoming: Incoming) -> None:
        message = incoming.field("message")
        if not message:
            raise GraphError(100, "(#100) Missing message or attachment")
        post.edits.append(post.message or "")
        post.message = message
        post.updated_time = self.ctx.clock()

    def _create(self, incoming: Incoming, page_id: str) -> Post:
        message, link = incoming.field("message"), incoming.field("link")
        if not message and not link:
            raise GraphError(100, "(#100) Missing message or attachment")
        if link and not re.match(r"^https?://[^\s/]+", link):
            raise GraphError(100, "(#100) The parameter link is not a valid URL")
        published, scheduled = self._schedule(incoming)
        now = self.ctx.clock()
        with self._lock:
            for post in self._posts.values():
                recent = now - post.created_time < self.duplicate_window_s
                same = (post.message, post.link) == (message, link)
                if post.page_id == page_id and not post.deleted and recent and same:
                    raise GraphError(506)
            self._next_id += 1
            post = Post(
                f"{page_id}_{self._next_id}", page_id, message, link, now, now, published, scheduled
            )
            self._posts[post.id] = post
        return post

    def _schedule(self, incoming: Incoming) -> tuple[bool, int | None]:
        published = (incoming.field("published") or "true").lower() not in ("false", "0")
        raw = incoming.field("scheduled_publish_time")
        if raw is None:
            return published, None
        try:
            when = int(raw)
        except ValueError:
            when = -1
        ahead = when - self.ctx.clock()
        if published or not _SCHEDULE_MIN_S <= ahead <= _SCHEDULE_MAX_S:
            raise GraphError(100, "(#100) The specified scheduled publish time is invalid.")
        return False, when

    def _answer(self, incoming: Incoming, page_id: str, body: dict[str, Any]) -> Response:
        now = self.ctx.clock()
        with self._lock:
            calls = self._calls.setdefault(page_id, deque())
            calls.append(now)
            for page_calls in self._calls.values():
                while page_calls and page_calls[0] < now - 3600:
                    page_calls.popleft()
            percent = min(100, len(calls) * 100 // self.hourly_call_budget)
            app_calls = sum(len(c) for c in self._calls.values())
            app_percent = min(100, app_calls * 100 // self.app_hourly_call_budget)
            # A spent budget comes back as its oldest calls leave the rolling hour.
            regain = math.ceil((calls[0] + 3600 - now) / 60) if percent >= 100 else 0
        headers = {
            "facebook-api-version": incoming.path_params["version"],
            "X-App-Usage": json.dumps(_usage(app_percent)),
            "X-Business-Use-Case-Usage": json.dumps(_page_usage(page_id, percent, regain)),
            "x-fb-trace-id": secrets.token_urlsafe(8),
        }
        return JSONResponse(body, headers=headers)


def _usage(percent: int) -> dict[str, int]:
    return {"call_count": percent, "total_cputime": percent // 2, "total_time": percent // 2}


def _page_usage(page_id: str, percent: int, regain_minutes: int) -> dict[str, Any]:
    entry = {"type": "pages", **_usage(percent), "estimated_time_to_regain_access": regain_minutes}
    return {page_id: [entry]}


def _bearer(headers: dict[str, str]) -> str | None:
    scheme, _, token = headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() in ("bearer", "oauth") and token else None
