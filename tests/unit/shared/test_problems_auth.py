"""Errors carry their own headers into the problem response: WWW-Authenticate on every 401."""

from __future__ import annotations

from shared.api.problems import problem_headers
from shared.core.errors import Forbidden, Unauthorized
from shared.identity.auth import challenge


def test_an_unauthorized_error_carries_its_challenge_into_the_response_headers() -> None:
    err = Unauthorized("no key", headers=challenge())
    headers = problem_headers(err, "cid-1")
    assert headers["WWW-Authenticate"] == 'Bearer realm="aigw", ApiKey realm="aigw", header="x-api-key"'
    assert headers["x-correlation-id"] == "cid-1"


def test_a_bearer_error_comes_first_and_its_description_is_quoted_safely() -> None:
    value = challenge("invalid_token", 'The "token" has expired.')["WWW-Authenticate"]
    assert value.startswith('Bearer error="invalid_token", error_description="The \\"token\\" has expired."')
    assert value.endswith('ApiKey realm="aigw", header="x-api-key"')


def test_a_403_for_a_missing_role_says_insufficient_scope() -> None:
    err = Forbidden("no role", headers=challenge("insufficient_scope", "no role"))
    assert problem_headers(err, "c")["WWW-Authenticate"].startswith('Bearer error="insufficient_scope"')
