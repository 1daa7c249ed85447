"""Deciding from an approval card in Teams: a click (``adaptiveCard/action``) becomes a decision.

The caller has verified the Bot Framework token (``/api/messages``); this module trusts only the
activity's ``from.aadObjectId``, which Teams sets to the clicking user's Entra object id. It is
mapped through ``[approval.identities]`` to an approver, and the decision goes through
:func:`~broadcaster.approval.approve` or :func:`~broadcaster.approval.reject` with the hash the
card carried, exactly as at the command line: one policy, one record. The proof kept with the
decision names the object id and the client's address.

Every click is answered with a card for the person who clicked: the card as it stands, or, when
the click was refused (not an approver, the author, a stale revision, already decided), that card
with a red notice saying why; a refusal changes nothing but the audit log. ``refresh`` (Teams
asking for the card as it stands) is answered the same way. Everyone else sees the change when
the worker updates the posted card (the decision queued that).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from broadcaster.app import App
from broadcaster.approval import approve, reject
from broadcaster.approval_card import (
    APPROVE_VERB,
    MAX_REASON,
    REASON_INPUT,
    REFRESH_VERB,
    REJECT_VERB,
    build_card,
)
from broadcaster.approval_card_view import ChannelLines, card_view
from broadcaster.errors import ApprovalError, InputError, NotFoundError, StateError
from broadcaster.store.audit import record_event

__all__ = ["ADAPTIVE_CARD_RESPONSE", "TeamsApprovals"]

log = logging.getLogger("broadcaster.approval")

ADAPTIVE_CARD_RESPONSE = "application/vnd.microsoft.card.adaptive"
_ERROR_RESPONSE = "application/vnd.microsoft.error"
_VERBS = (APPROVE_VERB, REJECT_VERB, REFRESH_VERB)
_MAX_ID = 2**31 - 1


class _BadClick(Exception):
    """The click's data is not one of our cards' (answered with an error, not a card)."""


class TeamsApprovals:
    """Answers clicks on approval cards for one workspace (one per server)."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.lines = ChannelLines(app)

    async def act(self, activity: Mapping[str, Any], client_ip: str | None) -> dict[str, Any]:
        """The invoke response to one ``adaptiveCard/action`` activity (its HTTP body)."""
        # The database and the preview are blocking: off the event loop.
        return await asyncio.to_thread(self.act_now, activity, client_ip)

    def act_now(self, activity: Mapping[str, Any], client_ip: str | None) -> dict[str, Any]:
        """:meth:`act`, blocking."""
        object_id = _object_id(activity)
        try:
            verb, announcement_id, revision, content_hash, data = _click(activity)
        except _BadClick as bad:
            self._audit_refusal(None, None, None, object_id, client_ip, str(bad), verb=None)
            return _error(400, "BadRequest", str(bad))
        person = self.app.config.approval.person_for(object_id) if object_id else None
        refusal: str | None = None
        try:
            if verb != REFRESH_VERB:
                refusal = self._decide(
                    verb, person, announcement_id, content_hash, data, object_id, client_ip
                )
            with self.app.store.read() as conn:
                view = card_view(
                    self.app,
                    conn,
                    announcement_id,
                    revision=revision,
                    lines=self.lines,
                    refusal=refusal,
                )
        except NotFoundError as missing:
            self._audit_refusal(
                person, announcement_id, revision, object_id, client_ip, str(missing), verb=verb
            )
            return _error(404, "NotFound", str(missing))
        return {"statusCode": 200, "type": ADAPTIVE_CARD_RESPONSE, "value": build_card(view)}

    def _decide(
        self,
        verb: str,
        person: str | None,
        announcement_id: int,
        content_hash: str,
        data: Mapping[str, Any],
        object_id: str | None,
        client_ip: str | None,
    ) -> str | None:
        """Record the decision; why it was refused, or None when it was taken."""
        if person is None:
            reason = (
                "your Teams account is not an approver's: its Entra object id "
                f"({object_id or 'none'}) is not in [approval.identities]"
            )
            self._audit_refusal(None, announcement_id, None, object_id, client_ip, reason, verb)
            return reason
        proof = {"method": "teams", "aad_object_id": object_id, "client_ip": client_ip}
        try:
            if verb == APPROVE_VERB:
                approve(
                    self.app,
                    person,
                    announcement_id,
                    expected_hash=content_hash,
                    via="teams",
                    proof=proof,
                )
            else:
                reject(
                    self.app,
                    person,
                    announcement_id,
                    _reason(data),
                    expected_hash=content_hash,
                    via="teams",
                    proof=proof,
                )
        except NotFoundError:
            raise
        except (ApprovalError, StateError, InputError) as refused:
            self._audit_refusal(
                person, announcement_id, None, object_id, client_ip, str(refused), verb
            )
            return str(refused)
        return None

    def _audit_refusal(
        self,
        person: str | None,
        announcement_id: int | None,
        revision: int | None,
        object_id: str | None,
        client_ip: str | None,
        reason: str,
        verb: str | None,
    ) -> None:
        log.info("Teams click refused (%s): %s", verb or "no verb", reason)
        with self.app.store.write() as conn:
            record_event(
                conn,
                actor=person or "teams",
                action="approval_refused",
                now=self.app.clock(),
                announcement_id=announcement_id,
                revision=revision,
                via="teams",
                verb=verb,
                aad_object_id=object_id,
                client_ip=client_ip,
                reason=reason,
            )


def _object_id(activity: Mapping[str, Any]) -> str | None:
    sender = activity.get("from")
    value = sender.get("aadObjectId") if isinstance(sender, Mapping) else None
    return value[:64] if isinstance(value, str) and value.strip() else None


def _click(activity: Mapping[str, Any]) -> tuple[str, int, int, str, Mapping[str, Any]]:
    """(verb, announcement id, revision, hash, data) of a click on one of our cards."""
    value = activity.get("value")
    action = value.get("action") if isinstance(value, Mapping) else None
    if not isinstance(action, Mapping):
        raise _BadClick("the invoke carries no value.action")
    verb, data = action.get("verb"), action.get("data")
    if verb not in _VERBS:
        raise _BadClick(f"unknown verb {str(verb)[:40]!r}: this bot knows {', '.join(_VERBS)}")
    if not isinstance(data, Mapping) or data.get("broadcaster") != "approval":
        raise _BadClick("the action's data is not from a broadcaster approval card")
    announcement_id, revision, content_hash = (
        data.get("announcement"),
        data.get("revision"),
        data.get("hash"),
    )
    if (
        not isinstance(announcement_id, int)
        or not isinstance(revision, int)
        or not _is_id(announcement_id)
        or not _is_id(revision)
        or not isinstance(content_hash, str)
    ):
        raise _BadClick("the card's data lacks the announcement id, revision or hash")
    return str(verb), announcement_id, revision, content_hash[:64], data


def _reason(data: Mapping[str, Any]) -> str:
    why = data.get(REASON_INPUT)
    if not isinstance(why, str) or not why.strip():
        raise InputError("a rejection needs a reason: say what must change")
    if len(why) > MAX_REASON:
        # The card shows the reason to everyone; Teams refuses a card over about 28 KB.
        raise InputError(f"the reason is {len(why)} characters; say it in at most {MAX_REASON}")
    return why


def _is_id(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= _MAX_ID


def _error(status: int, code: str, message: str) -> dict[str, Any]:
    return {
        "statusCode": status,
        "type": _ERROR_RESPONSE,
        "value": {"code": code, "message": message},
    }
