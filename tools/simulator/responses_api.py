"""The Responses API of one simulated region: create (whole or streamed, with sequence_number),
retrieve, delete, input_items and input_tokens; previous_response_id chains through the responses
this region stored, and nothing else (another region's id is unknown here, as in the service).

A request is answered by the chat model underneath (replies.py): the instructions, the previous
responses' context and the input become chat messages, billed by the same recipe (prompt.py)."""

from __future__ import annotations

import asyncio
import functools
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from tools.simulator import azure
from tools.simulator.prompt import prompt_tokens
from tools.simulator.replies import Reply, plan_replies
from tools.simulator.response_items import (
    chat_format,
    chat_tool_choice,
    chat_tools,
    check_settings,
    input_messages,
    new_id,
    output_items,
    output_messages,
    response_usage,
    sealed_contents,
)
from tools.simulator.responses import DroppedConnection, DroppedResponse, EventStream, Write, sse
from tools.simulator.schemas import ChatRequest, InvalidRequest
from tools.simulator.service import Record, Simulator
from tools.simulator.text import InputTooLong


@dataclass
class Stored:
    """A stored response, its input items, and the chat context a follow-up continues from."""

    response: dict[str, Any]
    items: list[dict[str, Any]]
    history: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class _Turn:
    """One accepted request: the response skeleton, its reply, and what it bills."""

    response: dict[str, Any]
    reply: Reply
    items: list[dict[str, Any]]
    history: list[dict[str, Any]]
    prompt: int
    cached: int
    store: bool
    stream: bool
    reasoning: dict[str, Any] | None  # the reasoning item, when `include` asks for its encrypted_content


