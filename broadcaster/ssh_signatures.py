"""SSH signatures (``ssh-keygen -Y sign``), the way git signs commits, for CLI approvals.

An approver signs an exact message (for approvals, ``approve ID HASH``:
:mod:`broadcaster.approver_proof`) in the namespace ``broadcaster``::

    printf '%s' 'approve 12 3f9a...c1' | ssh-keygen -Y sign -f ~/.ssh/id_ed25519 -n broadcaster

and the signature is checked with ``ssh-keygen -Y verify`` against an allowed-signers file that
names only that person's key from ``[approval.ssh_keys]``. OpenSSH does the cryptography; this
module only reads the signature's envelope (the SSHSIG format, PROTOCOL.sshsig) to say *why* a
signature does not fit — another key, another namespace — before asking OpenSSH.

ssh-keygen runs without a shell, under a timeout, with its files in a private temporary folder
that is removed afterwards.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import shutil
import struct
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from broadcaster.errors import BroadcastError, InputError

__all__ = [
    "MAX_SIGNATURE_BYTES",
    "NAMESPACE",
    "PublicKey",
    "Signature",
    "parse_public_key",
    "parse_signature",
    "sign",
    "verify",
]

#: The SSH signature namespace of broadcaster approvals (``ssh-keygen -n``).
NAMESPACE = "broadcaster"
#: A signature file larger than this is not one (an RSA-4096 signature is about 1.7 kB).
MAX_SIGNATURE_BYTES = 16 * 1024
#: Verifying is quick; signing may wait for a passphrase typed at the terminal.
VERIFY_TIMEOUT = 20.0
SIGN_TIMEOUT = 120.0

_BEGIN = "-----BEGIN SSH SIGNATURE-----"
_END = "-----END SSH SIGNATURE-----"
_MAGIC = b"SSHSIG"
_SIGN_HINT = (
    "make one with: printf '%s' 'approve ID HASH' | ssh-keygen -Y sign -f ~/.ssh/id_ed25519 "
    "-n broadcaster > approval.sig (HASH: the full content hash from `broadcaster show ID`)"
)


@dataclass(frozen=True)
class PublicKey:
    """An SSH public key: its type, its wire-format blob and the comment after it."""

    key_type: str
    blob: bytes
    comment: str = ""

    @property
    def fingerprint(self) -> str:
        """``SHA256:...`` as ``ssh-keygen -l`` prints it."""
        digest = base64.b64encode(hashlib.sha256(self.blob).digest()).decode().rstrip("=")
        return f"SHA256:{digest}"

    def line(self) -> str:
        """``type base64`` (no comment: the allowed-signers file does not need it)."""
        return f"{self.key_type} {base64.b64encode(self.blob).decode()}"


@dataclass(frozen=True)
class Signature:
    """An armored SSH signature, with what its envelope says."""

    armored: str
    namespace: str
    key: PublicKey


def parse_public_key(line: str) -> PublicKey:
    """A public key line (``ssh-ed25519 AAAA... comment``); ValueError saying what is wrong."""
    fields = line.strip().split(None, 2)
    if len(fields) < 2:
        raise ValueError("write the whole public key line: type, key, optional comment")
    key_type, encoded = fields[0], fields[1]
    try:
        blob = base64.b64decode(encoded, validate=True)
        inner, _ = _string(blob, 0)
    except (binascii.Error, ValueError):
        raise ValueError(f"the key after {key_type!r} is not a base64 SSH public key") from None
    if inner.decode("ascii", "replace") != key_type:
        raise ValueError(
            f"the key says it is {inner.decode('ascii', 'replace')!r}, not {key_type!r}"
        )
    return PublicKey(key_type, blob, fields[2] if len(fields) > 2 else "")


def parse_signature(text: str, where: str) -> Signature:
    """Read an armored SSH signature; :class:`InputError` naming ``where`` when it is not one."""
    lines = [line.strip() for line in text.strip().splitlines()]
    if len(lines) < 3 or lines[0] != _BEGIN or lines[-1] != _END:
        raise InputError(f"{where} is not an SSH signature (no {_BEGIN} block); {_SIGN_HINT}")
    try:
        blob = base64.b64decode("".join(lines[1:-1]), validate=True)
        key_blob, offset = _string(blob, len(_MAGIC) + 4)
        namespace, _ = _string(blob, offset)
        key_type, _ = _string(key_blob, 0)
    except (binascii.Error, ValueError):
        blob = b""
    if not blob.startswith(_MAGIC):
        raise InputError(f"{where} is a damaged SSH signature; {_SIGN_HINT}")
    key = PublicKey(key_type.decode("ascii", "replace"), key_blob)
    armored = "\n".join(lines) + "\n"
    return Signature(armored, namespace.decode("utf-8", "replace"), key)


def sign(message: bytes, key_file: Path) -> str:
    """Sign ``message`` with ``key_file`` (``ssh-keygen -Y sign``); the armored signature.

    ssh-keygen asks for the key's passphrase on the terminal itself (or uses ssh-agent when
    ``key_file`` is a public key whose private half the agent holds).
    """
    if not key_file.is_file():
        raise InputError(f"--sign-with {key_file}: no such key file (e.g. ~/.ssh/id_ed25519)")
    done = _run(["-Y", "sign", "-f", str(key_file), "-n", NAMESPACE], message, SIGN_TIMEOUT)
    if done.returncode != 0 or _BEGIN not in done.stdout:
        raise InputError(f"ssh-keygen could not sign with {key_file}: {_said(done)}")
    return done.stdout


def verify(message: bytes, signature: Signature, principal: str, key: PublicKey) -> bool:
    """True if OpenSSH accepts ``signature`` as ``principal``'s, by ``key``, over ``message``."""
    with tempfile.TemporaryDirectory(prefix="broadcaster-sig-") as folder:
        allowed = Path(folder) / "allowed_signers"
        signature_file = Path(folder) / "approval.sig"
        _write_private(allowed, f'{principal} namespaces="{NAMESPACE}" {key.line()}\n')
        _write_private(signature_file, signature.armored)
        arguments = ["-Y", "verify", "-f", str(allowed), "-I", principal, "-n", NAMESPACE]
        done = _run([*arguments, "-s", str(signature_file)], message, VERIFY_TIMEOUT)
    return done.returncode == 0


