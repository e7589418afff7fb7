"""Token counts for budgets: the model's own tokenizer where we know it, else an upper bound."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any, Protocol, cast

# OpenAI's recipe for gpt-4o-family chat prompts (num_tokens_from_messages): each message bills its
# role, its content and 3 framing tokens; the reply's priming bills 3. Counting all of it keeps the
# estimate from undercounting what the model bills.
TOKENS_PER_MESSAGE = 3
REPLY_PRIMING = 3


# bpe-openai's Encoding.encode_ordinary refuses a text of a million characters or more, and a count
# above its chunk limit; the counter then falls back to UTF-8 bytes, as it always has.
_MAX_CHARS = 1_000_000
_CHUNK_LIMIT = 200_000


class _RustTokenizer(Protocol):
    def count(self, text: str) -> int: ...


@cache
def counter_for(model: str) -> Callable[[str], int]:
    """Exact counts for OpenAI models (vocabularies ship inside bpe-openai: nothing downloads).
    Any other model gets UTF-8 bytes, which no byte-level tokenizer can exceed."""
    tokenizer = _rust_tokenizer(model)
    if tokenizer is None:
        return _package_counter(model)
    counter = tokenizer

    def count(text: str) -> int:
        if len(text) >= _MAX_CHARS:
            return len(text.encode("utf-8"))
        tokens = counter.count(_sanitized(text))
        return tokens if tokens <= _CHUNK_LIMIT else len(text.encode("utf-8"))

    return count


def _rust_tokenizer(model: str) -> _RustTokenizer | None:
    """The model's tokenizer straight from bpe-openai's Rust extension, for the models it names
    (the gpt-4o and gpt-4.1 families). Importing the `bpe_openai` package instead builds three
    vocabularies in Python at import (0.5 s and their memory) that the Rust tokenizer never reads."""
    backend = _rust_backend()
    name = model.lower()
    if backend is None or name not in backend.supported_models():
        return None
    return cast(_RustTokenizer, backend.tokenizer_for_model(name))


@cache
def _rust_backend() -> Any:
    """bpe_openai._bindings, loaded from the installed package's folder without running the
    package's __init__; the package's own import, if anything makes it, finds the same module."""
    name = "bpe_openai._bindings"
    if name in sys.modules:
        return sys.modules[name]
    package = importlib.util.find_spec("bpe_openai")  # finds the package; does not import it
    for folder in (package.submodule_search_locations or []) if package else []:
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            path = Path(folder) / f"_bindings{suffix}"
            spec = importlib.util.spec_from_file_location(name, path) if path.is_file() else None
            if spec is not None and spec.loader is not None:
                module = importlib.util.module_from_spec(spec)
                spec.loader.exec_module(module)
                return module
    return None


def _package_counter(model: str) -> Callable[[str], int]:
    """Models the Rust extension does not name (gpt-4, gpt-3.5, embeddings): the package's own
    model table and Encoding."""
    import bpe_openai  # noqa: PLC0415  0.5 s: only for models the Rust extension does not name

    try:
        encoding = bpe_openai.get_encoding(bpe_openai.encoding_name_for_model(model))
    except (KeyError, ValueError, bpe_openai.UnsupportedModelError):
        return lambda text: len(text.encode("utf-8"))

    def count(text: str) -> int:
        try:
            return len(encoding.encode_ordinary(text))
        except ValueError:  # a text too long for the tokenizer (about a million characters)
            return len(text.encode("utf-8"))

    return count


def _sanitized(text: str) -> str:
    """Lone surrogates replaced, as bpe-openai's Encoding does before it encodes."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


def prompt_tokens(model: str, messages: Sequence[tuple[str, str]]) -> int:
    """What the model will bill for a prompt of these (role, content) messages."""
    count = counter_for(model)
    return sum(count(role) + count(content) + TOKENS_PER_MESSAGE for role, content in messages) + REPLY_PRIMING


# What an OpenAI-compatible body adds to the recipe above. OpenAI publishes no recipe for tools,
# images or schemas; these are over-estimates (docs/openai-compatibility.md): a tool is the tokens
# of its whole JSON plus a constant above the per-tool framing providers are seen to bill (7, and
# 12 per tool list), and an image is its largest high-detail bill (85 + 170 x 8 tiles).
TOKENS_PER_TOOL = 16
TOKENS_PER_TOOL_LIST = 16
TOKENS_PER_TOOL_CALL = 4
TOKENS_PER_NAME = 2
TOKENS_PER_PART = 1  # parts are billed joined; a part boundary can only save tokens, so 1 is slack
TOKENS_PER_IMAGE = 1445

