"""Request and response shapes of the HTTP and queue contracts (docs/api.md, docs/queue.md), validated by pydantic."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Role = Literal["system", "user", "assistant"]


class _Strict(BaseModel):
    """Unknown fields are an error that names the field, so typos never pass silently."""

    model_config = ConfigDict(extra="forbid")


class ChatMessage(_Strict):
    role: Role
    content: Annotated[str, Field(min_length=1, max_length=32_000)]


# A model or a model route (docs/routing.md); absent: the best-priority endpoint's model.
ModelName = Annotated[str | None, Field(min_length=1, max_length=256)]


class SummarizeRequest(_Strict):
    model: ModelName = None
    text: Annotated[str, Field(min_length=1, max_length=100_000)]
    style: Literal["concise", "detailed", "bullets"] = "concise"
    max_words: Annotated[int, Field(ge=1, le=2000, strict=True)] = 150


class ChatRequest(_Strict):
    model: ModelName = None
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
    # The submitter's W3C trace context: the job's span joins its trace (an invalid one is ignored).
    traceparent: str | None = None


JobStatus = Literal["queued", "running", "succeeded", "failed"]


class JobView(BaseModel):
    """What `GET /api/v1/jobs/{job_id}` returns."""

    job_id: str
    status: JobStatus
    result: dict[str, Any] | None = None
    error: str | None = None


# --- OpenAI / Azure OpenAI compatible API -------------------------------------------------------
# Only what the gateway itself reads is validated; every other field is kept and forwarded as
# written (extra="allow"), so what a provider accepts today or adds tomorrow is not refused here.

class OpenAIMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Annotated[str, Field(min_length=1)]


class OpenAIChatRequest(BaseModel):
    """A chat completions body: the model's limits, not a schema, bound its size (openai_path)."""

    model_config = ConfigDict(extra="allow")

    model: Annotated[str | None, Field(max_length=256)] = None
    messages: Annotated[list[OpenAIMessage], Field(min_length=1)]
    max_tokens: Annotated[int | None, Field(ge=1, strict=True)] = None
    max_completion_tokens: Annotated[int | None, Field(ge=1, strict=True)] = None
    n: Annotated[int | None, Field(ge=1, le=128, strict=True)] = None
    stream: bool | None = None
    stream_options: dict[str, Any] | None = None

    @property
    def include_usage(self) -> bool:
        return bool((self.stream_options or {}).get("include_usage"))


class OpenAIEmbeddingsRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: Annotated[str | None, Field(max_length=256)] = None
    input: str | list[str] | list[int] | list[list[int]]
    encoding_format: Literal["float", "base64"] | None = None

    @field_validator("input")
    @classmethod
    def _not_empty(cls, value: str | list[Any]) -> str | list[Any]:
        if isinstance(value, list) and not value:
            raise ValueError("input must not be empty")
        return value
