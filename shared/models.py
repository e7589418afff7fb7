"""Request and response shapes of the HTTP and queue contracts (docs/api.md, docs/queue.md), validated by pydantic."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Role = Literal["system", "user", "assistant"]


class _Strict(BaseModel):
    """Unknown fields are an error that names the field, so typos never pass silently."""

    model_config = ConfigDict(extra="forbid")


class ChatMessage(_Strict):
    role: Role
    content: Annotated[str, Field(min_length=1, max_length=32_000)]


class SummarizeRequest(_Strict):
    text: Annotated[str, Field(min_length=1, max_length=100_000)]
    style: Literal["concise", "detailed", "bullets"] = "concise"
    max_words: Annotated[int, Field(ge=1, le=2000, strict=True)] = 150


class ChatRequest(_Strict):
    messages: Annotated[list[ChatMessage], Field(min_length=1, max_length=50)]
    temperature: Annotated[float, Field(ge=0, le=2, strict=True)] = 0.7  # strict: JSON true is not 1.0
    max_tokens: Annotated[int, Field(ge=1, le=4096, strict=True)] = 1000


class Usage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class SummarizeResponse(BaseModel):
    result: str
    model: str
    usage: Usage
    cached: bool
    stale: bool = False  # an expired cached answer, served because no model endpoint could answer
    correlation_id: str


class ChatResponse(BaseModel):
    content: str
    finish_reason: str
    model: str
    usage: Usage
    cached: bool
    stale: bool = False
    correlation_id: str


JobKind = Literal["summarize", "chat"]
JOB_INPUTS: dict[str, type[BaseModel]] = {"summarize": SummarizeRequest, "chat": ChatRequest}


class JobRequest(_Strict):
    """`POST /api/v1/jobs`: `input` is then validated as the body of the endpoint `kind` names."""

    kind: JobKind
    input: dict[str, Any]


class JobMessage(BaseModel):
    """A message on the jobs queue, from our API or straight from a producer."""

    model_config = ConfigDict(extra="ignore")

    job_id: Annotated[str | None, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$")] = None
    tenant: Annotated[str, Field(min_length=1, max_length=64)]
    kind: JobKind
    input: dict[str, Any]
    correlation_id: str | None = None


JobStatus = Literal["queued", "running", "succeeded", "failed"]


class JobView(BaseModel):
    """What `GET /api/v1/jobs/{job_id}` returns."""

    job_id: str
    status: JobStatus
    result: dict[str, Any] | None = None
    error: str | None = None


# --- OpenAI / Azure OpenAI compatible chat completions -------------------------------------------

class TextPart(_Strict):
    type: Literal["text"]
    text: str


class OpenAIMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")  # `name` and similar annotations change nothing here

    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[TextPart]

    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content)


# Parameters clients send with their default values; any other value is refused rather than ignored.
_NEUTRAL_EXTRAS: dict[str, tuple[Any, ...]] = {
    "n": (1, None),
    "logprobs": (False, None),
    "top_logprobs": (None, 0),
    "parallel_tool_calls": (None, True, False),
    "tools": (None, []),
    "tool_choice": (None, "none", "auto"),
    "functions": (None, []),
    "response_format": (None, {"type": "text"}),
    "store": (None, False),
    "metadata": (None, {}),
    "logit_bias": (None, {}),
    "service_tier": (None, "auto", "default"),
}


class OpenAIChatRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: Annotated[str | None, Field(max_length=256)] = None
    messages: Annotated[list[OpenAIMessage], Field(min_length=1, max_length=50)]
    temperature: Annotated[float | None, Field(ge=0, le=2)] = None
    top_p: Annotated[float | None, Field(ge=0, le=1)] = None
    max_tokens: Annotated[int | None, Field(ge=1, le=4096, strict=True)] = None
    max_completion_tokens: Annotated[int | None, Field(ge=1, le=4096, strict=True)] = None
    stop: str | list[str] | None = None
    presence_penalty: Annotated[float | None, Field(ge=-2, le=2)] = None
    frequency_penalty: Annotated[float | None, Field(ge=-2, le=2)] = None
    seed: int | None = None
    user: str | None = None
    stream: bool = False
    stream_options: dict[str, Any] | None = None

    @field_validator("messages")
    @classmethod
    def _content_bounds(cls, messages: list[OpenAIMessage]) -> list[OpenAIMessage]:
        for i, message in enumerate(messages):
            if not 1 <= len(message.text()) <= 32_000:
                raise ValueError(f"messages[{i}].content must be 1 to 32000 characters")
        return messages

    @model_validator(mode="after")
    def _refuse_unsupported(self) -> OpenAIChatRequest:
        for name, value in (self.model_extra or {}).items():
            if name not in _NEUTRAL_EXTRAS or value not in _NEUTRAL_EXTRAS[name]:
                raise ValueError(f"parameter {name!r} is not supported by this gateway")
        return self

    @property
    def include_usage(self) -> bool:
        return bool((self.stream_options or {}).get("include_usage"))
