"""Who is at the command line, and how that is proven.

The person is ``--as NAME``, else ``BROADCASTER_USER``, else the person the OS account running
the command stands for. Approvals, rejections and the author of a draft or edit must be *proven*
(issue 13): a name typed at the CLI is only a claim. A claim is proven when

- the OS account running the command (from the kernel's user id, not ``$USER``, which anyone can
  set) is the person: mapped to them in ``[approval.os_users]``, or, unmapped, of the same name;
- for approve and reject, an SSH signature of the decision and the content hash by the person's
  key in ``[approval.ssh_keys]`` (:mod:`broadcaster.approver_proof`);
- ``[approval] trust_cli_names`` is on (by default only in exercise mode): the name is believed,
  and the proof says so.

The proof is a small JSON object kept with the decision and in the audit log:
``{"method": "os_user" | "ssh" | "trusted_name", "os_user": ..., ...}``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from broadcaster.config import Config
from broadcaster.errors import IdentityError, InputError

__all__ = [
    "OS_USER",
    "SSH",
    "TRUSTED_NAME",
    "Claim",
    "claim",
    "describe_proof",
    "os_account",
    "prove",
    "proven_by_os_account",
    "trusts_cli_names",
]

#: The ways a person is proven at the CLI (the proof's ``method``).
OS_USER = "os_user"
SSH = "ssh"
TRUSTED_NAME = "trusted_name"

_NAME = re.compile(r"^[\w.@+-]{1,120}$")


@dataclass(frozen=True, kw_only=True)
class Claim:
    """Who the command line says is acting, and the OS account that is running it."""

    person: str
    os_user: str
    #: Where the name came from: ``--as``, ``BROADCASTER_USER`` or ``the OS account``.
    source: str


def os_account() -> str:
    """The login name of the account running this process, from its user id.

    ``getpass.getuser()`` reads ``$LOGNAME`` and ``$USER`` first, which anyone can set; the
    password database entry of ``os.getuid()`` is what the kernel says.
    """
    try:
        import pwd
    except ImportError:  # Windows: the logged-on account, from the system
        try:
            return os.getlogin()
        except OSError:
            raise InputError("cannot tell which OS account is running broadcaster") from None
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:  # a user id without a passwd entry (some containers): it proves nobody
        return f"uid {os.getuid()}"


def trusts_cli_names(config: Config) -> bool:
    """Whether a name given at the CLI is believed without proof: the setting, else exercise."""
    setting = config.approval.trust_cli_names
    return config.broadcaster.exercise if setting is None else setting


def proven_by_os_account(config: Config, person: str, account: str) -> bool:
    """True when the OS ``account`` proves ``person`` (``[approval.os_users]``, else same name).

    A mapping is exclusive both ways: a mapped person is proven only by their mapped account,
    and a mapped account proves only the person it is mapped to.
    """
    mapped = config.approval.os_users
    if person in mapped:
        return mapped[person] == account
    return person == account and account not in mapped.values()


def claim(explicit: str | None, environ: Mapping[str, str], config: Config | None) -> Claim:
    """Who the command line names (``--as``, ``BROADCASTER_USER``, else the OS account's person)."""
    account = os_account()
    if explicit:
        name, source = explicit, "--as"
    elif environ.get("BROADCASTER_USER"):
        name, source = environ["BROADCASTER_USER"], "BROADCASTER_USER"
    else:
        name, source = _person_of(config, account), "the OS account"
    _check_name(name, source)
    return Claim(person=name, os_user=account, source=source)


def prove(config: Config, who: Claim, *, doing: str, can_sign: bool = False) -> dict[str, Any]:
    """The proof that ``who.person`` is acting, or :class:`IdentityError` saying how to give one.

    ``doing`` names the action for the message ("approve announcement 3"); ``can_sign`` adds the
    SSH signature to the ways offered (approve and reject).
    """
    if proven_by_os_account(config, who.person, who.os_user):
        return {"method": OS_USER, "os_user": who.os_user}
    if trusts_cli_names(config):
        return {"method": TRUSTED_NAME, "os_user": who.os_user}
    raise IdentityError(refusal(config, who, doing=doing, can_sign=can_sign))


def refusal(config: Config, who: Claim, *, doing: str, can_sign: bool) -> str:
    """Why ``who`` is not believed, and every way to prove it (one paragraph)."""
    person = who.person
    mapped = config.approval.os_users.get(person)
    account = f"the OS account {mapped!r}" if mapped else "an OS account of that name"
    ways = [f"run it as {account} (or map yours to {person} in [approval.os_users])"]
    if can_sign:
        ways.append(
            f"sign the decision with {person}'s SSH key (--sign-with KEY, or --signature "
            "FILE; the public key goes in [approval.ssh_keys])"
        )
    ways.append("in an exercise only, set [approval] trust_cli_names = true")
    return (
        f"cannot {doing} as {person}: {who.source} names {person}, but this command runs as "
        f"the OS account {who.os_user!r}, which does not prove it. To prove who you are: "
        + "; or ".join(ways)
    )


def describe_proof(proof: Mapping[str, Any]) -> str:
    """A proof in a few words, for ``show`` and ``audit``: ``SSH key SHA256:...``."""
    method = proof.get("method")
    account = proof.get("os_user")
    if method == OS_USER:
        return f"proven by OS account {account}"
    if method == SSH:
        return f"proven by SSH key {proof.get('key')}"
    if method == TRUSTED_NAME:
        return f"name trusted (trust_cli_names), run by OS account {account}"
    # Other ways (a Teams click): every short field, never a long one such as a signature.
    shown = [f"{k}={v}" for k, v in proof.items() if k != "method" and len(str(v)) <= 80]
    return f"proven by {method}" + (f" ({', '.join(shown)})" if shown else "")


def _person_of(config: Config | None, account: str) -> str:
    """The person an OS account stands for: mapped in ``[approval.os_users]``, else its name."""
    if config is not None:
        for person, mapped in config.approval.os_users.items():
            if mapped == account:
                return person
    return account


def _check_name(name: str, source: str) -> None:
    if _NAME.match(name):
        return
    if source == "the OS account":
        raise InputError(
            f"cannot tell who you are: the OS account {name!r} is not a usable name; "
            "pass --as NAME or set BROADCASTER_USER"
        )
    raise InputError(f"{name!r} is not a usable name (letters, digits, . _ - @ +; no spaces)")
