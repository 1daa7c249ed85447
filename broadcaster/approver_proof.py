"""Who approves or rejects at the command line, proven (issue 13, DESIGN §8).

``approve`` and ``reject`` call :func:`prove_decider` before deciding. Without a signature the
person is proven by the OS account or, where ``trust_cli_names`` is on, believed
(:func:`broadcaster.identity.prove`). With ``--signature FILE`` or ``--sign-with KEY`` the
person is proven by an SSH signature (:mod:`broadcaster.ssh_signatures`) over exactly::

    approve 12 3f9a...c1

— the decision, the announcement id and the current revision's full content hash (64 hex
characters), separated by single spaces, with no newline (:func:`signed_message`). The hash binds
the signature to the text; the decision and the id bind it to this one act. Signatures are kept
in the audit log, which every user can read: a signature over the hash alone could be replayed
there to *reject* as the approver, or to approve another announcement with the same text. The
decision is then bound to exactly that hash: if the text changes in between, it is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from broadcaster.app import App
from broadcaster.approval import APPROVE, REJECT
from broadcaster.config import Config
from broadcaster.errors import ApprovalError, IdentityError, InputError, StateError
from broadcaster.identity import SSH, Claim, prove
from broadcaster.model import AnnouncementState
from broadcaster.ssh_signatures import (
    MAX_SIGNATURE_BYTES,
    NAMESPACE,
    PublicKey,
    Signature,
    parse_public_key,
    parse_signature,
    sign,
    verify,
)
from broadcaster.store.announcements import get_announcement, revision_hashes

__all__ = ["Decider", "prove_decider", "signature_proof", "signed_message"]

#: How many earlier revisions are tried to explain a signature over an old hash.
_EARLIER_TRIED = 10


@dataclass(frozen=True, kw_only=True)
class Decider:
    """A proven approver: the person, the proof to keep, and the hash the decision binds to."""

    person: str
    proof: dict[str, Any]
    expected_hash: str | None


def signed_message(decision: str, announcement_id: int, content_hash: str) -> str:
    """What an approver signs: ``approve 12 <64 hex>`` (no newline)."""
    if decision not in (APPROVE, REJECT):
        raise ValueError(f"unknown decision {decision!r}")
    return f"{decision} {announcement_id} {content_hash}"


def prove_decider(
    app: App,
    who: Claim,
    announcement_id: int,
    *,
    decision: str,
    expected_hash: str | None = None,
    signature_file: Path | None = None,
    sign_with: Path | None = None,
) -> Decider:
    """Prove ``who`` for ``decision`` on ``announcement_id``; :class:`IdentityError` if not."""
    doing = f"{decision} announcement {announcement_id}"
    if signature_file is not None and sign_with is not None:
        raise InputError("give --signature FILE or --sign-with KEY, not both")
    if signature_file is None and sign_with is None:
        proof = prove(app.config, who, doing=doing, can_sign=True)
        return Decider(person=who.person, proof=proof, expected_hash=expected_hash)
    with app.store.read() as conn:
        announcement = get_announcement(conn, announcement_id)
        hashes = revision_hashes(conn, announcement_id)
    if announcement.state != AnnouncementState.PENDING_APPROVAL:
        # Said before anything is signed: --sign-with would ask for a passphrase for nothing.
        raise StateError(
            f"announcement {announcement_id} is {announcement.state}; only an announcement "
            "pending approval can be approved or rejected (submit it first)"
        )
    current = announcement.revision
    full = current.content_hash
    if expected_hash is not None and not full.startswith(expected_hash.strip().lower()):
        raise ApprovalError(
            f"--hash {expected_hash} is not the hash of the current revision {current.number} "
            f"of announcement {announcement_id} ({full}); look at it again "
            f"(`broadcaster show {announcement_id}`) before deciding"
        )
    message = signed_message(decision, announcement_id, full)
    signature = _signature(message, signature_file, sign_with)
    near_misses = _near_misses(decision, announcement_id, full, hashes, current.number)
    proof = signature_proof(app.config, who, message, signature, near_misses=near_misses)
    return Decider(person=who.person, proof=proof, expected_hash=full)


def _signature(message: str, signature_file: Path | None, sign_with: Path | None) -> Signature:
    """The signature given in a file, or made now with ``ssh-keygen -Y sign``."""
    if signature_file is not None:
        from broadcaster.text import read_text_file

        text = read_text_file(signature_file, "--signature", MAX_SIGNATURE_BYTES)
        return parse_signature(text, f"--signature {signature_file}")
    if sign_with is None:
        raise InputError("give --signature FILE or --sign-with KEY")
    return parse_signature(sign(message.encode(), sign_with), "ssh-keygen's signature")


def signature_proof(
    config: Config,
    who: Claim,
    message: str,
    signature: Signature,
    *,
    near_misses: list[tuple[str, str]] | None = None,
) -> dict[str, Any]:
    """The ``ssh`` proof when ``signature`` is ``who.person``'s over ``message``.

    Otherwise :class:`IdentityError` saying what does not fit: no key configured, another
    namespace, another key, or other signed bytes — for those, each of ``near_misses``
    (``(message, what it means)``) is tried, so the refusal can say which, e.g. an earlier
    revision's hash. Whether a signature is good is always OpenSSH's answer, never ours alone.
    """
    person = who.person
    key = _key_of(config, person)
    if signature.namespace != NAMESPACE:
        raise IdentityError(
            f"the signature is in the namespace {signature.namespace!r}, not {NAMESPACE!r}: "
            f"sign with ssh-keygen -Y sign -n {NAMESPACE}"
        )
    if signature.key.blob != key.blob:
        raise IdentityError(
            f"the signature was made with the key {signature.key.fingerprint}, which is not "
            f"{person}'s key in [approval.ssh_keys] ({key.fingerprint}); sign with {person}'s "
            "own key"
        )
    if verify(message.encode(), signature, person, key):
        return {
            "method": SSH,
            "key": key.fingerprint,
            "namespace": NAMESPACE,
            "signed": message,
            "signature": signature.armored,
            "os_user": who.os_user,
        }
    sign_it = f"sign exactly: printf '%s' '{message}' | ssh-keygen -Y sign -n {NAMESPACE} ..."
    for other, meaning in near_misses or []:
        if verify(other.encode(), signature, person, key):
            raise IdentityError(f"the signature is over {other!r}: {meaning}; {sign_it}")
    raise IdentityError(f"the signature does not verify over {message!r}; {sign_it}")


def _near_misses(
    decision: str, announcement_id: int, content_hash: str, hashes: dict[int, str], number: int
) -> list[tuple[str, str]]:
    """What a signature might say instead of the right message, and what each would mean."""
    message = signed_message(decision, announcement_id, content_hash)
    other = REJECT if decision == APPROVE else APPROVE
    misses = [
        (message + "\n", "the same words with a newline after them (echo adds one)"),
        (content_hash, "the bare hash, which does not say what is decided"),
        (
            signed_message(other, announcement_id, content_hash),
            f"it is a signature to {other}, not to {decision}",
        ),
    ]
    earlier = sorted(((n, h) for n, h in hashes.items() if n < number), reverse=True)
    for old_number, old in earlier[:_EARLIER_TRIED]:
        if old != content_hash:
            misses.append(
                (
                    signed_message(decision, announcement_id, old),
                    f"the hash of revision {old_number}, but the text has changed since: "
                    f"revision {number} is current, with hash {content_hash}; look at it again",
                )
            )
    return misses


def _key_of(config: Config, person: str) -> PublicKey:
    line = config.approval.ssh_keys.get(person)
    if line is None:
        raise IdentityError(
            f"{person} has no SSH key in [approval.ssh_keys], so no signature can prove them; "
            f'add their public key line there ("{person}" = "ssh-ed25519 AAAA...")'
        )
    try:
        return parse_public_key(line)
    except ValueError as exc:
        raise IdentityError(
            f"the SSH key of {person} in [approval.ssh_keys] cannot be read ({exc}); "
            "fix it (`broadcaster check` checks every key)"
        ) from None