# The members each object of a body is modelled by: counted by a recipe above, or known to bill
# nothing. Every other member is forwarded as written and may reach the prompt of a provider that
# renders what it does not know, so it is counted at one token per byte of its JSON: no token is
# shorter than a byte, whatever the provider makes of it (docs/openai-compatibility.md#accounting).
# Top-level parameters providers document as settings of sampling, length, output shape, routing or
# storage, never as prompt text (a value of the wrong type is refused before anything is billed).
NOT_PROMPT = frozenset({
    "model", "max_tokens", "max_completion_tokens", "n", "stream", "stream_options", "temperature", "top_p",
    "presence_penalty", "frequency_penalty", "seed", "logprobs", "top_logprobs", "logit_bias",
    "parallel_tool_calls", "reasoning_effort", "verbosity", "modalities", "user", "safety_identifier",
    "prompt_cache_key", "metadata", "store", "service_tier",
})
# stop, tool_choice, function_call, prediction (billed when rejected), audio, web_search_options:
# text or objects a provider may render or bill; at a byte a token they cost an honest client a few
# tokens and a hostile one all it sends.
_BODY = NOT_PROMPT | {"messages", "tools", "functions", "response_format"}
_MESSAGE = frozenset({"role", "content", "name", "tool_calls", "function_call"})  # ids, refusal: by bytes
_TEXT_PART = frozenset({"type", "text"})
_REFUSAL_PART = frozenset({"type", "refusal"})
_IMAGE_PART = frozenset({"type", "image_url"})
_IMAGE_URL = frozenset({"url", "detail"})
_TOOL = frozenset({"type", "function", "custom"})
_FUNCTION = frozenset({"name", "description", "parameters", "strict"})
_CALL = frozenset({"type", "function"})  # the call's id: by bytes
_CALL_FUNCTION = frozenset({"name", "arguments"})
_RESPONSE_FORMAT = frozenset({"type", "json_schema"})


