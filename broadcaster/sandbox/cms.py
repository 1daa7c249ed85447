"""CMS webhook receiver: what the website channel's ``webhook`` mode talks to (README, "The CMS
side", is the protocol; this is a receiver that follows it to the letter).

``MORBYLANGA_CMS_WEBHOOK_URL`` is ``<sandbox>/cms/api/broadcaster?token=<cms_token>``: a CMS URL
that carries a token, as real ones do. Any collection path under ``/cms/`` works:

==============================  ===============================================================
``POST   <collection>``         create the announcement's resource: ``201 {"id"}`` with
                                ``Location``; a repeated ``Idempotency-Key`` is answered as the
                                first time (``Idempotent-Replayed: true``), a known announcement
                                ``id`` updates its resource (``200``)
``PUT    <collection>/<id>``    replace the resource with a later revision: ``200 {"id"}``
``DELETE <collection>/<id>``    remove it: ``204``; gone already: ``404``
==============================  ===============================================================

Every request needs the URL's token (else 401), and a body signed as :mod:`broadcaster.signing`
describes whose timestamp is within :attr:`CmsEmulator.tolerance_s` of the sandbox's clock (else
401: a tampered body, an old timestamp, a wrong secret). A lower revision never replaces a higher
one; a PUT or DELETE whose signed body is about another announcement or resource is refused, so a
signature cannot be replayed against a resource it was not made for.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import threading
from dataclasses import asdict, dataclass, field
from typing import Any

from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from broadcaster.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify_webhook

from .exchange import Context, Emulator, EmulatorError, Incoming, retry_after_headers
from .faults import Fault

__all__ = ["CmsDelivery", "CmsEmulator", "CmsResource"]

IDEMPOTENCY_HEADER = "idempotency-key"


class CmsError(EmulatorError):
    """A refusal by the CMS."""

    def __init__(self, status: int, error: str, retry_after: float | None = None) -> None:
        """Describe the refusal."""
        super().__init__(error)
        self.status, self.error, self.retry_after = status, error, retry_after

    def response(self) -> Response:
        """``{"error": ...}``."""
        headers = retry_after_headers(self.retry_after)
        return JSONResponse({"error": self.error}, self.status, headers=headers)


@dataclass
class CmsResource:
    """One announcement as the CMS holds it: the highest revision it was sent."""

    id: str
    collection: str
    uid: str
    revision: int
    document: dict[str, Any]
    created: float
    updated: float
    deleted: bool = False
    #: Every write that reached it, as ``METHOD revision``, oldest first.
    history: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready copy."""
        return asdict(self)


@dataclass(frozen=True)
class CmsDelivery:
    """A request the CMS accepted (signature valid, carried out or answered as a repeat)."""

    method: str
    path: str
    payload: Any
    received: float
    resource: str
    idempotency_key: str | None = None
    replayed: bool = False


@dataclass(frozen=True)
class _Answer:
    """What a POST was answered, kept per Idempotency-Key to answer a repeat the same way."""

    body_hash: str
    status: int
    resource: str


