"""Request bodies the simulator accepts, refused with a 400 where the real API would refuse them."""

from __future__ import annotations

from typing import Annotated, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tools.simulator.config import MAX_EMBEDDING_DIMS
from tools.simulator.embeddings import EncodingFormat


class InvalidRequest(ValueError):
    """A body the API would reject; the message names the offending field."""


class _Body(BaseModel):
    # Strict: "5" is not a number and true is not 1, as for the real service. Unknown fields
    # (temperature, user, tools...) are accepted and ignored, since they do not change the answer.
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)


class TextPart(_Body):
    type: Literal["text"]
    text: str


class ChatMessage(_Body):
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    # Only text parts: the simulator cannot pretend to see an image.
    content: str | list[TextPart] | None = None

    @property
    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content)


class StreamOptions(_Body):
    include_usage: bool = False


class ChatRequest(_Body):
    model: str | None = None
    messages: list[ChatMessage] = Field(min_length=1)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    # One choice only; refusing n > 1 beats silently returning fewer choices than asked for.
    n: Literal[1] | None = None

    @property
    def token_cap(self) -> int | None:
        caps = [cap for cap in (self.max_tokens, self.max_completion_tokens) if cap is not None]
        return min(caps) if caps else None

    @property
    def include_usage(self) -> bool:
        return self.stream_options is not None and self.stream_options.include_usage


NonEmptyText = Annotated[str, Field(min_length=1)]


class EmbeddingRequest(_Body):
    model: str | None = None
    # Token-id arrays are valid upstream but carry no words to hash, so they are refused here.
    input: NonEmptyText | Annotated[list[NonEmptyText], Field(min_length=1, max_length=2048)]
    dimensions: int | None = Field(default=None, ge=1, le=MAX_EMBEDDING_DIMS)
    encoding_format: EncodingFormat | None = None

    @property
    def texts(self) -> list[str]:
        return [self.input] if isinstance(self.input, str) else list(self.input)


BodyT = TypeVar("BodyT", bound=BaseModel)


def parse(model: type[BodyT], raw: bytes) -> BodyT:
    """Validate a JSON body, turning the first error into a message a client can act on."""
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        if error["type"] == "json_invalid":
            raise InvalidRequest("the body is not valid JSON") from None
        where = ".".join(str(part) for part in error["loc"]) or "body"
        message = error["msg"].removeprefix("Value error, ")
        raise InvalidRequest(f"{where}: {message}") from None