class ResponsesService:
    """The /responses routes of one region; its stored responses live as long as the process."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.stored: dict[str, Stored] = {}
        self.sealed: set[str] = set()  # the encrypted_content this region issued

    async def create(self, request: Request) -> Response:
        sim = self.sim
        record = sim._begin(request)
        if (rejected := sim._admit(request, record)) is not None:
            return rejected
        body = _body_or_none(await request.body())
        turn = self._accepted(body, record)
        if not isinstance(turn, _Turn):
            return turn
        fault = sim.faults.draw(str((body or {}).get("model")))  # the v1 API names the deployment in the body
        if (failed := await sim._fail(fault, request, record)) is not None:
            return failed
        drop_after = fault.drop_after if fault is not None and fault.status == "drop_stream" else None
        headers = sim.quota.spend(turn.prompt + (turn.response["max_output_tokens"] or 0))
        await sim._sleep(sim.config.base_latency_ms / 1000)
        if not turn.stream:
            final = self._finish(turn)
            self._store(turn, final)
            if drop_after is not None:
                record("dropped")
                return DroppedResponse(final)
            await sim._sleep(sim.config.ms_per_token * turn.reply.completion_tokens / 1000)
            record("200", turn.prompt, turn.reply.completion_tokens)
            return JSONResponse(final, headers=headers)
        return EventStream(functools.partial(self._stream, turn, drop_after, record), headers=headers)

    def _accepted(self, body: dict[str, Any] | None, record: Record) -> _Turn | Response:
        """The request's turn, or the 400 the service answers (naming the field)."""
        try:
            if body is None:
                raise InvalidRequest("body: must be a JSON object")
            return self._turn(body)
        except LookupError as exc:
            record("400")
            return _not_found_previous(str(exc))
        except (InvalidRequest, InputTooLong) as exc:
            record("400")
            return azure.bad_request(exc)

    def _turn(self, body: Mapping[str, Any]) -> _Turn:
        cap = check_settings(body)
        history: list[dict[str, Any]] = []
        previous = body.get("previous_response_id")
        if previous is not None:
            stored = self.stored.get(str(previous))
            if stored is None:
                raise LookupError(str(previous))
            history = list(stored.history)
        for index, content in sealed_contents(body):
            if content not in self.sealed:
                raise InvalidRequest(f"input.{index}.encrypted_content: the encrypted content could not be "
                                     "verified (it was issued by another deployment)")
        messages, items = input_messages(body)
        instructions = body.get("instructions")
        system = [{"role": "developer", "content": instructions}] if isinstance(instructions, str) else []
        chat: dict[str, Any] = {"messages": [*system, *history, *messages], "max_tokens": cap,
                                "tools": chat_tools(body), "response_format": chat_format(body)}
        if body.get("tool_choice") is not None:
            chat["tool_choice"] = chat_tool_choice(body["tool_choice"])
        if body.get("parallel_tool_calls") is not None:
            chat["parallel_tool_calls"] = body["parallel_tool_calls"]
        try:
            request = ChatRequest.model_validate({k: v for k, v in chat.items() if v is not None})
        except ValueError as exc:
            raise InvalidRequest(f"input: {type(exc).__name__}") from None
        prompt = prompt_tokens(request)
        model = f"simulator-{body['model']}"
        reply = plan_replies(request, seed=self.sim.config.seed)[0]
        response = {
            "id": new_id("resp"), "object": "response", "created_at": int(time.time()), "status": "in_progress",
            "background": False, "error": None, "incomplete_details": None,
            "instructions": instructions if isinstance(instructions, str) else None,
            "max_output_tokens": cap, "model": model, "output": [], "parallel_tool_calls":
                body.get("parallel_tool_calls", True), "previous_response_id": previous,
            "reasoning": {"effort": None, "summary": None}, "store": body.get("store", True) is not False,
            "temperature": body.get("temperature", 1.0), "text": body.get("text") or {"format": {"type": "text"}},
            "tool_choice": body.get("tool_choice", "auto"), "tools": body.get("tools") or [],
            "top_p": body.get("top_p", 1.0), "truncation": body.get("truncation", "disabled"), "usage": None,
            "user": body.get("user"), "metadata": body.get("metadata") or {},
        }
        cached = self.sim.prefix_cache.cached_tokens(model, prompt)
        include = body.get("include")
        reasoning = None
        if isinstance(include, list) and "reasoning.encrypted_content" in include:
            sealed = f"sim-{self.sim.config.region}-{new_id('enc')}"
            self.sealed.add(sealed)
            reasoning = {"id": new_id("rs"), "type": "reasoning", "summary": [], "encrypted_content": sealed}
        return _Turn(response, reply, items, [*history, *messages], len(prompt), cached, response["store"],
                     body.get("stream") is True, reasoning)

    def _finish(self, turn: _Turn) -> dict[str, Any]:
        """The response in its final state: completed, or incomplete when max_output_tokens cut it."""
        output = [*([turn.reasoning] if turn.reasoning else []), *output_items(turn.reply)]
        cut = turn.reply.finish_reason == "length"
        return {**turn.response, "output": output, "status": "incomplete" if cut else "completed",
                "incomplete_details": {"reason": "max_output_tokens"} if cut else None,
                "usage": response_usage(turn.prompt, turn.reply.completion_tokens, turn.cached)}

    def _store(self, turn: _Turn, response: dict[str, Any]) -> None:
        """Kept (unless store: false) from its creation; a follow-up continues its whole context."""
        if turn.store:
            self.stored[response["id"]] = Stored(response, turn.items,
                                                 [*turn.history, *output_messages(response["output"])])

    async def _stream(self, turn: _Turn, drop_after: int | None, record: Record, write: Write) -> None:
        """The service's events, each with its sequence_number; the terminal one ends the stream."""
        sim, sent, decoded = self.sim, 0, 0
        final = self._finish(turn) if drop_after is None else None
        output = (final or self._finish(turn))["output"]
        sequence = 0

        async def emit(event: dict[str, Any]) -> None:
            nonlocal sequence
            await write(sse({**event, "sequence_number": sequence}))
            sequence += 1

        try:
            self._store(turn, turn.response)  # retrievable while in progress, as the service's
            await emit({"type": "response.created", "response": turn.response})
            await emit({"type": "response.in_progress", "response": turn.response})
            for event, tokens in _item_events(output, turn.reply):
                if tokens:
                    if drop_after is not None and decoded >= drop_after:
                        break
                    await sim._sleep(sim.config.ms_per_token * tokens / 1000)
                    decoded += 1
                await emit(event)
                sent += tokens
            if final is None:
                record("dropped", turn.prompt, sent)
                raise DroppedConnection(f"dropped after {sent} tokens")
            record("200", turn.prompt, sent)
            self._store(turn, final)
            await emit({"type": f"response.{final['status']}", "response": final})
        except asyncio.CancelledError:
            record("client_disconnected", turn.prompt, sent)
            raise

    async def retrieve(self, request: Request) -> Response:
        return self._stored_route(request, lambda s: JSONResponse(s.response))

    async def delete(self, request: Request) -> Response:
        def gone(stored: Stored) -> Response:
            self.stored.pop(stored.response["id"], None)
            return JSONResponse({"id": stored.response["id"], "object": "response.deleted", "deleted": True})

        return self._stored_route(request, gone)

    async def input_items(self, request: Request) -> Response:
        def listed(stored: Stored) -> Response:
            items = stored.items if request.query_params.get("order") == "asc" else stored.items[::-1]
            return JSONResponse({"object": "list", "data": items, "first_id": items[0]["id"] if items else None,
                                 "last_id": items[-1]["id"] if items else None, "has_more": False})

        return self._stored_route(request, listed)

    async def input_tokens(self, request: Request) -> Response:
        record = self.sim._begin(request)
        if (rejected := self.sim._admit(request, record)) is not None:
            return rejected
        body = _body_or_none(await request.body())
        turn = self._accepted(body, record)
        if not isinstance(turn, _Turn):
            return turn
        record("200")
        return JSONResponse({"object": "response.input_tokens", "input_tokens": turn.prompt})

    def _stored_route(self, request: Request, answer: Any) -> Response:
        record = self.sim._begin(request)
        if (rejected := self.sim._admit(request, record)) is not None:
            return rejected
        response_id = request.path_params["response_id"]
        stored = self.stored.get(response_id)
        if stored is None:
            record("404")
            return JSONResponse({"error": {"message": f"Response with id '{response_id}' not found.",
                                           "type": "invalid_request_error", "param": None, "code": None}},
                                status_code=404)
        record("200")
        result: Response = answer(stored)
        return result


