"""Output redaction of Responses answers (shared/pipeline/responses_redaction.py), through the
guard's Redactor: a secret split across text or arguments deltas is caught, what a window held goes
out as one more delta event before the event that closes its field, sequence numbers stay strictly
increasing and contiguous, every event that repeats the text carries what the client was sent, and
usage (and what the meter counts) is never touched."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from typing import Any

import pytest

from shared.core.errors import ServiceUnavailable
from shared.core.models import Usage
from shared.core.safety_policy import SafetyPolicy
from shared.core.values import Completion, Delta
from shared.pipeline.redaction import Redactor
from shared.pipeline.responses_redaction import ResponsesSource
from shared.upstream.responses_protocol import generated_text, output_text, usage_of

KEY = "AKIAIOSFODNN7EXAMPLE"
TEXT = ["Your key is AK", "IAIOSFO", "DNN7EXA", "MPLE"]  # the key ends the text: held until its done event
ARGS = ['{"key": "AKIAIOSF', 'ODNN7EXAMPLE"}']
USAGE = {"input_tokens": 12, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 20,
         "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 32}
REDACTED_TEXT = "Your key is [REDACTED:secrets]"
REDACTED_ARGS = '{"key": "[REDACTED:secrets]"}'


def items() -> list[dict[str, Any]]:
    return [{"id": "msg_1", "type": "message", "role": "assistant", "status": "completed",
             "content": [{"type": "output_text", "text": "".join(TEXT), "annotations": []}]},
            {"id": "fc_1", "type": "function_call", "call_id": "c1", "name": "save", "arguments": "".join(ARGS),
             "status": "completed"}]


def response(status: str) -> dict[str, Any]:
    done = status == "completed"
    return {"id": "resp_1", "object": "response", "status": status, "model": "m",
            "output": items() if done else [], "usage": USAGE if done else None}


def events(*, done_events: bool = True) -> list[dict[str, Any]]:
    """A stream as the service sends it (the simulator's order); without the done events, as a
    provider that sends only deltas and the terminal event."""
    message, call = items()
    text = {"item_id": "msg_1", "output_index": 0, "content_index": 0}
    args = {"item_id": "fc_1", "output_index": 1}
    out: list[dict[str, Any]] = [{"type": "response.created", "response": response("in_progress")},
                                 {"type": "response.output_item.added", "output_index": 0, "item": message}]
    out += [{"type": "response.output_text.delta", **text, "delta": piece} for piece in TEXT]
    if done_events:
        out += [{"type": "response.output_text.done", **text, "text": "".join(TEXT)},
                {"type": "response.content_part.done", **text, "part": message["content"][0]},
                {"type": "response.output_item.done", "output_index": 0, "item": message}]
    out.append({"type": "response.output_item.added", "output_index": 1, "item": {**call, "arguments": ""}})
    out += [{"type": "response.function_call_arguments.delta", **args, "delta": piece} for piece in ARGS]
    if done_events:
        out += [{"type": "response.function_call_arguments.done", **args, "arguments": "".join(ARGS)},
                {"type": "response.output_item.done", "output_index": 1, "item": call}]
    out.append({"type": "response.completed", "response": response("completed")})
    return [{**event, "sequence_number": number} for number, event in enumerate(copy.deepcopy(out))]


def deltas(raw: list[dict[str, Any]]) -> list[Delta]:
    """The events as the Responses exchange's source yields them."""
    return [Delta(content=generated_text(e), raw=e, usage=usage_of(e.get("response") or {}),
                  finish_reason="completed" if e["type"] == "response.completed" else None) for e in raw]


def source_of(items: list[Delta], error: Exception | None = None) -> ResponsesSource:
    async def source() -> AsyncIterator[Delta]:
        for item in items:
            yield item
        if error is not None:
            raise error

    return ResponsesSource(source)


async def read(redactor: Redactor, items: list[Delta], error: Exception | None = None) -> list[Delta]:
    return [d async for d in redactor.source(source_of(items, error))()]


def redactor() -> Redactor:
    return Redactor("tenant-a", SafetyPolicy(), None)


def of(out: list[Delta], kind: str) -> list[dict[str, Any]]:
    return [d.raw for d in out if d.raw is not None and d.raw["type"] == kind]


def numbers(out: list[Delta]) -> list[int]:
    return [d.raw["sequence_number"] for d in out if d.raw is not None]


async def test_a_key_split_across_deltas_is_redacted_in_every_event_that_carries_the_text() -> None:
    r = redactor()
    out = await read(r, deltas(events()))
    streamed = "".join(e["delta"] for e in of(out, "response.output_text.delta"))
    assert streamed == REDACTED_TEXT and KEY not in str([d.raw for d in out])
    assert [e["text"] for e in of(out, "response.output_text.done")] == [streamed]
    assert of(out, "response.content_part.done")[0]["part"]["text"] == streamed
    assert of(out, "response.output_item.done")[0]["item"]["content"][0]["text"] == streamed
    [completed] = of(out, "response.completed")
    assert output_text(completed["response"]) == streamed
    arguments = "".join(e["delta"] for e in of(out, "response.function_call_arguments.delta"))
    assert arguments == REDACTED_ARGS
    assert of(out, "response.function_call_arguments.done")[0]["arguments"] == arguments
    assert of(out, "response.output_item.done")[1]["item"]["arguments"] == arguments
    assert completed["response"]["output"][1]["arguments"] == arguments
    assert r.counts == {"secrets": 2}


async def test_what_a_window_held_goes_out_before_its_done_event_and_the_numbers_stay_contiguous() -> None:
    sent = events()
    out = await read(redactor(), deltas(sent))
    assert len(out) == len(sent) + 2, "one delta event added per field whose window held its end"
    kinds = [d.raw["type"] for d in out if d.raw is not None]
    done = kinds.index("response.output_text.done")
    extra = out[done - 1].raw
    assert extra is not None and extra["type"] == "response.output_text.delta"
    assert extra["delta"].endswith("[REDACTED:secrets]")
    assert of(out, "response.output_text.delta")[-1]["item_id"] == "msg_1"
    assert numbers(out) == list(range(len(out))), "strictly increasing, contiguous, from the first"


async def test_a_provider_without_done_events_has_the_held_text_flushed_before_its_terminal_event() -> None:
    sent = events(done_events=False)
    out = await read(redactor(), deltas(sent))
    kinds = [d.raw["type"] for d in out if d.raw is not None]
    assert kinds[-3:] == ["response.output_text.delta", "response.function_call_arguments.delta",
                          "response.completed"]
    assert "".join(e["delta"] for e in of(out, "response.output_text.delta")) == REDACTED_TEXT
    assert numbers(out) == list(range(len(out)))


async def test_the_meter_still_counts_what_the_model_generated_and_the_answer_begins_at_its_first_token() -> None:
    sent = events()
    out = await read(redactor(), deltas(sent))
    assert "".join(d.content for d in out) == "".join(TEXT) + "save" + "".join(ARGS), \
        "each delta's content is the text the model generated (the added events carry none): a cut is charged the same"
    first = next(d for d in out if d.raw is not None and d.raw["type"] == "response.output_text.delta")
    assert first.answers and first.raw is not None and first.raw["delta"] == "", \
        "its text is held back from the client, yet the response has begun: its first events go out now"


async def test_usage_and_the_terminal_event_are_untouched() -> None:
    out = await read(redactor(), deltas(events()))
    assert out[-1].usage == Usage(prompt_tokens=12, completion_tokens=20, total_tokens=32)
    assert out[-1].finish_reason == "completed" and of(out, "response.completed")[0]["response"]["usage"] == USAGE
    assert sum(1 for d in out if d.usage is not None) == 1


async def test_a_cut_stream_lets_out_what_it_held_numbered_after_the_last_event_then_the_error() -> None:
    sent = events()[:5]  # created, item added, three of the four text deltas
    seen: list[Delta] = []
    with pytest.raises(ServiceUnavailable):
        async for delta in redactor().source(source_of(deltas(sent), ServiceUnavailable("cut")))():
            seen.append(delta)
    assert "".join(e["delta"] for e in of(seen, "response.output_text.delta")) == "Your key is AKIAIOSFODNN7EXA", \
        "the key was cut before it was whole: what came is let out as it is"
    assert numbers(seen) == list(range(len(seen)))


async def test_a_whole_response_is_redacted_in_its_items_and_its_output_text() -> None:
    body = {**response("completed"), "output_text": "".join(TEXT)}
    whole = Completion(output_text(body), "completed", "m", Usage(prompt_tokens=12, completion_tokens=20,
                                                                  total_tokens=32), "e", raw=body)
    [out] = await read(redactor(), [Delta(content=whole.content, whole=whole, raw=body, usage=whole.usage)])
    assert out.whole is not None and out.whole.raw is not None
    assert out.content == out.whole.content == REDACTED_TEXT
    assert out.whole.raw["output"][0]["content"][0]["text"] == REDACTED_TEXT
    assert out.whole.raw["output"][1]["arguments"] == REDACTED_ARGS
    assert out.whole.raw["output_text"] == REDACTED_TEXT
    assert out.whole.raw["usage"] == USAGE and out.usage == whole.usage


async def test_a_chat_source_is_still_redacted_as_a_chat() -> None:
    async def chat() -> AsyncIterator[Delta]:
        yield Delta(content=f"key {KEY}", finish_reason="stop")

    out = [d async for d in redactor().source(chat)()]
    assert "".join(d.content for d in out) == "key [REDACTED:secrets]"
