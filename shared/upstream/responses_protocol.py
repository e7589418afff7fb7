"""The Responses API on the wire, as plain JSON: its events, its usage, and the prompt estimate.

Like the chat pass-through, nothing is modelled: these helpers read the few fields the gateway
needs (the event type, usage, the text that was generated) and every other field goes on as it came.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.core.models import Usage
from shared.core.tokens import NOT_PROMPT, _json_bytes, request_prompt_tokens

# The events that end a stream: after one of them nothing more comes.
TERMINAL = frozenset({"response.completed", "response.failed", "response.incomplete", "error"})
# Events that carry generated tokens (what a cut stream is charged by, and what makes an attempt begun).
_GENERATED = {"response.output_text.delta": "delta", "response.function_call_arguments.delta": "delta",
              "response.refusal.delta": "delta", "response.reasoning_summary_text.delta": "delta",
              "response.reasoning_text.delta": "delta"}
# Top-level members of a Responses body that are settings, never prompt text (the others, bar
# input, instructions and tools, are counted at a token per byte as on the chat route).
_SETTINGS = NOT_PROMPT | {"input", "instructions", "tools", "max_output_tokens", "previous_response_id",
                          "include", "truncation", "reasoning", "background", "max_tool_calls", "text",
                          "prompt_cache_retention", "tool_choice"}
# Members of an input item the chat recipe covers or that are references, not text.
_ITEM_REFS = frozenset({"id", "status", "type", "role", "content", "call_id", "name", "arguments", "output"})


def usage_of(response: Mapping[str, Any]) -> Usage | None:
    """A response's usage as the meter counts it: input (cached included) and output (reasoning
    included), as the provider bills them."""
    raw = response.get("usage")
    if not isinstance(raw, dict):
        return None
    prompt, completion = int(raw.get("input_tokens") or 0), int(raw.get("output_tokens") or 0)
    return Usage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion)


def event_response(event: Mapping[str, Any]) -> Mapping[str, Any]:
    """The response an event carries (response.created, ..., the terminal ones), else {}."""
    response = event.get("response")
    return response if isinstance(response, dict) else {}


def generated_text(event: Mapping[str, Any]) -> str:
    """What the model generated in this event: a text or arguments delta, or a function call's
    name when its item opens (billed with the call)."""
    kind = event.get("type")
    if kind in _GENERATED:
        return str(event.get(_GENERATED[str(kind)]) or "")
    if kind == "response.output_item.added":
        item = event.get("item")
        if isinstance(item, dict) and item.get("type") == "function_call":
            return str(item.get("name") or "")
    return ""


def output_text(response: Mapping[str, Any]) -> str:
    """The text of a response's message items (what the SDK's `output_text` reads)."""
    output = response.get("output")
    parts: list[str] = []
    for item in output if isinstance(output, list) else []:
        if isinstance(item, dict) and item.get("type") == "message":
            parts += [str(c.get("text") or "") for c in item.get("content") or [] if isinstance(c, dict)]
    return "".join(parts)


def sealed_items(items: object) -> list[tuple[int, object]]:
    """The reasoning items that carry `encrypted_content` (only the deployment that sealed them can
    read them), by index, with their ids (None when missing)."""
    found = items if isinstance(items, list) else []
    return [(index, item.get("id")) for index, item in enumerate(found)
            if isinstance(item, dict) and item.get("type") == "reasoning" and item.get("encrypted_content")]


def prompt_estimate(model: str, body: Mapping[str, Any]) -> int:
    """The input as the model reads it, never below the bill: the instructions, the input items
    and the function tools by the chat recipe (shared/core/tokens.py); every member without a
    recipe at a token per byte. The context a previous_response_id carries is added by the caller."""
    messages: list[Any] = []
    if isinstance(body.get("instructions"), str):
        messages.append({"role": "developer", "content": body["instructions"]})
    value = body.get("input")
    items = [{"role": "user", "content": value}] if isinstance(value, str) else value if isinstance(value, list) else []
    extra = 0 if value is None or isinstance(value, str | list) else _json_bytes(value)
    for item in items:
        message, unknown = _as_message(item)
        messages.append(message)
        extra += unknown
    tools = [_as_chat_tool(t) for t in body.get("tools") or []] if isinstance(body.get("tools"), list) else []
    unmodelled = {k: v for k, v in body.items() if k not in _SETTINGS}
    extra += _json_bytes(unmodelled) if unmodelled else 0
    extra += _json_bytes(body["tool_choice"]) if isinstance(body.get("tool_choice"), dict) else 0
    chat = {"messages": messages, **({"tools": tools} if tools else {})}
    return request_prompt_tokens(model, chat) + extra


def _as_message(item: object) -> tuple[dict[str, Any], int]:
    """An input item as the chat message it bills like, and its members without a recipe (in bytes)."""
    if not isinstance(item, dict):
        return {"role": "user", "content": ""}, _json_bytes(item)
    unknown = {k: v for k, v in item.items() if k not in _ITEM_REFS}
    extra = _json_bytes(unknown) if unknown else 0
    kind = item.get("type", "message")
    if kind == "function_call":
        call = {"type": "function", "function": {"name": item.get("name"), "arguments": item.get("arguments")}}
        return {"role": "assistant", "content": None, "tool_calls": [call]}, extra
    if kind == "function_call_output":
        output = item.get("output")
        return {"role": "tool", "content": output if isinstance(output, str) else _parts(output)}, extra
    if kind == "message" and "content" in item:
        return {"role": str(item.get("role") or "user"), "content": _parts(item.get("content"))}, extra
    # Any other item (reasoning with its encrypted content, a hosted tool's call) at a token per byte.
    return {"role": "user", "content": ""}, _json_bytes(item)


def _parts(content: object) -> object:
    """Responses content parts as chat text parts (input_text and output_text are text)."""
    if not isinstance(content, list):
        return content
    return [{"type": "text", "text": p.get("text")} if isinstance(p, dict) and isinstance(p.get("text"), str)
            and set(p) <= {"type", "text", "annotations", "logprobs"} else p for p in content]


def _as_chat_tool(tool: object) -> object:
    """A Responses function tool (flat) as the chat tool it bills like; any other tool as it is."""
    if isinstance(tool, dict) and tool.get("type") == "function":
        return {"type": "function", "function": {k: v for k, v in tool.items() if k != "type"}}
    return tool
