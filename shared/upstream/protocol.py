"""OpenAI chat completions on the wire, as plain JSON: cache keys, finish reasons, stream chunks.

The pass-through never models a provider's response: these helpers read the few fields the
gateway needs (usage, finish reasons, the text that was billed) and leave every other field as
it came, so fields a provider adds tomorrow still reach the client.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from shared.core.models import Usage
from shared.core.tokens import canonical_json
from shared.core.values import Completion

# Fields that change who is asking or how the answer is delivered, never the answer itself.
NOT_IN_CACHE_KEY = frozenset({"model", "stream", "stream_options", "user", "safety_identifier",
                              "prompt_cache_key", "metadata", "store", "service_tier"})
CACHEABLE_FINISH = frozenset({"stop", "tool_calls"})
# A plain text request: only these fields (with messages) may be set for the semantic cache to apply.
SEMANTIC_FIELDS = frozenset({"messages", "temperature", "top_p", "max_tokens", "max_completion_tokens", "stop",
                             "presence_penalty", "frequency_penalty", "seed", "n"})


def cache_key(body: Mapping[str, Any]) -> dict[str, Any]:
    """Every field that can change the answer, as canonical JSON (key order never splits a key)."""
    return {"op": "openai", "body": canonical_json({k: v for k, v in body.items() if k not in NOT_IN_CACHE_KEY})}


def usage_of(payload: Mapping[str, Any]) -> Usage | None:
    raw = payload.get("usage")
    if not isinstance(raw, dict):
        return None
    prompt, completion = int(raw.get("prompt_tokens") or 0), int(raw.get("completion_tokens") or 0)
    return Usage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion)


def finish_of(response: Mapping[str, Any]) -> str:
    """One finish reason for the whole answer: the first choice's, unless another choice's makes
    the answer unfit to cache (a choice cut by `length` or a filter)."""
    reasons = [str(c.get("finish_reason") or "") for c in _choices(response)]
    odd = [r for r in reasons if r not in CACHEABLE_FINISH]
    return odd[0] if odd else reasons[0] if reasons else ""


def billed_text(payload: Mapping[str, Any]) -> str:
    """What the model generated in a response or chunk (content, refusal, tool calls' names and
    arguments): the meter's count when no usage arrives."""
    parts: list[str] = []
    for choice in _choices(payload):
        body = choice.get("message") or choice.get("delta") or {}
        parts += [str(body.get(k) or "") for k in ("content", "refusal")]
        for call in body.get("tool_calls") or []:
            function = call.get("function") or {}
            parts += [str(function.get("name") or ""), str(function.get("arguments") or "")]
    return "".join(parts)


def tool_calls_begun(chunk: Mapping[str, Any]) -> int:
    """Tool calls a stream chunk begins (a call's first delta carries its id): each is billed with
    its framing, besides its name and arguments."""
    return sum(1 for choice in _choices(chunk) for call in (choice.get("delta") or {}).get("tool_calls") or []
               if isinstance(call, dict) and call.get("id"))


def assemble(chunks: list[dict[str, Any]]) -> dict[str, Any]:
    """The chat.completion a stream of chunks stands for (to cache a streamed answer)."""
    choices: dict[int, dict[str, Any]] = {}
    for chunk in chunks:
        for part in _choices(chunk):
            choice = choices.setdefault(int(part.get("index", 0)), {
                "index": int(part.get("index", 0)), "message": {"role": "assistant", "content": None},
                "logprobs": None, "finish_reason": None})
            _merge_delta(choice["message"], part.get("delta") or {})
            if part.get("finish_reason"):
                choice["finish_reason"] = part["finish_reason"]
            if isinstance(part.get("logprobs"), dict):
                logprobs = choice["logprobs"] = choice["logprobs"] or {"content": None, "refusal": None}
                for kind in ("content", "refusal"):
                    if part["logprobs"].get(kind) is not None:
                        logprobs[kind] = (logprobs[kind] or []) + list(part["logprobs"][kind])
    last = chunks[-1] if chunks else {}
    response = {k: v for k, v in last.items() if k not in ("choices", "object")}
    return {**response, "object": "chat.completion", "choices": [choices[i] for i in sorted(choices)]}


def _merge_delta(message: dict[str, Any], delta: Mapping[str, Any]) -> None:
    for key, value in delta.items():
        if key == "tool_calls":
            calls: list[dict[str, Any]] = message.setdefault("tool_calls", [])
            for call in value or []:
                index = int(call.get("index", len(calls)))
                while len(calls) <= index:
                    calls.append({"id": None, "type": "function", "function": {"name": "", "arguments": ""}})
                target = calls[index]
                for field in ("id", "type"):
                    target[field] = call.get(field) or target[field]
                function = call.get("function") or {}
                target["function"]["name"] += function.get("name") or ""
                target["function"]["arguments"] += function.get("arguments") or ""
        elif key in ("content", "refusal") and isinstance(value, str):
            message[key] = (message.get(key) or "") + value
        elif value is not None:
            message[key] = value


