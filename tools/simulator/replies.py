"""What a simulated model answers a chat request with: text, JSON, or tool calls, for each of n choices."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from tools.simulator.instances import SchemaInstance
from tools.simulator.prompt import tool_call_tokens
from tools.simulator.schemas import ChatMessage, ChatRequest, FunctionDefinition, InvalidRequest
from tools.simulator.strict_schema import check_strict
from tools.simulator.text import (
    WORD_RE,
    Answer,
    FinishReason,
    answer_of,
    answer_rng,
    generate_answer,
    prompt_key,
    stable_hash,
)
from tools.simulator.tool_choice import ToolChoiceError, chosen_tools

# A tool result is quoted in the answer up to this many characters, so a huge one stays cheap.
MAX_QUOTED_RESULT = 2000


@dataclass(frozen=True)
class PlannedToolCall:
    """One generated tool call; its name (with the call's framing) costs header_tokens."""

    id: str
    name: str
    header_tokens: int
    arguments: Answer


@dataclass(frozen=True)
class Reply:
    """One choice: text (prose or JSON), or tool calls with content null."""

    text: Answer | None
    tool_calls: tuple[PlannedToolCall, ...]
    finish_reason: FinishReason | str

    @property
    def completion_tokens(self) -> int:
        if self.text is not None:
            return self.text.completion_tokens
        return sum(call.header_tokens + call.arguments.completion_tokens for call in self.tool_calls)


def plan_replies(request: ChatRequest, *, seed: int | str) -> list[Reply]:
    """The n replies; raises InvalidRequest for what the API refuses (tool_choice, json mode)."""
    check_conversation(request.messages)
    check_strict(request)
    try:
        functions = chosen_tools(request)
    except ToolChoiceError as exc:
        raise InvalidRequest(str(exc)) from None
    fmt = request.response_format
    if fmt is not None and fmt.type == "json_object" and not any("json" in m.text.lower() for m in request.messages):
        # The API's own rule: JSON mode without asking for JSON lets the model emit whitespace forever.
        raise InvalidRequest("messages: must contain the word 'json' in some form to use response_format json_object")
    plain = [(message.role, message.text) for message in request.messages]
    return [_reply(request, plain, functions, seed, choice) for choice in range(request.n or 1)]


def check_conversation(messages: Sequence[ChatMessage]) -> None:
    """A tool message must answer a tool call of an earlier assistant message, as the API requires."""
    called: set[str] = set()
    for index, message in enumerate(messages):
        if message.role == "assistant":
            called.update(call.id for call in message.tool_calls or [])
        if message.role == "tool" and message.tool_call_id not in called:
            raise InvalidRequest(
                f"messages.{index}: a message with role 'tool' must answer a preceding message with 'tool_calls'"
            )


def _reply(
    request: ChatRequest,
    plain: Sequence[tuple[str, str]],
    functions: list[FunctionDefinition],
    seed: int | str,
    choice: int,
) -> Reply:
    cap = request.token_cap
    prompt_hash = stable_hash(prompt_key(plain))
    rng = answer_rng(seed, prompt_hash, choice)
    words = WORD_RE.findall(request.messages[-1].text) or WORD_RE.findall(" ".join(t for _, t in plain))
    if functions:
        return _tool_calls(functions, words, rng_seed=f"{seed}:{prompt_hash}:{choice}", cap=cap)
    fmt = request.response_format
    if fmt is not None and fmt.json_schema is not None and fmt.type == "json_schema":
        instance = SchemaInstance(fmt.json_schema.schema_ or {}, words, rng).build()
        return _text(answer_of(json.dumps(instance, ensure_ascii=False, separators=(",", ":")), cap), request.stops)
    prose = generate_answer(plain, seed=seed, max_tokens=None, choice=choice).content
    if request.messages[-1].role == "tool":
        # The answer quotes the tool's result, so a client can see it made it through.
        prose = f"The tool returned: {request.messages[-1].text[:MAX_QUOTED_RESULT]}. {prose}"
    if fmt is not None and fmt.type == "json_object":
        prose = json.dumps({"answer": prose}, ensure_ascii=False)
    return _text(answer_of(prose, cap), request.stops)


def _text(answer: Answer, stops: list[str]) -> Reply:
    # A stop sequence ends the answer before it, with finish_reason "stop", as the API does.
    cuts = [answer.content.find(stop) for stop in stops if stop in answer.content]
    if cuts:
        answer = answer_of(answer.content[: min(cuts)], None)
    return Reply(answer, (), answer.finish_reason)


def _tool_calls(functions: list[FunctionDefinition], words: list[str], *, rng_seed: str, cap: int | None) -> Reply:
    calls: list[PlannedToolCall] = []
    left = cap
    for index, function in enumerate(functions):
        rng = answer_rng(rng_seed, index)
        instance = SchemaInstance(function.parameters or {}, words, rng).build()
        arguments = json.dumps(instance, ensure_ascii=False, separators=(",", ":"))
        header = len(tool_call_tokens(function.name, ""))
        if left is not None and left < header:
            break  # no room left even for the name: the calls so far are all there is
        args = answer_of(arguments, None if left is None else left - header)
        call_id = "call_" + format(stable_hash(f"{rng_seed}:{index}"), "016x") + format(index, "08x")
        calls.append(PlannedToolCall(call_id, function.name, header, args))
        if left is not None:
            left -= header + args.completion_tokens
        if args.finish_reason == "length":
            break
    cut = len(calls) < len(functions) or any(call.arguments.finish_reason == "length" for call in calls)
    return Reply(None, tuple(calls), "length" if cut else "tool_calls")
