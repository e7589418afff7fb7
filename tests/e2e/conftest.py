"""Clients for the running app and the simulators' control surface."""

from __future__ import annotations

from collections.abc import Iterator
from types import EllipsisType
from typing import Any

import httpx
import pytest

from tests.conftest import DEV_KEY
from tests.e2e.oai_stack import fid_aoai, fid_azure, fid_oai, ledger, oai_app  # noqa: F401  fixtures
from tools.localenv import LocalStack


@pytest.fixture
def api(app_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"{app_url}/api", headers={"x-api-key": DEV_KEY}, timeout=30) as client:
        yield client


@pytest.fixture
def anonymous(app_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"{app_url}/api", timeout=30) as client:
        yield client


@pytest.fixture
def faults(stack: LocalStack) -> Iterator[dict[str, httpx.Client]]:
    """Both regions' control surfaces; faults are cleared before and after each test."""
    clients = {region: httpx.Client(base_url=stack.sim_url(region), timeout=10) for region in ("primary", "secondary")}
    for client in clients.values():
        client.delete("/_sim/faults")
    yield clients
    for client in clients.values():
        client.delete("/_sim/faults")
        client.close()


FORBIDDEN_IN_ERRORS = ("Traceback", "Error(", "Exception", 'File "', "pydantic", "openai", "simulator")


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert {"type", "title", "status", "detail", "correlation_id"} <= body.keys()
    assert body["status"] == status and body["correlation_id"] == response.headers["x-correlation-id"]
    for marker in FORBIDDEN_IN_ERRORS:
        assert marker not in response.text, f"{marker!r} leaked into a {status} answer"
    return body


def assert_openai_error(response: httpx.Response, status: int, code: str | EllipsisType | None) -> dict[str, Any]:
    """OpenAI's error object on an OpenAI-compatible route: every member, the code clients branch
    on (... : any), the correlation id in the headers (x-request-id too), nothing internal in the text."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error: dict[str, Any] = response.json()["error"]
    assert error.keys() == {"message", "type", "param", "code"}, error
    assert code is ... or error["code"] == code, error
    assert response.headers["x-request-id"] == response.headers["x-correlation-id"]
    for marker in FORBIDDEN_IN_ERRORS:
        assert marker not in response.text, f"{marker!r} leaked into a {status} answer"
    return error