def _item_events(output: list[dict[str, Any]], reply: Reply) -> list[tuple[dict[str, Any], int]]:
    """The events that stream each output item, with the generated tokens each carries."""
    events: list[tuple[dict[str, Any], int]] = []
    calls = iter(reply.tool_calls)
    for index, item in enumerate(output):
        where = {"item_id": item["id"], "output_index": index}
        if item["type"] == "reasoning":
            events.append(({"type": "response.output_item.added", "output_index": index, "item": item}, 0))
        elif item["type"] == "message":
            assert reply.text is not None  # noqa: S101  a message item comes from a text reply
            opened = {**item, "status": "in_progress", "content": []}
            part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
            events.append(({"type": "response.output_item.added", "output_index": index, "item": opened}, 0))
            events.append(({"type": "response.content_part.added", **where, "content_index": 0, "part": part}, 0))
            events += [({"type": "response.output_text.delta", **where, "content_index": 0, "delta": p.text,
                         "logprobs": []}, p.tokens) for p in reply.text.pieces]
            text = item["content"][0]["text"]
            events.append(({"type": "response.output_text.done", **where, "content_index": 0, "text": text,
                            "logprobs": []}, 0))
            events.append(({"type": "response.content_part.done", **where, "content_index": 0,
                            "part": item["content"][0]}, 0))
        else:
            call = next(calls)
            opened = {**item, "status": "in_progress", "arguments": ""}
            events.append(({"type": "response.output_item.added", "output_index": index, "item": opened},
                           call.header_tokens))
            events += [({"type": "response.function_call_arguments.delta", **where, "delta": p.text}, p.tokens)
                       for p in call.arguments.pieces]
            events.append(({"type": "response.function_call_arguments.done", **where, "name": item["name"],
                            "arguments": item["arguments"]}, 0))
        events.append(({"type": "response.output_item.done", "output_index": index, "item": item}, 0))
    return events


def _body_or_none(raw: bytes) -> dict[str, Any] | None:
    try:
        body = json.loads(raw)
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _not_found_previous(response_id: str) -> Response:
    """What the service answers a previous_response_id it does not hold (another region's, a
    deleted one, one created with store: false)."""
    return JSONResponse({"error": {"message": f"Previous response with id '{response_id}' not found.",
                                   "type": "invalid_request_error", "param": "previous_response_id",
                                   "code": "previous_response_not_found"}}, status_code=400)