def replay(response: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A cached chat.completion as the chunks a provider streams: Azure's filter-only first chunk
    when the answer has prompt filter results; per choice its deltas (_deltas), the content's with
    the choice's filter results, then its finish; the usage chunk last."""
    head = {k: v for k, v in response.items() if k not in ("choices", "object", "usage", "prompt_filter_results")}
    head["object"] = "chat.completion.chunk"
    chunks: list[dict[str, Any]] = []
    if "prompt_filter_results" in response:
        chunks.append({"choices": [], "created": 0, "id": "", "model": "", "object": "",
                       "prompt_filter_results": response["prompt_filter_results"]})
    for choice in _choices(response):
        index = choice.get("index", 0)
        opening, delta = _deltas(choice.get("message") or {})
        if opening is not None:
            chunks.append({**head, "choices": [{"index": index, **_no_results(choice), "delta": opening,
                                                "logprobs": None, "finish_reason": None}]})
        extra = {k: v for k, v in choice.items() if k not in ("index", "message", "logprobs", "finish_reason")}
        chunks.append({**head, "choices": [{"index": index, **extra, "delta": delta,
                                            "logprobs": choice.get("logprobs"), "finish_reason": None}]})
    for choice in _choices(response):
        chunks.append({**head, "choices": [{"index": choice.get("index", 0), **_no_results(choice), "delta": {},
                                            "logprobs": None, "finish_reason": choice.get("finish_reason")}]})
    chunks.append({**head, "choices": [], "usage": response.get("usage")})
    return chunks


def _deltas(message: Mapping[str, Any]) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """A message as a provider streams it: a text opens with the role and empty content, then the
    whole content; tool calls or a refusal come in one delta with the role. An empty
    `annotations` list is never streamed."""
    role = message.get("role", "assistant")
    body = {k: copy.deepcopy(v) for k, v in message.items() if k != "role" and not (k == "annotations" and v == [])}
    if isinstance(body.get("content"), str) and not body.get("tool_calls"):
        if body.get("refusal") is None:
            body.pop("refusal", None)
        return {"role": role, "content": "", "refusal": None}, body
    for i, call in enumerate(body.get("tool_calls") or []):
        call["index"] = i
    return None, {"role": role, **body}


def _no_results(choice: Mapping[str, Any]) -> dict[str, Any]:
    """Azure's empty filter results on the chunks around a filtered choice's content."""
    return {"content_filter_results": {}} if "content_filter_results" in choice else {}


def completion_of(response: dict[str, Any], endpoint: str, *, request_id: str | None = None) -> Completion:
    """The gateway's view of a provider's answer, carrying the answer itself as `raw`: the text is
    the first choice's (what the semantic cache keeps of a plain answer)."""
    first = (_choices(response) or [{}])[0]
    content = (first.get("message") or {}).get("content")
    return Completion(content=content if isinstance(content, str) else "", finish_reason=finish_of(response),
                      model=str(response.get("model") or ""), usage=usage_of(response) or Usage(),
                      endpoint=endpoint, raw=response, request_id=request_id)


def text_response(content: str, finish_reason: str, model: str, usage: Mapping[str, Any], *, created: int,
                  system_fingerprint: str | None = None) -> dict[str, Any]:
    """A chat.completion around a text answer (a semantic-cache hit, which keeps only the text and
    the answer's `created`, `system_fingerprint` and usage with its details)."""
    return {"object": "chat.completion", "created": created, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content, "refusal": None,
                                                 "annotations": []},
                         "logprobs": None, "finish_reason": finish_reason}],
            "usage": dict(usage), **({"system_fingerprint": system_fingerprint} if system_fingerprint else {})}


def semantic_view(body: Mapping[str, Any]) -> tuple[list[tuple[str, str]], dict[str, Any]] | None:
    """The (role, text) messages and sampling parameters of a plain single-turn text request, the
    only kind the semantic cache may answer; None for anything else (tools, formats, n > 1, ...)."""
    if set(body) - SEMANTIC_FIELDS - NOT_IN_CACHE_KEY or body.get("n") not in (None, 1):
        return None
    messages: list[tuple[str, str]] = []
    for message in body.get("messages") or []:
        if not isinstance(message, dict) or set(message) - {"role", "content"}:
            return None
        content = message.get("content")
        if isinstance(content, list) and all(isinstance(p, dict) and p.get("type") == "text" for p in content):
            content = "".join(str(p.get("text", "")) for p in content)
        if not isinstance(content, str) or not content:
            return None
        role = "system" if message.get("role") == "developer" else str(message.get("role"))
        messages.append((role, content))
    params = {k: v for k, v in body.items() if k in SEMANTIC_FIELDS and k != "messages"}
    return messages, params


def _choices(payload: Mapping[str, Any]) -> list[dict[str, Any]]:
    choices = payload.get("choices")
    return [c for c in choices if isinstance(c, dict)] if isinstance(choices, list) else []
