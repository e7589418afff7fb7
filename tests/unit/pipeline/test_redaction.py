"""Output redaction (shared/pipeline/redaction.py): a secret split across stream chunks is caught, the
stream keeps its chunks, its finish and its usage, tool-call arguments are redacted too, and a cut
stream still lets out what it held before the error."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from typing import Any

import pytest

from shared.core.errors import ServiceUnavailable
from shared.core.models import Usage
from shared.core.safety_policy import SafetyPolicy
from shared.core.values import Completion, Delta
from shared.observability import audit, tracing
from shared.observability import names as n
from shared.observability.record import Record
from shared.pipeline.redaction import Redactor
from shared.upstream.protocol import assemble, billed_text

KEY = "AKIAIOSFODNN7EXAMPLE"
USAGE = Usage(prompt_tokens=5, completion_tokens=9, total_tokens=14)


def chunk(content: str | None = None, *, args: str | None = None, call: int = 0, finish: str | None = None,
          choice: int = 0) -> dict[str, Any]:
    delta: dict[str, Any] = {}
    if content is not None:
        delta["content"] = content
    if args is not None:
        delta["tool_calls"] = [{"index": call, "function": {"arguments": args}}]
    return {"id": "c1", "object": "chat.completion.chunk", "model": "m",
            "choices": [{"index": choice, "delta": delta, "finish_reason": finish}]}


def usage_chunk() -> dict[str, Any]:
    return {"id": "c1", "object": "chat.completion.chunk", "model": "m", "choices": [], "usage": USAGE.model_dump()}


def source_of(items: list[Delta], error: Exception | None = None) -> Any:
    async def source() -> AsyncIterator[Delta]:
        for item in items:
            yield item
        if error is not None:
            raise error

    return source


def raw(chunks: list[dict[str, Any]]) -> list[Delta]:
    return [Delta(content=billed_text(c), raw=c, usage=Usage(**c["usage"]) if "usage" in c else None,
                  finish_reason=next((x["finish_reason"] for x in c["choices"] if x["finish_reason"]), None))
            for c in copy.deepcopy(chunks)]


async def read(redactor: Redactor, items: list[Delta], error: Exception | None = None) -> list[Delta]:
    return [d async for d in redactor.source(source_of(items, error))()]


def redactor(**policy: Any) -> Redactor:
    return Redactor("tenant-a", SafetyPolicy(**policy), None)


async def test_a_key_split_across_chunks_is_redacted_and_the_stream_keeps_its_framing() -> None:
    pieces = ["Your key is AK", "IAIOSFO", "DNN7EXA", "MPLE and that", " is all."]
    chunks = [chunk(p) for p in pieces] + [chunk(finish="stop"), usage_chunk()]
    r = redactor()
    out = await read(r, raw(chunks))
    assert len(out) == len(chunks), "one chunk out for each chunk in"
    text = "".join(d.content for d in out)
    assert text == "Your key is [REDACTED:secrets] and that is all."
    assert [d.finish_reason for d in out if d.finish_reason] == ["stop"] and out[-1].usage == USAGE
    assert out[-1].raw is not None and out[-1].raw["usage"] == USAGE.model_dump()
    assembled = assemble([d.raw for d in out if d.raw is not None])
    assert assembled["choices"][0]["message"]["content"] == text, "what the cache stores is what the client got"
    assert r.counts == {"secrets": 1}


async def test_tool_call_arguments_are_redacted_per_call_and_choice() -> None:
    chunks = [chunk(args='{"key": "AKIAIOSF'), chunk(args="ODNN7EXAMPLE\"}"), chunk(args='{"n": 1}', call=1),
              chunk("plain", choice=1), chunk(finish="tool_calls"), chunk(finish="stop", choice=1)]
    out = await read(redactor(), raw(chunks))
    assembled = assemble([d.raw for d in out if d.raw is not None])
    calls = assembled["choices"][0]["message"]["tool_calls"]
    assert calls[0]["function"]["arguments"] == '{"key": "[REDACTED:secrets]"}'
    assert calls[1]["function"]["arguments"] == '{"n": 1}'
    assert assembled["choices"][1]["message"]["content"] == "plain"


async def test_a_whole_answer_is_redacted_in_its_text_its_raw_body_and_its_tool_calls() -> None:
    body = {"choices": [{"index": 0, "message": {"content": f"key {KEY}", "tool_calls": [
        {"id": "t", "type": "function", "function": {"name": "f", "arguments": f'{{"k": "{KEY}"}}'}}]},
        "finish_reason": "stop"}]}
    whole = Completion(f"key {KEY}", "stop", "m", USAGE, "e", raw=body)
    [out] = await read(redactor(), [Delta(content=whole.content, whole=whole, raw=body)])
    assert out.whole is not None and out.content == out.whole.content == "key [REDACTED:secrets]"
    message = out.whole.raw["choices"][0]["message"] if out.whole.raw else {}
    assert message["tool_calls"][0]["function"]["arguments"] == '{"k": "[REDACTED:secrets]"}'


async def test_a_native_stream_flushes_what_it_held_at_its_finish() -> None:
    items = [Delta(content="mail me at a"), Delta(content="@b.example please"),
             Delta(finish_reason="stop", usage=USAGE)]
    out = await read(redactor(redact=("email",)), items)
    assert "".join(d.content for d in out) == "mail me at [REDACTED:email] please"
    assert out[-1].usage == USAGE


async def test_a_cut_stream_lets_out_what_it_held_then_the_error() -> None:
    seen: list[Delta] = []
    with pytest.raises(ServiceUnavailable):
        async for delta in redactor().source(source_of(raw([chunk("a short"), chunk(f" {KEY}")]),
                                                       ServiceUnavailable("cut")))():
            seen.append(delta)
    assert "".join(d.content for d in seen) == "a short [REDACTED:secrets]"
    assert seen[-1].raw is not None and seen[-1].raw["choices"][0]["delta"]["content"], "in the provider's framing"


async def test_a_cached_answer_passes_as_it_was_stored() -> None:
    hit = Completion(f"stored {KEY}", "stop", "m", USAGE, "")
    [out] = await read(redactor(), [Delta(content=hit.content, whole=hit, cached=True)])
    assert out.content == hit.content, "a hit was stored as the client received it: never redacted twice"


async def test_the_audit_record_counts_redactions_by_kind() -> None:
    with tracing.active(Record("POST /api/v1/chat/completions")) as record:
        await read(redactor(redact=("secrets", "email")), raw([chunk(f"{KEY} and a@b.example, {KEY}"),
                                                                chunk(finish="stop")]))
    assert audit.fields(record)[n.AUDIT_SAFETY_REDACTED] == "email:1,secrets:2"
