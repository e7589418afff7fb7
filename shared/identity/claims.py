"""What the request path knows of an Entra token without PyJWT: its shape, the verified caller, the refusal.

Kept apart from shared/identity/entra.py so the function index imports no JWT or crypto library (0.2 s).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from shared.core import safe_json

# Entra access tokens are 1-3 kB (a header of about 100 bytes): these bounds are far above any real
# one and keep a forged value from costing more than a few kilobytes of parsing.
MAX_TOKEN_CHARS = 16_384
MAX_HEADER_CHARS = 2_048


class InvalidToken(Exception):
    """The bearer value is not an acceptable Entra token; the message is safe to show the caller."""


@dataclass(frozen=True)
class EntraCaller:
    """The verified claims the gateway acts on (never the token itself)."""

    tid: str
    oid: str
    client_id: str  # azp (v2) or appid (v1): the client application
    roles: tuple[str, ...]
    scopes: tuple[str, ...]  # scp: present only in delegated (user) tokens

    @property
    def delegated(self) -> bool:
        return bool(self.scopes)


def looks_like_jwt(value: str) -> bool:
    """Three dot-separated parts whose first is a base64url JSON object: such a value is always
    validated as a token, never looked up as an API key. Anything else, an oversized or deeply
    nested header included, is looked up as a key (and so refused with a 401, never parsed whole)."""
    if len(value) > MAX_TOKEN_CHARS:
        return False
    parts = value.split(".")
    if len(parts) != 3 or not parts[0] or len(parts[0]) > MAX_HEADER_CHARS:
        return False
    return isinstance(_segment(parts[0]), dict)


def check_bounds(token: str) -> None:
    """Before PyJWT parses a token (with plain `json.loads`, whose recursion a few thousand `[`
    overflow): its size, and its header and claims as bounded JSON objects."""
    if len(token) > MAX_TOKEN_CHARS:
        raise InvalidToken(f"The token is longer than {MAX_TOKEN_CHARS} characters.")
    parts = token.split(".")
    if len(parts) != 3 or not all(isinstance(_segment(part), dict) for part in parts[:2]):
        raise InvalidToken("The token is not a well-formed JWT.")


def _segment(part: str) -> object:
    """A base64url JSON segment as parsed within safe_json's bounds (depth, numbers), or None."""
    try:
        return safe_json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    except (binascii.Error, ValueError):  # UnsafeJson, JSONDecodeError and UnicodeDecodeError are ValueErrors
        return None
