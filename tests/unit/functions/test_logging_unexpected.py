"""Unexpected errors: a traceback once per type and place, then one short line; never the input a pydantic
error quotes."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from azurefunctions.extensions.http.fastapi import Request
from pydantic import ValidationError

from functions import http_api
from functions.http_common import _TRACED, log_unexpected
from shared.core.models import ChatMessage

SECRET = "the tenant's confidential prompt"
BAD_MESSAGE = {"role": "wizard", "content": SECRET + "\ud800"}  # not on a traceback's source line


def pydantic_error() -> ValidationError:
    try:
        ChatMessage.model_validate(BAD_MESSAGE)
    except ValidationError as exc:
        return exc
    raise AssertionError("the message validated")


def raised(exc: BaseException) -> BaseException:
    try:
        raise exc
    except BaseException as caught:  # noqa: BLE001  returned with its traceback, for the logger
        return caught


def test_a_pydantic_error_is_logged_by_location_and_type_only(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR):
        log_unexpected("unhandled error", "cid-1", raised(pydantic_error()))
    text = caplog.text
    assert SECRET not in text and "\\ud800" not in text and "input_value" not in text
    assert "unhandled error (correlation_id=cid-1)" in text
    assert "role (literal_error)" in text and "content (string_unicode)" in text
    assert "test_logging_unexpected.py" in text  # the traceback still says where


def test_an_error_raised_from_a_pydantic_error_withholds_both_texts(caplog: pytest.LogCaptureFixture) -> None:
    def wrap() -> None:
        try:
            raise pydantic_error()
        except ValidationError as exc:
            raise RuntimeError(f"could not map: {exc}") from exc

    try:
        wrap()
    except RuntimeError as exc:
        with caplog.at_level(logging.ERROR):
            log_unexpected("stream failed", "cid-2", exc)
    assert SECRET not in caplog.text and "RuntimeError (text withheld)" in caplog.text


def test_other_errors_keep_their_text(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR):
        log_unexpected("unhandled error", "cid-3", raised(KeyError("missing_setting")))
    assert "missing_setting" in caplog.text and "Traceback" in caplog.text


@pytest.fixture(autouse=True)
def fresh_process() -> Iterator[None]:
    """Each test starts as a process that has logged no traceback yet."""
    _TRACED.clear()
    yield
    _TRACED.clear()


def fail_at_one_place(text: str) -> BaseException:
    try:
        dict[str, str]()[text]
    except KeyError as exc:
        return exc
    raise AssertionError("no KeyError")


def test_the_same_failure_again_is_one_short_line_without_text(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR):
        for n in range(3):
            log_unexpected("unhandled error", f"cid-{n}", fail_at_one_place(f"{SECRET} {n}"))
    first, *again = caplog.records
    assert first.exc_info is not None and "Traceback" in caplog.text.split("\n", 1)[1]
    assert len(again) == 2 and [r.exc_info for r in again] == [None, None]
    for n, record in enumerate(again, start=1):
        line = record.getMessage()
        assert "\n" not in line and SECRET not in line
        assert f"(correlation_id=cid-{n}): KeyError at test_logging_unexpected.py:" in line
        assert "in fail_at_one_place" in line


def test_another_type_or_place_gets_its_own_traceback(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR):
        log_unexpected("unhandled error", "cid-a", fail_at_one_place("a"))
        log_unexpected("unhandled error", "cid-b", raised(KeyError("b")))  # another place
        log_unexpected("unhandled error", "cid-c", raised(ValueError("c")))  # that place, another type
    assert [r.exc_info is not None for r in caplog.records] == [True, True, True]


async def test_an_unexpected_error_in_ready_is_a_500_problem_with_one_log_record(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    async def broken() -> None:
        raise RuntimeError(SECRET)

    monkeypatch.setattr(http_api, "get_container", broken)
    request = Request({"type": "http", "method": "GET", "path": "/api/ready", "query_string": b"",
                       "headers": [(b"x-correlation-id", b"cid-ready")]})
    with caplog.at_level(logging.ERROR):
        response = await http_api.ready(request)
    assert response.status_code == 500 and response.headers["content-type"].startswith("application/problem+json")
    assert response.headers["x-request-id"] == response.headers["x-correlation-id"] == "cid-ready"
    assert SECRET.encode() not in bytes(response.body)
    assert [r.levelno for r in caplog.records] == [logging.ERROR], "one record"
