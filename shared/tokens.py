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


def canonical_json(value: object) -> str:
    """Sorted, compact JSON: the same request counts (and caches) the same however it was written."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def request_prompt_tokens(model: str, body: Mapping[str, Any]) -> int:
    """The prompt of an OpenAI chat completions body as it is sent: messages (text parts, names,
    tool calls, images), tool definitions and a json_schema response format. Never below the bill."""
    count = counter_for(model)
    total = REPLY_PRIMING
    for message in _dicts(body.get("messages")):
        total += count(str(message.get("role", ""))) + TOKENS_PER_MESSAGE + _content_tokens(count, message)
        if isinstance(message.get("name"), str):
            total += count(message["name"]) + TOKENS_PER_NAME
        for call in _dicts(message.get("tool_calls")):
            function = call.get("function") if isinstance(call.get("function"), dict) else call
            total += count(canonical_json(function)) + TOKENS_PER_TOOL_CALL
        if isinstance(message.get("function_call"), dict):
            total += count(canonical_json(message["function_call"])) + TOKENS_PER_TOOL_CALL
    tools = [*_dicts(body.get("tools")), *_dicts(body.get("functions"))]
    if tools:
        total += TOKENS_PER_TOOL_LIST + sum(count(canonical_json(tool)) + TOKENS_PER_TOOL for tool in tools)
    response_format = body.get("response_format")
    if isinstance(response_format, dict) and response_format.get("type") == "json_schema":
        total += count(canonical_json(response_format.get("json_schema"))) + TOKENS_PER_TOOL
    return total


def _content_tokens(count: Callable[[str], int], message: Mapping[str, Any]) -> int:
    content = message.get("content")
    if content is None:
        return 0
    if isinstance(content, str):
        return count(content)
    if not isinstance(content, list):
        return count(canonical_json(content))
    total = 0
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in ("text", "refusal") and isinstance(part.get(kind), str):
            total += count(part[kind]) + TOKENS_PER_PART
        elif kind == "image_url":
            total += TOKENS_PER_IMAGE
        else:  # audio, files, parts yet to come: their whole JSON, which no bill is seen to exceed
            total += count(canonical_json(part)) + TOKENS_PER_PART
    return total


def _dicts(value: object) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []
