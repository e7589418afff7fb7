"""Unexpected errors are logged with a traceback, but never with the input a pydantic error quotes."""

from __future__ import annotations

import logging

import pytest
from pydantic import ValidationError

from functions.http_common import log_unexpected
from shared.models import ChatMessage

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
