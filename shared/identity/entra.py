"""Entra ID access tokens: RS256 against the directory's published keys, issuer, audience, lifetime."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt

from shared.core.errors import DependencyFailed
from shared.identity.claims import EntraCaller, InvalidToken, check_bounds, looks_like_jwt

__all__ = ["EntraCaller", "EntraValidator", "InvalidToken", "SigningKeys", "looks_like_jwt"]

log = logging.getLogger(__name__)

ALGORITHM = "RS256"  # what Entra signs access tokens with; anything else is refused unread
V1_ISSUER = "https://sts.windows.net/{tid}/"
KEYS_MAX_AGE_S = 24 * 3600.0  # Entra rolls keys every few weeks and publishes the next one early


@dataclass
class _KeySet:
    keys: dict[str, jwt.PyJWK] = field(default_factory=dict)
    fetched_at: float = 0.0  # last successful fetch
    tried_at: float = float("-inf")  # last attempt, failed or not: the cooldown runs from here
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class SigningKeys:
    """Each directory's signing keys from `{authority}/{tid}/discovery/v2.0/keys` (never from a
    token's own `jku`), cached; an unknown `kid` refetches at most once per cooldown, so a flood
    of tokens with made-up key ids costs one request to Entra, not one each."""

    def __init__(self, authority: str, http: httpx.AsyncClient, *, cooldown_s: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._authority = authority.rstrip("/")
        self._http = http
        self._cooldown_s = cooldown_s
        self._clock = clock
        self._sets: dict[str, _KeySet] = {}
        self.fetches = 0

    async def key(self, tid: str, kid: str) -> jwt.PyJWK:
        entry = self._sets.setdefault(tid, _KeySet())
        if kid in entry.keys and self._clock() - entry.fetched_at < KEYS_MAX_AGE_S:
            return entry.keys[kid]
        async with entry.lock:  # concurrent requests with the same new kid share one fetch
            if kid not in entry.keys and self._clock() - entry.tried_at >= self._cooldown_s:
                await self._fetch(tid, entry)
        if kid not in entry.keys:
            raise InvalidToken("The token is signed with a key this directory does not publish.")
        return entry.keys[kid]

    async def _fetch(self, tid: str, entry: _KeySet) -> None:
        entry.tried_at = self._clock()
        self.fetches += 1
        url = f"{self._authority}/{tid}/discovery/v2.0/keys"
        try:
            response = await self._http.get(url, timeout=5.0)
            response.raise_for_status()
            document = response.json()
            keys = {k.key_id: k for k in jwt.PyJWKSet(_signing_keys(document)).keys if k.key_id}
        except (httpx.HTTPError, ValueError, jwt.PyJWTError) as exc:
            log.warning("entra signing keys could not be fetched: tid=%s error=%s", tid, type(exc).__name__)
            if entry.keys:
                return  # keep the keys we have; the cooldown spaces the next attempt
            raise DependencyFailed("The identity provider's signing keys are unavailable. Try again later.") from None
        entry.keys, entry.fetched_at = keys, entry.tried_at


def _signing_keys(document: Any) -> list[dict[str, Any]]:
    raw = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(raw, list):
        raise ValueError("not a JWK set")
    return [k for k in raw if isinstance(k, dict) and k.get("kty") == "RSA" and k.get("use", "sig") == "sig"]


_REASONS: list[tuple[type[jwt.PyJWTError], str]] = [
    (jwt.ExpiredSignatureError, "The token has expired."),
    (jwt.ImmatureSignatureError, "The token is not valid yet (nbf)."),
    (jwt.InvalidAudienceError, "The token is not issued for this API (aud)."),
    (jwt.InvalidIssuerError, "The token's issuer is not accepted (iss)."),
    (jwt.InvalidSignatureError, "The token's signature is not valid."),
    (jwt.MissingRequiredClaimError, "The token lacks a required claim."),
]


class EntraValidator:
    """Validates access tokens of the directories that TENANTS names, for `audiences`."""

    def __init__(self, keys: SigningKeys, *, authority: str, audiences: Iterable[str], tids: Iterable[str],
                 leeway_s: float = 60.0) -> None:
        self._keys = keys
        self._authority = authority.rstrip("/")
        self._audiences = list(audiences)
        self._tids = {t.lower() for t in tids}
        self._leeway_s = leeway_s

    async def validate(self, token: str) -> EntraCaller:
        check_bounds(token)
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise InvalidToken("The token is not a well-formed JWT.") from None
        if header.get("alg") != ALGORITHM:
            raise InvalidToken("The token must be signed with RS256.")
        kid, tid = header.get("kid"), unverified.get("tid")
        if not isinstance(kid, str) or not kid:
            raise InvalidToken("The token names no signing key (kid).")
        # Only directories a tenant lists: no stranger can make us fetch keys for any tid.
        if not isinstance(tid, str) or tid.lower() not in self._tids:
            raise InvalidToken("The token's directory (tid) is not accepted here.")
        key = await self._keys.key(tid.lower(), kid)
        issuers = [V1_ISSUER.format(tid=tid), f"{self._authority}/{tid}/v2.0"]
        try:
            claims = jwt.decode(token, key.key, algorithms=[ALGORITHM], audience=self._audiences, issuer=issuers,
                                leeway=self._leeway_s, options={"require": ["exp", "iss", "aud", "tid", "oid"]})
        except jwt.PyJWTError as exc:
            reason = next((text for kind, text in _REASONS if isinstance(exc, kind)), "The token is not valid.")
            raise InvalidToken(reason) from None
        return _caller(claims)


def _caller(claims: dict[str, Any]) -> EntraCaller:
    roles, scp = claims.get("roles", []), claims.get("scp", "")
    client_id = claims.get("azp") or claims.get("appid")
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles) or not isinstance(scp, str):
        raise InvalidToken("The token's roles or scp claim is malformed.")
    if not isinstance(client_id, str) or not isinstance(claims["oid"], str):
        raise InvalidToken("The token names no client application (azp or appid).")
    return EntraCaller(tid=str(claims["tid"]).lower(), oid=claims["oid"].lower(), client_id=client_id.lower(),
                       roles=tuple(roles), scopes=tuple(scp.split()))
