"""The Storage queues extension's rules: polling backoff, message encoding, poison queue names."""

from __future__ import annotations

import base64

import pytest

from tools.devhost.queue_io import MessageDecodeError, decode_text, encode_text, poison_queue_name
from tools.devhost.queues import Backoff


def test_an_empty_queue_is_polled_less_and_less_often_up_to_the_maximum() -> None:
    backoff = Backoff(maximum_s=2.0, uniform=lambda low, high: 1.0)  # no jitter
    delays = [backoff.next_delay(found_message=False) for _ in range(7)]
    assert delays == pytest.approx([0.1, 0.2, 0.3, 0.5, 0.9, 1.7, 2.0])


def test_a_message_resets_polling_to_the_minimum() -> None:
    backoff = Backoff(maximum_s=60.0, uniform=lambda low, high: 1.0)
    for _ in range(10):
        backoff.next_delay(found_message=False)
    assert backoff.next_delay(found_message=True) == pytest.approx(0.1)
    assert backoff.next_delay(found_message=False) == pytest.approx(0.2)


def test_backoff_jitter_stays_within_twenty_percent() -> None:
    seen: list[tuple[float, float]] = []

    def uniform(low: float, high: float) -> float:
        seen.append((low, high))
        return high

    Backoff(maximum_s=60.0, uniform=uniform).next_delay(found_message=False)
    Backoff(maximum_s=60.0, uniform=uniform).next_delay(found_message=False)
    backoff = Backoff(maximum_s=60.0, uniform=uniform)
    backoff.next_delay(found_message=False)
    assert backoff.next_delay(found_message=False) == pytest.approx(0.1 + 1.2 * 0.1)
    assert seen == [(0.8, 1.2)]


def test_base64_encoding_round_trips_text_and_bytes() -> None:
    assert encode_text("héllo", "base64") == base64.b64encode("héllo".encode()).decode()
    assert decode_text(encode_text(b"\x00\xff", "base64"), "base64") == b"\x00\xff"
    assert decode_text("aGVs\r\nbG8=", "base64") == b"hello"  # .NET ignores whitespace in base64


@pytest.mark.parametrize("text", ["{\"job\": 1}", "aGVsbG8", "not base64!"])
def test_text_that_is_not_strict_base64_cannot_be_decoded(text: str) -> None:
    with pytest.raises(MessageDecodeError):
        decode_text(text, "base64")


def test_encoding_none_passes_text_through() -> None:
    assert encode_text("{\"job\": 1}", "none") == "{\"job\": 1}"
    assert decode_text("{\"job\": 1}", "none") == b"{\"job\": 1}"


def test_poison_queues_follow_the_extension_naming_rule() -> None:
    assert poison_queue_name("ai-jobs") == "ai-jobs-poison"
    assert poison_queue_name("ai-jobs-poison") is None  # no poison queue for a poison queue
    assert poison_queue_name("q" * 57) is None  # the name would pass 63 characters
