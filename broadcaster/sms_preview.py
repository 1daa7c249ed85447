"""What a send to an SMS target costs, for ``preview``: encoding, segments, recipients, money.

The text is the adapter's (rendered and with its GSM-safe replacements, exactly as it will be
sent); the recipients are the dispatch's own (the adapter's :meth:`~Channel.recipients` on the
list as it stands, less the numbers on the opt-out list, whose deliveries the dispatch creates
cancelled), so the figures are what ``send`` would do now.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from broadcaster.app import App
from broadcaster.channels.sms import SmsChannel
from broadcaster.errors import NotFoundError
from broadcaster.recipients import RecipientLists
from broadcaster.rendering.message import Message
from broadcaster.rendering.sms_text import SmsText, sms_cost
from broadcaster.store.recipients import member_counts

__all__ = ["SmsSummary", "sms_summary"]


@dataclass(frozen=True, kw_only=True)
class SmsSummary:
    """One SMS target's text and list, counted."""

    text: SmsText
    list_name: str
    #: Numbers that would get the text (None when the list does not exist).
    recipients: int | None
    price_per_segment: Decimal | None = None
    #: Why it cannot be sent as it stands (the list is missing), else None.
    problem: str | None = None

    @property
    def total_segments(self) -> int | None:
        """Segments the whole send costs."""
        return None if self.recipients is None else self.text.segments * self.recipients

    @property
    def cost(self) -> Decimal | None:
        """What the send costs, when a price per segment is configured."""
        if self.recipients is None:
            return None
        return sms_cost(self.text.segments, self.recipients, self.price_per_segment)

    def to_json(self) -> dict[str, Any]:
        """DESIGN §5: ``encoding``, ``segments``, ``recipients``, ``total_segments`` (and
        ``cost`` with a configured price), plus the details the human view shows."""
        document: dict[str, Any] = {
            "encoding": str(self.text.encoding),
            "segments": self.text.segments,
            "recipients": self.recipients,
            "total_segments": self.total_segments,
            "characters": self.text.characters,
            "per_segment": self.text.per_segment,
            "list": self.list_name,
            "replaced": list(self.text.replaced),
            "forced_ucs2": list(self.text.forced_ucs2),
        }
        cost = self.cost
        if cost is not None:
            document["cost"] = float(cost)
        return document

    def lines(self) -> list[str]:
        """The summary for people, each line within 80 columns."""
        sms = self.text
        parts = "1 SMS" if sms.segments == 1 else f"{sms.segments} segments"
        lines = [
            f"SMS: {sms.encoding}, {sms.characters} characters = {parts} per message "
            f"({sms.per_segment} per segment)"
        ]
        if sms.replaced:
            lines.append(f"Replaced to stay GSM-7: {' '.join(sms.replaced)}")
        if sms.forced_ucs2:
            shown = " ".join(repr(c) for c in sms.forced_ucs2[:8])
            lines.append(f"Forcing UCS-2 (70 per SMS): {shown}")
        if self.recipients is None:
            return lines
        lines.append(
            f"Recipients: {self.recipients:,} on list {self.list_name} (opted-out left out)"
        )
        total = f"Total: {self.total_segments:,} segments"
        cost = self.cost
        if cost is not None:
            total += f", cost {cost:,.2f}"
        lines.append(total)
        return lines


def sms_summary(app: App, adapter: SmsChannel, message: Message) -> SmsSummary:
    """The summary of one SMS target; ``problem`` says when its list does not exist."""
    target = adapter.sms
    text = adapter.describe(message)
    try:
        with app.store.read() as conn:
            # Counted in the database: the numbers themselves are not needed here.
            members, opted = member_counts(conn, RecipientLists(conn).list_id(target.list))
            recipients = members - opted
    except NotFoundError as missing:
        return SmsSummary(
            text=text,
            list_name=target.list,
            recipients=None,
            problem=f"{missing} (target {target.id} sends to it)",
        )
    return SmsSummary(
        text=text,
        list_name=target.list,
        recipients=recipients,
        price_per_segment=target.price_per_segment,
    )
