"""What the request path knows of an Entra token without PyJWT: its shape, the verified caller, the refusal.

Kept apart from shared/entra.py so the function index imports no JWT or crypto library (0.2 s).
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass


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
    validated as a token, never looked up as an API key."""
    parts = value.split(".")
    if len(parts) != 3 or not parts[0]:
        return False
    try:
        header = json.loads(base64.urlsafe_b64decode(parts[0] + "=" * (-len(parts[0]) % 4)))
    except (binascii.Error, ValueError):
        return False
    return isinstance(header, dict)
