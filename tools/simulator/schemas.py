"""Request bodies the simulator accepts, refused with a 400 where the real API would refuse them."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Self, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)

from tools.simulator.config import MAX_EMBEDDING_DIMS
from tools.simulator.embeddings import EncodingFormat


class InvalidRequest(ValueError):
    """A body the API would reject; the message names the offending field."""


class _Body(BaseModel):
    # Strict: "5" is not a number and true is not 1, as for the real service. Unknown fields are
    # accepted; they do not change the answer (those of a chat body are billed: _Prompted).
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)


class _Prompted(_Body):
    # A part of a chat body: members it has no field for are kept (`model_extra`), since a
    # provider may put them in the prompt, and the simulator bills them so (prompt.py).
    model_config = ConfigDict(extra="allow")


class TextPart(_Prompted):
    type: Literal["text"]
    text: str


class ImageURL(_Prompted):
    url: str
    detail: Literal["auto", "low", "high"] | None = None


class ImagePart(_Prompted):
    # Billed at a fixed figure (prompt.py): the simulator never fetches or decodes the image.
    type: Literal["image_url"]
    image_url: ImageURL


class RefusalPart(_Prompted):
    # What an assistant message replayed from an earlier refusal carries.
    type: Literal["refusal"]
    refusal: str


ContentPart = Annotated[TextPart | ImagePart | RefusalPart, Field(discriminator="type")]


class FunctionCall(_Prompted):
    name: str
    arguments: str


class ToolCall(_Prompted):
    id: str
    type: Literal["function"]
    function: FunctionCall


class ChatMessage(_Prompted):
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[ContentPart] | None = None
    name: str | None = None
    tool_calls: list[ToolCall] | None = None
    function_call: FunctionCall | None = None  # the legacy form of one tool call
    tool_call_id: str | None = None

    @property
    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(
            part.text if isinstance(part, TextPart) else part.refusal
            for part in self.content
            if not isinstance(part, ImagePart)
        )

    @property
    def images(self) -> list[ImageURL]:
        if not isinstance(self.content, list):
            return []
        return [part.image_url for part in self.content if isinstance(part, ImagePart)]


class FunctionDefinition(_Prompted):
    name: Annotated[str, Field(pattern=r"^[a-zA-Z0-9_-]{1,64}$")]
    description: str | None = None
    # The JSON schema of the arguments, kept as sent: it is billed and instantiated as written.
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class Tool(_Prompted):
    # Only function tools: the simulator has no grammar engine for "custom" tools.
    type: Literal["function"]
    function: FunctionDefinition


class NamedFunction(_Body):
    name: str


class NamedToolChoice(_Body):
    type: Literal["function"]
    function: NamedFunction


class AllowedTools(_Body):
    mode: Literal["auto", "required"]
    tools: list[NamedToolChoice] = Field(min_length=1)


class AllowedToolsChoice(_Body):
    type: Literal["allowed_tools"]
    allowed_tools: AllowedTools


ToolChoice = Literal["none", "auto", "required"] | NamedToolChoice | AllowedToolsChoice


class JsonSchemaFormat(_Prompted):
    name: Annotated[str, Field(pattern=r"^[a-zA-Z0-9_-]{1,64}$")]
    description: str | None = None
    # "schema" would shadow a BaseModel method, hence the alias.
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    strict: bool | None = None


class ResponseFormat(_Prompted):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaFormat | None = None

    @model_validator(mode="after")
    def _schema_given(self) -> Self:
        if self.type == "json_schema" and self.json_schema is None:
            raise ValueError("json_schema is required when type is json_schema")
        return self


class StreamOptions(_Body):
    include_usage: bool = False


class ChatRequest(_Prompted):
    model: str | None = None
    messages: list[ChatMessage] = Field(min_length=1)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    n: int | None = Field(default=None, ge=1, le=128)
    seed: int | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    tools: list[Tool] | None = Field(default=None, max_length=128)
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormat | None = None
    stop: str | Annotated[list[str], Field(max_length=4)] | None = None

    @property
    def token_cap(self) -> int | None:
        caps = [cap for cap in (self.max_tokens, self.max_completion_tokens) if cap is not None]
        return min(caps) if caps else None

    @property
    def include_usage(self) -> bool:
        return self.stream_options is not None and self.stream_options.include_usage

    @property
    def stops(self) -> list[str]:
        stops = [self.stop] if isinstance(self.stop, str) else list(self.stop or [])
        return [stop for stop in stops if stop]


NonEmptyText = Annotated[str, Field(min_length=1)]


TokenIds = Annotated[list[Annotated[int, Field(ge=0)]], Field(min_length=1)]


class EmbeddingRequest(_Body):
    model: str | None = None
    # Text, texts, token ids, or lists of token ids, as the API takes them (at most 2048 inputs).
    input: (
        NonEmptyText
        | Annotated[list[NonEmptyText], Field(min_length=1, max_length=2048)]
        | TokenIds
        | Annotated[list[TokenIds], Field(min_length=1, max_length=2048)]
    )
    dimensions: int | None = Field(default=None, ge=1, le=MAX_EMBEDDING_DIMS)
    encoding_format: EncodingFormat | None = None

    @field_validator("input", mode="wrap")
    @classmethod
    def _one_message(cls, value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        # Four forms fail four ways; one sentence naming them all is what a client can act on.
        try:
            return handler(value)
        except ValidationError:
            raise ValueError(
                "must be a non-empty string, a list of non-empty strings, a list of token ids (integers >= 0),"
                " or a list of such lists, with at most 2048 inputs"
            ) from None

    @property
    def inputs(self) -> list[str | list[int]]:
        """Each input: a text, or the token ids of one."""
        if isinstance(self.input, str):
            return [self.input]
        if all(isinstance(item, int) for item in self.input):
            return [[item for item in self.input if isinstance(item, int)]]
        return [item for item in self.input if not isinstance(item, int)]


BodyT = TypeVar("BodyT", bound=BaseModel)

_TYPE_TAGS = frozenset({"str", "int", "float", "bool", "list", "dict", "none"})


def _is_union_tag(part: str | int) -> bool:
    # pydantic names a union's forms in the error location ("constrained-str", "list[int]",
    # "NamedToolChoice"); field names here are lower-case identifiers, list indexes are ints.
    return isinstance(part, str) and (part in _TYPE_TAGS or "[" in part or "-" in part or part[:1].isupper())


def parse(model: type[BodyT], raw: bytes) -> BodyT:
    """Validate a JSON body, turning the most telling error into a message a client can act on."""
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        if errors[0]["type"] == "json_invalid":
            raise InvalidRequest("the body is not valid JSON") from None
        # A value matching no form of a union fails once per form; the form it got furthest into
        # (the deepest error) says best what is wrong, e.g. an unknown content part type.
        error = max(errors, key=lambda e: len(e["loc"]))
        where = ".".join(str(part) for part in error["loc"] if not _is_union_tag(part)) or "body"
        message = error["msg"].removeprefix("Value error, ")
        raise InvalidRequest(f"{where}: {message}") from None