class CmsEmulator(Emulator):
    """The Mörbylånga CMS's broadcaster endpoint (any collection path under ``/cms``)."""

    platform = "cms"
    mount = "/cms"

    def __init__(self, ctx: Context) -> None:
        """Create the receiver with the token and webhook secret from the sandbox credentials."""
        super().__init__(ctx)
        self._lock = threading.Lock()
        self._deliveries: list[CmsDelivery] = []
        self._resources: dict[str, CmsResource] = {}
        self._answers: dict[tuple[str, str], _Answer] = {}
        self._ids = itertools.count(1)
        #: How far a request's timestamp may be from the sandbox's clock (the replay window).
        self.tolerance_s = 300.0

    def deliveries(self) -> list[CmsDelivery]:
        """Accepted requests, oldest first."""
        with self._lock:
            return list(self._deliveries)

    def resources(self, *, include_deleted: bool = False) -> list[CmsResource]:
        """The announcements the CMS holds, oldest first (with those removed, if asked)."""
        with self._lock:
            return [r for r in self._resources.values() if include_deleted or not r.deleted]

    def resource(self, resource_id: str) -> CmsResource | None:
        """One resource by its id, removed or not."""
        with self._lock:
            return self._resources.get(resource_id)

    def reset(self) -> None:
        """Forget every request and resource."""
        with self._lock:
            self._deliveries.clear()
            self._resources.clear()
            self._answers.clear()
            self._ids = itertools.count(1)

    def routes(self) -> list[BaseRoute]:
        """Every path: collections take POST, their resources PUT and DELETE."""
        return [self.route("/{path:path}", self._receive, ["POST", "PUT", "DELETE"])]

    def targets(self, incoming: Incoming) -> list[str]:
        """The path below ``/cms``, then (for a resource) its collection."""
        path = "/" + incoming.path_params.get("path", incoming.path.removeprefix(self.mount))
        if incoming.method == "POST":
            return [path]
        return [path, path.rsplit("/", 1)[0]]

    def fault_response(self, fault: Fault) -> Response:
        """``{"error": ...}`` with the status."""
        message = fault.message or f"CMS unavailable ({fault.status})"
        return CmsError(fault.status, message, fault.retry_after).response()

    def unknown_path(self, incoming: Incoming) -> Response:
        """405 for any other method."""
        return CmsError(405, "method not allowed").response()

    # -- the protocol -------------------------------------------------------------------------

    async def _receive(self, incoming: Incoming) -> Response:
        self._authenticate(incoming)
        payload = incoming.json
        if not isinstance(payload, dict):
            raise CmsError(400, "the body is not a JSON object")
        path = self.targets(incoming)[0]
        key = incoming.headers.get(IDEMPOTENCY_HEADER)
        with self._lock:
            if incoming.method == "POST":
                return self._create(path, payload, incoming.body, key)
            collection, resource_id = path.rsplit("/", 1)
            resource = self._resources.get(resource_id)
            if resource is None or resource.collection != collection or resource.deleted:
                raise CmsError(404, f"no resource {resource_id} here")
            if incoming.method == "PUT":
                return self._replace(resource, payload, key)
            return self._remove(resource, payload, key)

    def _authenticate(self, incoming: Incoming) -> None:
        token = (incoming.query.get("token") or [""])[-1]
        if not hmac.compare_digest(token.encode(), self.ctx.credentials.cms_token.encode()):
            raise CmsError(401, "missing or wrong token in the URL")
        valid = verify_webhook(
            self.ctx.credentials.cms_secret,
            incoming.headers.get(TIMESTAMP_HEADER.lower()),
            incoming.headers.get(SIGNATURE_HEADER.lower()),
            incoming.body,
            now=self.ctx.clock(),
            tolerance_s=self.tolerance_s,
        )
        if not valid:
            raise CmsError(
                401, "invalid or missing signature, or a timestamp outside the replay window"
            )

    def _create(
        self, collection: str, payload: dict[str, Any], body: bytes, key: str | None
    ) -> Response:
        if not key:
            raise CmsError(400, "the Idempotency-Key header is required")
        uid, revision = _announcement(payload)
        digest = hashlib.sha256(body).hexdigest()
        earlier = self._answers.get((collection, key))
        if earlier is not None:
            if earlier.body_hash != digest:
                raise CmsError(422, "this Idempotency-Key was used for a different body")
            self._accepted("POST", collection, payload, earlier.resource, key, replayed=True)
            return self._created(earlier.resource, collection, earlier.status, replayed=True)
        known = next(
            (r for r in self._resources.values() if r.collection == collection and r.uid == uid),
            None,
        )
        if known is not None:  # one resource per announcement: a later revision updates it
            self._apply(known, payload, revision, "POST")
            status, resource_id = 200, known.id
        else:
            resource_id = str(next(self._ids))
            now = self.ctx.clock()
            created = CmsResource(resource_id, collection, uid, revision, payload, now, now)
            created.history.append(f"POST {revision}")
            self._resources[resource_id] = created
            status = 201
        self._answers[(collection, key)] = _Answer(digest, status, resource_id)
        self._accepted("POST", collection, payload, resource_id, key)
        return self._created(resource_id, collection, status)

    def _replace(self, resource: CmsResource, payload: dict[str, Any], key: str | None) -> Response:
        uid, revision = _announcement(payload)
        if uid != resource.uid:
            raise CmsError(409, f"resource {resource.id} holds another announcement")
        self._apply(resource, payload, revision, "PUT")
        self._accepted("PUT", resource.collection, payload, resource.id, key)
        return JSONResponse({"id": resource.id})

    def _remove(self, resource: CmsResource, payload: dict[str, Any], key: str | None) -> Response:
        if str(payload.get("resource")) != resource.id or payload.get("id") != resource.uid:
            raise CmsError(409, f"the signed body is not about resource {resource.id}")
        resource.deleted = True
        resource.updated = self.ctx.clock()
        resource.history.append("DELETE")
        self._accepted("DELETE", resource.collection, payload, resource.id, key)
        return Response(status_code=204)

    def _apply(
        self, resource: CmsResource, payload: dict[str, Any], revision: int, how: str
    ) -> None:
        """Keep the highest revision: an older one arriving late changes nothing."""
        resource.history.append(f"{how} {revision}")
        if revision > resource.revision:
            resource.revision, resource.document = revision, payload
            resource.deleted = False
            resource.updated = self.ctx.clock()

    def _created(
        self, resource_id: str, collection: str, status: int, *, replayed: bool = False
    ) -> Response:
        headers = {"Location": f"{self.ctx.base_url}{self.mount}{collection}/{resource_id}"}
        if replayed:
            headers["Idempotent-Replayed"] = "true"
        return JSONResponse({"id": resource_id}, status, headers=headers)

    def _accepted(
        self,
        method: str,
        collection: str,
        payload: dict[str, Any],
        resource_id: str,
        key: str | None,
        *,
        replayed: bool = False,
    ) -> None:
        path = collection if method == "POST" else f"{collection}/{resource_id}"
        self._deliveries.append(
            CmsDelivery(method, path, payload, self.ctx.clock(), resource_id, key, replayed)
        )


def _announcement(payload: dict[str, Any]) -> tuple[str, int]:
    """The announcement ``id`` and ``revision`` a document is about (400 when missing)."""
    uid, revision = payload.get("id"), payload.get("revision")
    if not isinstance(uid, str) or not uid:
        raise CmsError(400, "the document has no announcement 'id'")
    if not isinstance(revision, int) or isinstance(revision, bool) or revision < 1:
        raise CmsError(400, "the document has no 'revision' (a whole number from 1)")
    return uid, revision
