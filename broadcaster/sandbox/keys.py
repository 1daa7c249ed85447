"""Throwaway RSA signing keys published as JWKS entries, like Microsoft's token signing keys.

Each key has a self-signed certificate so that its JWK carries ``x5t`` and ``x5c`` as Microsoft's
do; validators that read either work against the sandbox. Keys are made per sandbox on first use
(2048-bit generation takes a moment).
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from jwt.algorithms import RSAAlgorithm

__all__ = ["SigningKey"]


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


class SigningKey:
    """An RS256 key with its JWK; generated lazily, thread-safe."""

    def __init__(self, subject: str, endorsements: tuple[str, ...] = ()) -> None:
        """Describe the key: certificate subject ``CN`` and JWK ``endorsements`` (channel ids)."""
        self.subject = subject
        self.endorsements = endorsements
        self._lock = threading.Lock()
        self._key: rsa.RSAPrivateKey | None = None
        self._certificate: bytes = b""

    @property
    def private_key(self) -> rsa.RSAPrivateKey:
        """The private key, generated on first use."""
        with self._lock:
            if self._key is None:
                self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
                self._certificate = self._self_signed(self._key)
            return self._key

    def _self_signed(self, key: rsa.RSAPrivateKey) -> bytes:
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, self.subject)])
        now = datetime.now(UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=365))
            .sign(key, hashes.SHA256())
        )
        return certificate.public_bytes(serialization.Encoding.DER)

    @property
    def kid(self) -> str:
        """Key id: the certificate's SHA-1 thumbprint, base64url (as Entra's ``kid``/``x5t``)."""
        self.private_key  # noqa: B018 - make sure the certificate exists
        return _b64url(hashlib.sha1(self._certificate).digest())  # noqa: S324 - x5t is SHA-1

    def jwk(self) -> dict[str, Any]:
        """The public key as a JWKS entry."""
        public = json.loads(RSAAlgorithm.to_jwk(self.private_key.public_key()))
        entry: dict[str, Any] = {
            "kty": "RSA",
            "use": "sig",
            "kid": self.kid,
            "x5t": self.kid,
            "n": public["n"],
            "e": public["e"],
            "x5c": [base64.b64encode(self._certificate).decode()],
        }
        if self.endorsements:
            entry["endorsements"] = list(self.endorsements)
        return entry

    def sign(self, claims: dict[str, Any]) -> str:
        """A compact RS256 JWT of ``claims`` with this key's ``kid`` and ``x5t``."""
        headers = {"kid": self.kid, "x5t": self.kid, "typ": "JWT"}
        return jwt.encode(claims, self.private_key, algorithm="RS256", headers=headers)

    def verify(self, token: str, **options: Any) -> dict[str, Any]:
        """Decode ``token`` signed by this key (see :func:`jwt.decode` for ``options``).

        Raises:
            jwt.PyJWTError: Bad signature, wrong audience, expired, ...
        """
        claims: dict[str, Any] = jwt.decode(
            token, self.private_key.public_key(), algorithms=["RS256"], **options
        )
        return claims
