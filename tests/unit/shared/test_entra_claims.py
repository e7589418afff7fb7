"""The JWT sniffing and the pre-PyJWT bounds: a forged bearer is refused in bounded work, never a crash."""

from __future__ import annotations

import base64
import json

import pytest

from shared.identity.claims import MAX_HEADER_CHARS, MAX_TOKEN_CHARS, InvalidToken, check_bounds, looks_like_jwt


def segment(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


HEADER = segment(json.dumps({"alg": "RS256", "kid": "k1", "typ": "JWT"}).encode())
CLAIMS = segment(json.dumps({"tid": "t", "oid": "o", "aud": "api://x"}).encode())
DEEP = segment(b"[" * 5000)  # json.loads alone: RecursionError


def test_a_token_shaped_value_is_a_jwt() -> None:
    assert looks_like_jwt(f"{HEADER}.{CLAIMS}.sig")
    check_bounds(f"{HEADER}.{CLAIMS}.sig")


@pytest.mark.parametrize("value", [
    f"{DEEP}.{CLAIMS}.sig",  # the attack: 5,000 nested arrays as the header
    f"{segment(b'[' * 100 + b']' * 100)}.{CLAIMS}.sig",  # within the header's length, deeper than safe_json's 64
    f"{segment(b'[' * 1500)}.{CLAIMS}.sig",  # within the header's length, and json.loads alone: RecursionError
    f"{segment(json.dumps({'alg': 'x' * MAX_HEADER_CHARS}).encode())}.{CLAIMS}.sig",
    f"{HEADER}.{CLAIMS}.{'s' * MAX_TOKEN_CHARS}",
    f"{segment(b'[1]')}.{CLAIMS}.sig",  # JSON, not an object
    "acme-secret-api-key",
])
def test_anything_else_is_not_sniffed_as_a_jwt_and_does_not_raise(value: str) -> None:
    assert not looks_like_jwt(value)


@pytest.mark.parametrize(("token", "says"), [
    (f"{HEADER}.{DEEP}.sig", "not a well-formed JWT"),
    (f"{HEADER}.{segment(b'{' * 3)}.sig", "not a well-formed JWT"),
    (f"{HEADER}.{CLAIMS}.{'s' * MAX_TOKEN_CHARS}", f"longer than {MAX_TOKEN_CHARS} characters"),
])
def test_check_bounds_refuses_before_pyjwt_parses(token: str, says: str) -> None:
    with pytest.raises(InvalidToken) as err:
        check_bounds(token)
    assert says in str(err.value)
