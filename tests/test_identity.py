"""The rules behind proving who acts at the CLI: OS account mappings, trust, key lines."""

from __future__ import annotations

import base64
import re
from typing import Any

import pytest

from broadcaster.config import Config
from broadcaster.errors import IdentityError, InputError
from broadcaster.identity import (
    Claim,
    describe_proof,
    prove,
    proven_by_os_account,
    trusts_cli_names,
)
from broadcaster.ssh_signatures import parse_public_key, parse_signature
from broadcaster.workspace import Workspace

ED25519 = base64.b64encode(b"\x00\x00\x00\x0bssh-ed25519\x00\x00\x00\x20" + b"k" * 32).decode()


def config(workspace: Workspace, *, exercise: bool = False, **approval: Any) -> Config:
    base = workspace.config
    return base.model_copy(
        update={
            "broadcaster": base.broadcaster.model_copy(update={"exercise": exercise}),
            "approval": base.approval.model_copy(update=approval),
        }
    )


@pytest.mark.parametrize(
    ("os_users", "person", "account", "proven"),
    [
        ({}, "anna", "anna", True),  # unmapped: the same name
        ({}, "anna", "root", False),
        ({"anna": "ah"}, "anna", "ah", True),
        ({"anna": "ah"}, "anna", "anna", False),  # a mapped person: only their account
        ({"jens": "anna"}, "anna", "anna", False),  # a mapped account: only its person
        ({"jens": "anna"}, "jens", "anna", True),
    ],
)
def test_an_os_account_proves_one_person(
    workspace: Workspace, os_users: dict[str, str], person: str, account: str, proven: bool
) -> None:
    assert proven_by_os_account(config(workspace, os_users=os_users), person, account) is proven


@pytest.mark.parametrize(
    ("setting", "exercise", "trusted"),
    [(None, False, False), (None, True, True), (True, False, True), (False, True, False)],
)
def test_names_are_trusted_by_setting_else_in_an_exercise(
    workspace: Workspace, setting: bool | None, exercise: bool, trusted: bool
) -> None:
    chosen = config(workspace, exercise=exercise, trust_cli_names=setting)
    assert trusts_cli_names(chosen) is trusted


def test_a_refusal_offers_every_way_to_prove_it(workspace: Workspace) -> None:
    who = Claim(person="anna.hasselbom", os_user="root", source="--as")
    with pytest.raises(IdentityError) as raised:
        prove(config(workspace, trust_cli_names=False), who, doing="approve it", can_sign=True)
    message = str(raised.value)
    for words in ("'root'", "[approval.os_users]", "--sign-with", "trust_cli_names = true"):
        assert words in message
    with pytest.raises(IdentityError) as unsigned:
        prove(config(workspace, trust_cli_names=False), who, doing="write a draft")
    assert "--sign-with" not in str(unsigned.value)


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("ssh-ed25519", "the whole public key line"),
        ("ssh-ed25519 not*base64", "not a base64 SSH public key"),
        (f"ssh-rsa {ED25519}", "says it is 'ssh-ed25519', not 'ssh-rsa'"),
        ("ssh-ed25519 AAAA", "not a base64 SSH public key"),  # too short to hold a type
    ],
)
def test_a_key_line_that_is_not_one_says_why(line: str, problem: str) -> None:
    with pytest.raises(ValueError, match=re.escape(problem)):
        parse_public_key(line)


def test_a_key_line_keeps_its_comment_out_of_the_key() -> None:
    key = parse_public_key(f"ssh-ed25519 {ED25519} anna@laptop\n")
    assert key.key_type == "ssh-ed25519" and key.comment == "anna@laptop"
    assert key.line() == f"ssh-ed25519 {ED25519}"
    assert key.fingerprint.startswith("SHA256:") and not key.fingerprint.endswith("=")


def test_proofs_in_words_never_show_a_signature() -> None:
    assert describe_proof({"method": "os_user", "os_user": "jeod"}) == "proven by OS account jeod"
    signed = {"method": "ssh", "key": "SHA256:abc", "signature": "-----BEGIN" + "A" * 300}
    assert describe_proof(signed) == "proven by SSH key SHA256:abc"
    other = {"method": "teams", "aad_object_id": "0000-1", "token": "x" * 200}
    assert describe_proof(other) == "proven by teams (aad_object_id=0000-1)"


def _wire(*parts: bytes) -> bytes:
    return b"".join(len(part).to_bytes(4, "big") + part for part in parts)


def test_every_truncation_of_a_signature_is_bad_input_never_a_crash() -> None:
    key = base64.b64decode(ED25519)
    blob = b"SSHSIG" + (1).to_bytes(4, "big")
    blob += _wire(key, b"broadcaster", b"", b"sha512", b"s" * 83)
    whole = parse_signature(_armor(blob), "it")
    assert whole.namespace == "broadcaster" and whole.key.blob == key
    # Cut before the namespace ends, it is refused as bad input; after, OpenSSH refuses it.
    readable = len(blob) - len(_wire(b"", b"sha512", b"s" * 83))
    for cut in range(readable):
        with pytest.raises(InputError, match="SSH signature"):
            parse_signature(_armor(blob[:cut]), "it")
    for cut in range(readable, len(blob)):
        assert parse_signature(_armor(blob[:cut]), "it").namespace == "broadcaster"


def _armor(blob: bytes) -> str:
    encoded = base64.b64encode(blob).decode()
    lines = [encoded[i : i + 70] for i in range(0, len(encoded), 70)] or [""]
    return "\n".join(["-----BEGIN SSH SIGNATURE-----", *lines, "-----END SSH SIGNATURE-----"])
