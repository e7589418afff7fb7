"""What a chat prompt bills: OpenAI's per-message recipe, extended to tools, tool calls and images."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel

from tools.simulator.schemas import ChatMessage, ChatRequest, FunctionDefinition, ImagePart, ImageURL
from tools.simulator.text import encode, stable_hash

# OpenAI's documented chat framing for gpt-4o-family models (num_tokens_from_messages).
TOKENS_PER_MESSAGE = 3
TOKENS_PER_REPLY = 3
TOKENS_PER_NAME = 1
# Our recipe for what the cookbook leaves out (see README.md, "Prompt tokens"); constants a
# gateway can add to stay above the bill.
TOKENS_PER_TOOL = 7
TOKENS_PER_TOOL_LIST = 12
TOKENS_PER_TOOL_CALL = 3
# OpenAI's image recipe: 85 at detail "low"; else 85 + 170 per 512-px tile. The simulator never
# fetches the image, so it bills every other image as a 1024x1024 one: 4 tiles.
IMAGE_TOKENS_LOW = 85
IMAGE_TOKENS_HIGH = 85 + 170 * 4

# Documented parameters of sampling, length, output shape, routing or storage that the simulator
# has no field for: never prompt text. Every other member without a field is billed as prompt text.
PARAMETERS = frozenset({
    "temperature", "top_p", "presence_penalty", "frequency_penalty", "logit_bias", "reasoning_effort", "verbosity",
    "modalities", "user", "safety_identifier", "prompt_cache_key", "metadata", "store", "service_tier",
})

# The prompt is a list of token ids; framing and image tokens get negative stand-ins, which only
# the prefix cache ever looks at.
_FRAME = -1


def prompt_tokens(request: ChatRequest) -> list[int]:
    """The prompt as the model sees it: tool definitions first (they live in the system prompt,
    so a change in them changes every cached prefix), then each message, then the reply priming."""
    stream: list[int] = []
    if request.tools:
        for tool in request.tools:
            stream += encode(tool_definition_text(tool.function)) + [_FRAME] * TOKENS_PER_TOOL
            stream += unknown_member_tokens(tool) + unknown_member_tokens(tool.function)
        stream += [_FRAME] * TOKENS_PER_TOOL_LIST
    if request.response_format is not None:
        stream += unknown_member_tokens(request.response_format)
        if request.response_format.json_schema is not None:
            # Structured outputs put the schema in the prompt too, billed like one tool; whatever
            # the format's type, since the member was sent.
            schema = request.response_format.json_schema.model_dump(by_alias=True, exclude_none=True)
            stream += encode(_canonical(schema)) + [_FRAME] * TOKENS_PER_TOOL
    stream += unknown_member_tokens(request, skip=PARAMETERS)
    for message in request.messages:
        stream += message_tokens(message)
    return stream + [_FRAME] * TOKENS_PER_REPLY


def message_tokens(message: ChatMessage) -> list[int]:
    """role + content + 3 (OpenAI's recipe); + name + 1; + each tool call's name, arguments and 3;
    + each image's fixed figure."""
    stream = encode(message.role) + encode(message.text) + [_FRAME] * TOKENS_PER_MESSAGE
    stream += unknown_member_tokens(message)
    for part in message.content if isinstance(message.content, list) else []:
        stream += unknown_member_tokens(part)
        if isinstance(part, ImagePart):
            stream += unknown_member_tokens(part.image_url)
    if message.name is not None:
        stream += encode(message.name) + [_FRAME] * TOKENS_PER_NAME
    for call in message.tool_calls or []:
        stream += tool_call_tokens(call.function.name, call.function.arguments)
        stream += unknown_member_tokens(call) + unknown_member_tokens(call.function)
    if message.function_call is not None:
        call_function = message.function_call
        stream += tool_call_tokens(call_function.name, call_function.arguments) + unknown_member_tokens(call_function)
    for image in message.images:
        stream += _image_tokens(image)
    return stream


def unknown_member_tokens(part: BaseModel, skip: frozenset[str] = frozenset()) -> list[int]:
    """The members of a part of the body that the simulator has no field for, billed as their
    canonical JSON in the prompt: what a provider that renders everything it is sent would bill,
    the worst case a gateway's estimate must cover."""
    unknown = {key: value for key, value in (part.model_extra or {}).items() if key not in skip}
    return encode(_canonical(unknown)) if unknown else []


def tool_call_tokens(name: str, arguments: str) -> list[int]:
    """A tool call, billed the same way in a prompt (replayed) and in a completion (generated)."""
    return encode(name) + encode(arguments) + [_FRAME] * TOKENS_PER_TOOL_CALL


def count_prompt_tokens(messages: Sequence[tuple[str, str]]) -> int:
    """Prompt tokens of plain (role, content) messages: sum(role + content + 3) + 3."""
    plain = ChatRequest(messages=[ChatMessage.model_validate({"role": r, "content": t}) for r, t in messages])
    return len(prompt_tokens(plain))


def tool_definition_text(function: FunctionDefinition) -> str:
    """The text a tool definition is billed as: its name, description and parameters, canonical JSON."""
    return _canonical(function.model_dump(include={"name", "description", "parameters"}, exclude_none=True))


def _canonical(value: dict[str, Any]) -> str:
    # Sorted keys: the bill must not depend on the order a client happened to write its keys in.
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _image_tokens(image: ImageURL) -> list[int]:
    # A stand-in id per image, so two different images do not share a cached prefix.
    stand_in = -2 - stable_hash(image.url) % (1 << 60)
    return [stand_in] * (IMAGE_TOKENS_LOW if image.detail == "low" else IMAGE_TOKENS_HIGH)
