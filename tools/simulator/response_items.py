"""The Responses API's items as the simulator reads and writes them: a request's input and tools
turned into the chat request the simulated model answers, and its replies turned into output items."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from tools.simulator.replies import Reply
from tools.simulator.schemas import InvalidRequest

# Members of a Responses body that are settings, never prompt text (the simulator bills none of them).
_ROLES = frozenset({"user", "system", "developer", "assistant"})
_TEXT_PARTS = frozenset({"input_text", "output_text", "text", "refusal"})
# The service's own floor for max_output_tokens.
MIN_OUTPUT_TOKENS = 16


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}{uuid.uuid4().hex[:16]}"


def input_messages(body: Mapping[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The request's input as chat messages, and as the stored input items (each with an id)."""
    value = body.get("input")
    if isinstance(value, str):
        value = [{"role": "user", "content": value}]
    if not isinstance(value, list):
        raise InvalidRequest("input: must be a string or a list of input items")
    messages: list[dict[str, Any]] = []
    items: list[dict[str, Any]] = []
    for index, item in enumerate(value):
        if not isinstance(item, dict):
            raise InvalidRequest(f"input.{index}: must be an object")
        kind = item.get("type", "message")
        if kind == "message" and item.get("role") in _ROLES:
            text = _text(item.get("content"), f"input.{index}.content")
            messages.append({"role": item["role"], "content": text})
            part = "output_text" if item["role"] == "assistant" else "input_text"
            items.append({"id": item.get("id") or new_id("msg"), "type": "message", "role": item["role"],
                          "content": [{"type": part, "text": text}], "status": "completed"})
        elif kind == "function_call":
            call = {"id": _str(item, "call_id", index), "type": "function",
                    "function": {"name": _str(item, "name", index), "arguments": _str(item, "arguments", index)}}
            messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
            items.append({**item, "id": item.get("id") or new_id("fc"), "status": "completed"})
        elif kind == "function_call_output":
            output = item.get("output")
            text = output if isinstance(output, str) else _text(output, f"input.{index}.output")
            messages.append({"role": "tool", "tool_call_id": _str(item, "call_id", index), "content": text})
            items.append({**item, "id": item.get("id") or new_id("fco"), "status": "completed"})
        elif kind == "reasoning":
            continue  # the simulated model never reasons; an earlier reasoning item bills nothing
        else:
            raise InvalidRequest(f"input.{index}.type: {kind!r} is not an input item the simulator knows")
    return messages, items


def chat_tools(body: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    """Function tools in the chat shape; any other tool type is refused naming it."""
    tools = body.get("tools")
    if not tools:
        return None
    if not isinstance(tools, list):
        raise InvalidRequest("tools: must be a list")
    out = []
    for index, tool in enumerate(tools):
        if not isinstance(tool, dict) or tool.get("type") != "function":
            kind = tool.get("type") if isinstance(tool, dict) else None
            raise InvalidRequest(f"tools.{index}.type: the simulator runs only function tools, not {kind!r}")
        function = {k: tool[k] for k in ("name", "description", "parameters", "strict") if tool.get(k) is not None}
        out.append({"type": "function", "function": function})
    return out


def chat_tool_choice(choice: object) -> object:
    """The Responses tool_choice in the chat shape (a named function is flat in Responses)."""
    if isinstance(choice, dict) and choice.get("type") == "function":
        return {"type": "function", "function": {"name": choice.get("name")}}
    if isinstance(choice, dict) and choice.get("type") == "allowed_tools":
        named = [{"type": "function", "function": {"name": t.get("name")}} for t in choice.get("tools") or []]
        return {"type": "allowed_tools", "allowed_tools": {"mode": choice.get("mode"), "tools": named}}
    return choice


def chat_format(body: Mapping[str, Any]) -> dict[str, Any] | None:
    """`text.format` as the chat response_format (json_schema is flat in Responses)."""
    text = body.get("text")
    fmt = text.get("format") if isinstance(text, dict) else None
    if not isinstance(fmt, dict) or fmt.get("type") in (None, "text"):
        return None
    if fmt.get("type") == "json_schema":
        schema = {k: fmt[k] for k in ("name", "description", "schema", "strict") if fmt.get(k) is not None}
        return {"type": "json_schema", "json_schema": schema}
    return {"type": fmt.get("type")}


def output_items(reply: Reply) -> list[dict[str, Any]]:
    """A reply as the service's output items: one message, or one function_call per call."""
    if reply.text is not None:
        return [{"id": new_id("msg"), "type": "message", "status": "completed", "role": "assistant",
                 "content": [{"type": "output_text", "text": reply.text.content, "annotations": [], "logprobs": []}]}]
    return [{"id": new_id("fc"), "type": "function_call", "status": "completed", "call_id": call.id,
             "name": call.name, "arguments": call.arguments.content} for call in reply.tool_calls]


def sealed_contents(body: Mapping[str, Any]) -> list[tuple[int, str]]:
    """The input's reasoning items that carry encrypted_content, by index: only the deployment that
    sealed one can read it."""
    value = body.get("input")
    items = value if isinstance(value, list) else []
    return [(index, str(item["encrypted_content"])) for index, item in enumerate(items)
            if isinstance(item, dict) and item.get("type") == "reasoning" and item.get("encrypted_content")]


def output_messages(items: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Output items as the chat messages a follow-up's context replays (reasoning bills nothing here)."""
    messages: list[dict[str, Any]] = []
    for item in items:
        if item["type"] == "reasoning":
            continue
        if item["type"] == "message":
            messages.append({"role": "assistant", "content": "".join(p["text"] for p in item["content"])})
        else:
            messages.append({"role": "assistant", "content": None, "tool_calls": [
                {"id": item["call_id"], "type": "function",
                 "function": {"name": item["name"], "arguments": item["arguments"]}}]})
    return messages


def response_usage(prompt: int, output: int, cached: int) -> dict[str, Any]:
    return {"input_tokens": prompt, "input_tokens_details": {"cached_tokens": cached},
            "output_tokens": output, "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": prompt + output}


def check_settings(body: Mapping[str, Any]) -> int | None:
    """The request's max_output_tokens (refused below the service's floor) after the common checks."""
    cap = body.get("max_output_tokens")
    if cap is not None and (not isinstance(cap, int) or isinstance(cap, bool) or cap < MIN_OUTPUT_TOKENS):
        raise InvalidRequest(f"max_output_tokens: integer below minimum value. Expected a value >= "
                             f"{MIN_OUTPUT_TOKENS}, but got {json.dumps(cap)} instead.")
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise InvalidRequest("model: Field required")
    return cap


def _text(content: object, where: str) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p for p in content if isinstance(p, dict)]
        return "".join(str(p.get("text") or p.get("refusal") or "") for p in parts if p.get("type") in _TEXT_PARTS)
    raise InvalidRequest(f"{where}: must be a string or a list of content parts")


def _str(item: Mapping[str, Any], key: str, index: int) -> str:
    value = item.get(key)
    if not isinstance(value, str):
        raise InvalidRequest(f"input.{index}.{key}: Field required")
    return value