def _run(arguments: list[str], message: bytes, timeout: float) -> subprocess.CompletedProcess[str]:
    program = shutil.which("ssh-keygen")
    if program is None:
        raise BroadcastError(
            "ssh-keygen was not found: install the OpenSSH client (e.g. apt-get install "
            "openssh-client) to sign or check SSH signatures"
        )
    try:
        done = subprocess.run(
            [program, *arguments],
            input=message,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise BroadcastError(
            f"ssh-keygen did not finish within {timeout:g} s; try again (is it waiting for a "
            "passphrase, or for a security key to be touched?)"
        ) from None
    return subprocess.CompletedProcess(
        done.args,
        done.returncode,
        done.stdout.decode("utf-8", "replace"),
        done.stderr.decode("utf-8", "replace"),
    )


def _said(done: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in done.stderr.splitlines() if line and not line.startswith("Signing")]
    return "; ".join(lines[-2:]) or f"exit status {done.returncode}"


def _write_private(path: Path, text: str) -> None:
    """Create a file only this account can read (0600), whatever the umask."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)


def _string(data: bytes, offset: int) -> tuple[bytes, int]:
    """One SSH wire-format string (uint32 length, bytes) at ``offset``; and the next offset."""
    start = offset + 4
    if start > len(data):
        raise ValueError("truncated")
    (length,) = struct.unpack_from(">I", data, offset)
    if start + length > len(data):
        raise ValueError("truncated")
    return data[start : start + length], start + length
