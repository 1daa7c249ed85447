"""The signing keys an OpenID metadata document points at, fetched when needed and cached.

Bot Framework (and each Entra tenant) publishes OpenID metadata whose ``jwks_uri`` names the keys
that sign its tokens. :class:`OpenIdKeys` fetches both with httpx (async, with a timeout) and
keeps the keys by ``kid``:

* a known ``kid`` is answered from the cache, without a request, for up to a day;
* an unknown ``kid`` fetches again (keys rotate), but at most once a minute, so a flood of tokens
  naming made-up keys costs the metadata host one request a minute;
* a fetch that fails keeps the keys already held, and is tried again after a few seconds. When the
  keys a token needs could not be fetched, :class:`KeysUnavailable` is raised: a token is never
  taken as valid because its keys could not be checked.

Requests run one at a time per document (concurrent callers wait for the fetch in flight).
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import jwt

__all__ = [
    "FAILED_FETCH_RETRY_S",
    "KEYS_MAX_AGE_S",
    "REFETCH_INTERVAL_S",
    "KeysUnavailable",
    "OpenIdKeys",
    "PublishedKey",
]

log = logging.getLogger("broadcaster.server.bot")

#: An unknown ``kid`` fetches the keys again at most this often.
REFETCH_INTERVAL_S = 60.0
#: After a failed fetch, the next is tried no sooner than this.
FAILED_FETCH_RETRY_S = 5.0
#: Keys held longer than this are fetched again on their next use (Microsoft rotates them).
KEYS_MAX_AGE_S = 24 * 3600.0


class KeysUnavailable(Exception):
    """The keys could not be fetched (host down, bad answer); ``str()`` says why."""


@dataclass(frozen=True)
class PublishedKey:
    """One RS256 key of a JWKS."""

    key: jwt.PyJWK
    #: The channels (``msteams``, ...) that endorse the key; None when the JWK lists none.
    endorsements: frozenset[str] | None


class OpenIdKeys:
    """The keys named by one OpenID metadata document."""

    def __init__(
        self,
        metadata_url: str,
        client: Callable[[], httpx.AsyncClient],
        clock: Callable[[], float],
        *,
        rewrite: Callable[[str], str] = str,
    ) -> None:
        """Prepare the cache; nothing is fetched until a key is asked for.

        Args:
            metadata_url: The OpenID metadata document.
            client: The HTTP client to fetch with (with its timeout).
            clock: Seconds, for the cache's intervals (only differences count).
            rewrite: Maps the metadata's ``jwks_uri`` to the URL to fetch (an override root).
        """
        self.metadata_url = metadata_url
        self._client = client
        self._clock = clock
        self._rewrite = rewrite
        self._keys: dict[str, PublishedKey] = {}
        self._fetched_at: float | None = None
        self._next_fetch_at = -math.inf
        self._failure: str | None = None
        self._lock = asyncio.Lock()

    async def get(self, kid: str) -> PublishedKey | None:
        """The key ``kid``, or None when the metadata's keys (fetched anew if allowed) lack it.

        Raises:
            KeysUnavailable: The last fetch failed and no held key is ``kid``.
        """
        held = self._keys.get(kid)
        if held is not None and not self._stale(self._clock()):
            return held
        async with self._lock:
            now = self._clock()
            held = self._keys.get(kid)
            # Another caller may have fetched while this one waited for the lock.
            if (held is None or self._stale(now)) and now >= self._next_fetch_at:
                await self._fetch(now)
            held = self._keys.get(kid)
            if held is not None:
                return held
            if self._failure is not None:
                raise KeysUnavailable(self._failure)
            return None

    def _stale(self, now: float) -> bool:
        return self._fetched_at is None or now - self._fetched_at > KEYS_MAX_AGE_S

    async def _fetch(self, now: float) -> None:
        try:
            keys = await self._download()
        except KeysUnavailable as exc:
            self._failure = str(exc)
            self._next_fetch_at = now + FAILED_FETCH_RETRY_S
            log.warning("could not fetch the keys that sign Bot Framework requests: %s", exc)
            return
        self._keys, self._fetched_at, self._failure = keys, now, None
        self._next_fetch_at = now + REFETCH_INTERVAL_S
        log.debug("fetched %d signing key(s) named by %s", len(keys), self.metadata_url)

    async def _download(self) -> dict[str, PublishedKey]:
        metadata = await self._get_json(self.metadata_url)
        jwks_uri = metadata.get("jwks_uri")
        if not isinstance(jwks_uri, str) or not jwks_uri.startswith(("https://", "http://")):
            raise KeysUnavailable(f"{self.metadata_url} names no jwks_uri")
        url = self._rewrite(jwks_uri)
        entries = (await self._get_json(url)).get("keys")
        if not isinstance(entries, list):
            raise KeysUnavailable(f'{url} holds no "keys" list')
        keys = {kid: key for kid, key in map(_published, entries) if kid and key}
        if not keys:
            raise KeysUnavailable(f"{url} holds no RS256 signing key with a kid")
        return keys

    async def _get_json(self, url: str) -> Mapping[str, Any]:
        try:
            answer = await self._client().get(url, headers={"Accept": "application/json"})
        except httpx.HTTPError as exc:
            raise KeysUnavailable(f"{url}: {type(exc).__name__} {exc}".strip()) from None
        if answer.status_code != 200:
            raise KeysUnavailable(f"{url} answered HTTP {answer.status_code}")
        try:
            document = answer.json()
        except ValueError:
            raise KeysUnavailable(f"{url} answered something that is not JSON") from None
        if not isinstance(document, dict):
            raise KeysUnavailable(f"{url} answered JSON that is not an object")
        return document


def _published(entry: Any) -> tuple[str | None, PublishedKey | None]:
    """(kid, key) for a JWKS entry usable for RS256 signatures; (None, None) for any other."""
    if not isinstance(entry, dict) or entry.get("kty") != "RSA":
        return None, None
    kid = entry.get("kid")
    if not isinstance(kid, str) or not kid or entry.get("use", "sig") != "sig":
        return None, None
    if entry.get("alg", "RS256") != "RS256":
        return None, None
    try:
        key = jwt.PyJWK(entry, algorithm="RS256")
    except jwt.PyJWTError:
        return None, None
    endorsements = entry.get("endorsements")
    endorsed = (
        frozenset(e for e in endorsements if isinstance(e, str))
        if isinstance(endorsements, list)
        else None
    )
    return kid, PublishedKey(key=key, endorsements=endorsed)
