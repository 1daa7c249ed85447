"""Who signed a Twilio webhook: the SMS targets whose secret makes its ``X-Twilio-Signature``.

Twilio signs the URL it was given (``StatusCallback``: our ``public_base_url`` + path + query)
followed by the sorted form parameters. Behind a TLS proxy the request arrives at another URL
(``http://127.0.0.1:8080/...``), so the signed one is rebuilt from ``public_base_url`` and the
path and query as they arrived; a callback signed for any other URL does not validate.

By default the secret is the account's auth token and the hash HMAC-SHA1. When a Twilio Webhook
Rule applies, Twilio signs with a SharedKey secret and names the algorithm (HMAC-SHA256) in
``X-Twilio-Webhooks-Signature-Settings``; the target's ``webhook_shared_key`` is that secret.
Every distinct secret of the configured SMS targets is tried (they are few): the caller then
checks that the delivery's own target is among the signers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from twilio.request_validator import RequestValidator, get_signature_algorithm

from broadcaster.config import Config, SmsTarget

__all__ = ["SETTINGS_HEADER", "SIGNATURE_HEADER", "TwilioSignatures"]

SIGNATURE_HEADER = "x-twilio-signature"
SETTINGS_HEADER = "x-twilio-webhooks-signature-settings"


class TwilioSignatures:
    """Checks Twilio signatures against the SMS targets of one configuration."""

    def __init__(self, config: Config) -> None:
        base = config.broadcaster.public_base_url
        #: ``public_base_url`` without its trailing slash; None: callbacks cannot be checked.
        self.public_base_url = base.rstrip("/") if base else None
        self._by_token = _group(config, shared_key=False)
        self._by_shared_key = _group(config, shared_key=True)

    @property
    def configured(self) -> bool:
        """True when callbacks can be checked at all (a public URL and an SMS target)."""
        return self.public_base_url is not None and bool(self._by_token)

    def public_url(self, path: str, query: str) -> str | None:
        """The URL Twilio was given for a request that arrived at ``path`` with ``query``."""
        if self.public_base_url is None:
            return None
        return f"{self.public_base_url}{path}{'?' + query if query else ''}"

    def signers(
        self,
        url: str,
        params: Mapping[str, str] | Sequence[tuple[str, str]],
        signature: str,
        settings: str | None,
    ) -> frozenset[str]:
        """The ids of the SMS targets whose secret validates ``signature`` (empty: none)."""
        form = _Form(params)
        if settings:
            algorithm, secrets = get_signature_algorithm(settings), self._by_shared_key
        else:
            algorithm, secrets = None, self._by_token
        found: set[str] = set()
        for validator, targets in secrets:
            if validator.validate(url, form, signature, algorithm):
                found.update(targets)
        return frozenset(found)


def _group(config: Config, *, shared_key: bool) -> list[tuple[RequestValidator, frozenset[str]]]:
    """One validator per distinct secret, with the targets that share it."""
    targets: dict[str, set[str]] = {}
    for target in config.targets:
        if not isinstance(target, SmsTarget):
            continue
        secret = target.webhook_shared_key if shared_key else target.auth_token
        if secret is not None:
            targets.setdefault(secret.get_secret_value(), set()).add(target.id)
    return [(RequestValidator(secret), frozenset(ids)) for secret, ids in targets.items()]


class _Form(dict[str, str]):
    """Form parameters as twilio's validator reads them: a repeated name signs every value."""

    def __init__(self, params: Mapping[str, str] | Sequence[tuple[str, str]]) -> None:
        pairs = list(params.items()) if isinstance(params, Mapping) else list(params)
        super().__init__(pairs)
        self._values: dict[str, list[str]] = {}
        for name, value in pairs:
            self._values.setdefault(name, []).append(value)

    def getall(self, name: str) -> list[str]:
        """Every value sent under ``name`` (the validator asks for this first)."""
        return self._values[name]