def canonical_json(value: object) -> str:
    """Sorted, compact JSON: the same request counts (and caches) the same however it was written."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def request_prompt_tokens(model: str, body: Mapping[str, Any]) -> int:
    """The prompt of an OpenAI chat completions body as it is sent: messages (text parts, names,
    tool calls, images), tool definitions, a response format's schema, and every member without a
    recipe at a token per byte. Never below the bill."""
    count = counter_for(model)
    total = REPLY_PRIMING + _unmodelled(body, _BODY)
    messages = body.get("messages")
    for message in messages if isinstance(messages, list) else []:
        total += _message_tokens(count, message) if isinstance(message, dict) else _json_bytes(message)
    tools, functions = _items(body, "tools"), _items(body, "functions")
    if tools or functions:
        total += TOKENS_PER_TOOL_LIST + sum(_tool_tokens(count, tool) for tool in tools)
        total += sum(_function_tokens(count, function) for function in functions)
    response_format = body.get("response_format")
    if isinstance(response_format, dict):
        total += _unmodelled(response_format, _RESPONSE_FORMAT)
        if "json_schema" in response_format:
            # Structured outputs put the schema in the prompt; the same member under another type
            # has no recipe, and a provider may still read it.
            schema = response_format["json_schema"]
            modelled = response_format.get("type") == "json_schema"
            total += (count(canonical_json(schema)) if modelled else _json_bytes(schema)) + TOKENS_PER_TOOL
    elif response_format is not None:
        total += _json_bytes(response_format)
    return total


def _message_tokens(count: Callable[[str], int], message: Mapping[str, Any]) -> int:
    role = message.get("role", "")
    total = (count(role) if isinstance(role, str) else _json_bytes(role)) + TOKENS_PER_MESSAGE
    total += _content_tokens(count, message)
    total += _unmodelled(message, _MESSAGE)
    if isinstance(message.get("name"), str):
        total += count(message["name"]) + TOKENS_PER_NAME
    elif message.get("name") is not None:
        total += _json_bytes(message["name"])
    calls = message.get("tool_calls")
    for call in calls if isinstance(calls, list) else []:
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict):
            total += _unmodelled(call, _CALL) + _call_tokens(count, function)
        else:
            total += _json_bytes(call)
    if calls is not None and not isinstance(calls, list):
        total += _json_bytes(calls)
    function_call = message.get("function_call")
    if isinstance(function_call, dict):
        total += _call_tokens(count, function_call)
    elif function_call is not None:
        total += _json_bytes(function_call)
    return total


def _call_tokens(count: Callable[[str], int], function: Mapping[str, Any]) -> int:
    """A tool call's (or legacy function call's) name and arguments, as their JSON."""
    return count(canonical_json(_modelled(function, _CALL_FUNCTION))) + TOKENS_PER_TOOL_CALL + _unmodelled(
        function, _CALL_FUNCTION)


def _tool_tokens(count: Callable[[str], int], tool: object) -> int:
    """A tool: the tokens of its modelled JSON (one count, as a whole); its members without a
    recipe (and its function's) at a token per byte."""
    if not isinstance(tool, dict):
        return _json_bytes(tool)
    function, extra = tool.get("function"), 0
    if isinstance(function, dict) and not _FUNCTION.issuperset(function):
        extra = _unmodelled(function, _FUNCTION)
        tool = {**tool, "function": _modelled(function, _FUNCTION)}
    elif function is not None and not isinstance(function, dict):
        extra = _json_bytes(function) + TOKENS_PER_TOOL
        tool = {key: member for key, member in tool.items() if key != "function"}
    return count(canonical_json(_modelled(tool, _TOOL))) + TOKENS_PER_TOOL + extra + _unmodelled(tool, _TOOL)


def _function_tokens(count: Callable[[str], int], function: object) -> int:
    """A function definition (a tool's, or a legacy `functions` entry) as its modelled JSON."""
    if not isinstance(function, dict):
        return _json_bytes(function) + TOKENS_PER_TOOL
    modelled = count(canonical_json(_modelled(function, _FUNCTION)))
    return modelled + TOKENS_PER_TOOL + _unmodelled(function, _FUNCTION)


def _content_tokens(count: Callable[[str], int], message: Mapping[str, Any]) -> int:
    content = message.get("content")
    if content is None:
        return 0
    if isinstance(content, str):
        return count(content)
    if not isinstance(content, list):
        return _json_bytes(content)
    return sum(_part_tokens(count, part) for part in content)


def _part_tokens(count: Callable[[str], int], part: object) -> int:
    kind = part.get("type") if isinstance(part, dict) else None
    if not isinstance(part, dict):
        return _json_bytes(part)
    if kind in ("text", "refusal") and isinstance(part.get(kind), str):
        return count(part[kind]) + TOKENS_PER_PART + _unmodelled(part, _TEXT_PART if kind == "text" else _REFUSAL_PART)
    if kind == "image_url":
        image = part.get("image_url")
        image_extra = _unmodelled(image, _IMAGE_URL) if isinstance(image, dict) else _json_bytes(image)
        return TOKENS_PER_IMAGE + _unmodelled(part, _IMAGE_PART) + image_extra
    if kind in ("input_audio", "file"):  # their whole JSON, which no bill is seen to exceed
        return count(canonical_json(part)) + TOKENS_PER_PART
    return _json_bytes(part) + TOKENS_PER_PART  # a part without a recipe


def _unmodelled(value: Mapping[str, Any], modelled: frozenset[str]) -> int:
    """The members of `value` without a recipe, at a token per byte of their JSON; the common case
    (none) costs one subset test."""
    if modelled.issuperset(value):
        return 0
    return _json_bytes({key: member for key, member in value.items() if key not in modelled})


def _modelled(value: Mapping[str, Any], modelled: frozenset[str]) -> Mapping[str, Any]:
    """`value` without its members that have no recipe (itself when it has none)."""
    if modelled.issuperset(value):
        return value
    return {key: member for key, member in value.items() if key in modelled}


def _json_bytes(value: object) -> int:
    # Lone surrogates (JSON lets a client send them) as 3 bytes: the 3 of the U+FFFD a tokenizer sees.
    return len(canonical_json(value).encode("utf-8", "surrogatepass"))


def _items(body: Mapping[str, Any], key: str) -> list[object]:
    value = body.get(key)
    if value is None:
        return []
    return value if isinstance(value, list) else [value]
