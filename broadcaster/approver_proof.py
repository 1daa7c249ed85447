"""Who approves or rejects at the command line, proven (issue 13, DESIGN §8).

``approve`` and ``reject`` call :func:`prove_decider` before deciding. Without a signature the
person is proven by the OS account or, where ``trust_cli_names`` is on, believed
(:func:`broadcaster.identity.prove`). With ``--signature FILE`` or ``--sign-with KEY`` the
person is proven by an SSH signature over the current revision's full content hash (the 64 hex
characters, no newline; :mod:`broadcaster.ssh_signatures`), and the decision is then bound to
exactly that hash: if the text changes in between, the decision is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from broadcaster.app import App
from broadcaster.config import Config
from broadcaster.errors import ApprovalError, IdentityError, InputError
from broadcaster.identity import SSH, Claim, prove
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

__all__ = ["Decider", "prove_decider", "signature_proof"]

#: How many earlier revisions are tried to explain a signature over an old hash.
_EARLIER_TRIED = 10


@dataclass(frozen=True, kw_only=True)
class Decider:
    """A proven approver: the person, the proof to keep, and the hash the decision binds to."""

    person: str
    proof: dict[str, Any]
    expected_hash: str | None


def prove_decider(
    app: App,
    who: Claim,
    announcement_id: int,
    *,
    doing: str,
    expected_hash: str | None = None,
    signature_file: Path | None = None,
    sign_with: Path | None = None,
) -> Decider:
    """Prove ``who`` for a decision on ``announcement_id``; :class:`IdentityError` if unproven."""
    if signature_file is not None and sign_with is not None:
        raise InputError("give --signature FILE or --sign-with KEY, not both")
    if signature_file is None and sign_with is None:
        proof = prove(app.config, who, doing=doing, can_sign=True)
        return Decider(person=who.person, proof=proof, expected_hash=expected_hash)
    with app.store.read() as conn:
        current = get_announcement(conn, announcement_id).revision
        hashes = revision_hashes(conn, announcement_id)
    full = current.content_hash
    if expected_hash is not None and not full.startswith(expected_hash.strip().lower()):
        raise ApprovalError(
            f"--hash {expected_hash} is not the hash of the current revision {current.number} "
            f"of announcement {announcement_id} ({full}); look at it again "
            f"(`broadcaster show {announcement_id}`) before deciding"
        )
    signature = _signature(full, signature_file, sign_with)
    earlier = {n: h for n, h in hashes.items() if n < current.number}
    proof = signature_proof(app.config, who, full, signature, earlier=earlier)
    return Decider(person=who.person, proof=proof, expected_hash=full)


def _signature(content_hash: str, signature_file: Path | None, sign_with: Path | None) -> Signature:
    """The signature given in a file, or made now with ``ssh-keygen -Y sign``."""
    if signature_file is not None:
        from broadcaster.text import read_text_file

        text = read_text_file(signature_file, "--signature", MAX_SIGNATURE_BYTES)
        return parse_signature(text, f"--signature {signature_file}")
    if sign_with is None:
        raise InputError("give --signature FILE or --sign-with KEY")
    return parse_signature(sign(content_hash.encode(), sign_with), "ssh-keygen's signature")


def signature_proof(
    config: Config,
    who: Claim,
    content_hash: str,
    signature: Signature,
    *,
    earlier: dict[int, str] | None = None,
) -> dict[str, Any]:
    """The ``ssh`` proof when ``signature`` is ``who.person``'s over ``content_hash``.

    Otherwise :class:`IdentityError` saying what does not fit: no key configured, another
    namespace, another key, or other signed bytes (an earlier revision's hash, a trailing
    newline) — each checked by OpenSSH, never by us alone.
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
    if verify(content_hash.encode(), signature, person, key):
        return {
            "method": SSH,
            "key": key.fingerprint,
            "namespace": NAMESPACE,
            "signed": content_hash,
            "signature": signature.armored,
            "os_user": who.os_user,
        }
    raise IdentityError(_mismatch(content_hash, signature, person, key, earlier or {}))


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


def _mismatch(
    content_hash: str, signature: Signature, person: str, key: PublicKey, earlier: dict[int, str]
) -> str:
    """Why a signature by the right key does not verify: what it signs, when we can tell."""
    sign_it = f"sign exactly the 64 characters: printf '%s' {content_hash} | ssh-keygen -Y sign"
    tried = sorted(earlier.items(), reverse=True)[:_EARLIER_TRIED]
    for number, old in tried:
        if old != content_hash and verify(old.encode(), signature, person, key):
            return (
                f"the signature is over the hash of revision {number} ({old}), but the text "
                f"has changed since: the current hash is {content_hash}. Look at it again, "
                f"then {sign_it} ..."
            )
    if verify((content_hash + "\n").encode(), signature, person, key):
        return (
            f"the signature is over the hash followed by a newline (echo adds one); {sign_it} ..."
        )
    return (
        f"the signature does not verify over the current content hash {content_hash}: {sign_it} ..."
    )
