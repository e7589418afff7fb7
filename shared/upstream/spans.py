"""One CLIENT span per model attempt, with the GenAI attributes of semantic-conventions v1.41.

The resilience policy opens an `Attempt` around each call (shared/upstream/resilience/policy.py); a streamed
attempt is held open past the policy by attempts.held_stream and ended when the stream ends, so its
span carries the final usage chunk. What an answer says (model, id, finish reasons, usage) is read
from either shape the layers return: the provider's JSON (the pass-through) or Semantic Kernel's
message contents. The GenAI client metrics are recorded when an attempt ends.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from shared.observability import names as n
from shared.observability import tracing

if TYPE_CHECKING:
    from shared.upstream.endpoints import Endpoint

T = TypeVar("T")
_CURRENT: ContextVar[Attempt | None] = ContextVar("aigw_attempt", default=None)


class Attempt:
    """One model attempt: its span (None when telemetry is off) and what its answer reported."""

    __slots__ = ("attributes", "ended", "first_chunk_s", "held", "model", "span", "started", "tokens")

    def __init__(self, span: Any, attributes: dict[str, Any], model: str) -> None:
        self.span = span
        self.model = model  # the endpoint's model group (an embedding deployment's own name)
        self.attributes = attributes  # the metric dimensions: operation, provider, model, address
        self.started = time.perf_counter()
        self.first_chunk_s: float | None = None
        self.held = False
        self.ended = False
        self.tokens: dict[str, int] = {}  # the latest usage reported: a stream's final chunk wins

    def hold(self) -> Attempt:
        """A streamed attempt: it outlives the policy's call and is ended by whoever reads the stream."""
        self.held = True
        if self.span is not None:
            self.span.set_attribute(n.GEN_AI_REQUEST_STREAM, True)
        return self

    def observe(self, item: object) -> None:
        """Facts of an answer or of one chunk; the first chunk with content sets time to first chunk."""
        record = tracing.current()
        keep_text = record is not None and record.log_content
        if self.span is None and not keep_text:
            return  # telemetry off: nothing to read
        facts = _facts(item)
        text = facts.pop("text", "")
        if self.held and self.first_chunk_s is None and text:
            self.first_chunk_s = time.perf_counter() - self.started
        if keep_text and text and record is not None:
            record.answer.append(str(text))
        for name in (n.GEN_AI_USAGE_INPUT_TOKENS, n.GEN_AI_USAGE_OUTPUT_TOKENS):
            if name in facts:
                self.tokens[name] = facts[name]
        if self.span is not None and facts:
            self.span.set_attributes(facts)

    def end(self, error: BaseException | None = None) -> None:
        if self.ended:
            return
        self.ended = True
        record = tracing.current()
        if error is None and record is not None:
            record.endpoint = str(self.attributes.get(n.ENDPOINT, ""))
            record.model = record.model or self.model  # the gateway names it; embeddings do not pass there
        if self.span is None:
            return
        span = self.span
        dims = dict(self.attributes)
        if error is not None:
            from opentelemetry.trace import Status, StatusCode  # noqa: PLC0415

            dims[n.ERROR_TYPE] = type(error).__name__
            span.set_attribute(n.ERROR_TYPE, type(error).__name__)
            span.set_status(Status(StatusCode.ERROR))  # no description: an exception's text stays out
        if self.first_chunk_s is not None:
            span.set_attribute(n.TIME_TO_FIRST_CHUNK_S, round(self.first_chunk_s, 4))
        inst = tracing.instruments()
        if inst is not None:
            inst.operation_duration.record(time.perf_counter() - self.started, dims)
            if self.first_chunk_s is not None:
                inst.time_to_first_chunk.record(self.first_chunk_s, dims)
            for kind, name in (("input", n.GEN_AI_USAGE_INPUT_TOKENS), ("output", n.GEN_AI_USAGE_OUTPUT_TOKENS)):
                if name in self.tokens:
                    inst.token_usage.record(self.tokens[name], {**dims, n.GEN_AI_TOKEN_TYPE: kind})
        span.end()


def current() -> Attempt | None:
    """The attempt running now (within the policy's call of it)."""
    return _CURRENT.get()


async def attempted(endpoint: Endpoint, number: int, wait_s: float, breaker: str,
                    call: Callable[[], Awaitable[T]]) -> T:
    """`call` as one attempt on `endpoint`: its span is the current span while it runs, so the
    SDK's HTTP request (and its injected traceparent) is its child."""
    attempt = _start(endpoint, number, wait_s, breaker)
    token = _CURRENT.set(attempt)
    try:
        if attempt.span is None:
            result = await call()
        else:
            from opentelemetry import trace  # noqa: PLC0415

            with trace.use_span(attempt.span, end_on_exit=False):
                result = await call()
    except BaseException as exc:
        attempt.end(exc)
        raise
    finally:
        _CURRENT.reset(token)
    if not attempt.held:
        attempt.observe(result)
        attempt.end()
    return result


def _start(endpoint: Endpoint, number: int, wait_s: float, breaker: str) -> Attempt:
    if not tracing.enabled():
        return Attempt(None, {n.ENDPOINT: endpoint.name}, endpoint.config.model)
    from opentelemetry import trace  # noqa: PLC0415

    config = endpoint.config
    operation = "embeddings" if endpoint.name.endswith("/embeddings") else "chat"
    model = endpoint.upstream_model
    dims = {
        n.GEN_AI_OPERATION_NAME: operation,
        n.GEN_AI_PROVIDER_NAME: n.PROVIDER_AZURE_OPENAI if config.kind == "azure_openai" else n.PROVIDER_OPENAI,
        n.GEN_AI_REQUEST_MODEL: model,
        n.SERVER_ADDRESS: urlsplit(config.endpoint).hostname or "",
        n.ENDPOINT: endpoint.name,
    }
    # Endpoint settings name no region: an endpoint is one deployment in one region, so its name stands in.
    attributes = {**dims, n.REGION: endpoint.name, n.ATTEMPT: number,
                  n.BREAKER_STATE: breaker, n.RETRY_WAIT_S: round(wait_s, 3), n.GEN_AI_REQUEST_STREAM: False}
    span = tracing.tracer().start_span(f"{operation} {model}", kind=trace.SpanKind.CLIENT,
                                               attributes=attributes)
    return Attempt(span, dims, config.model)


def _facts(item: object) -> dict[str, Any]:
    """GenAI attributes (and the text, under "text") of a JSON answer/chunk or SK message content."""
    if isinstance(item, tuple | list):
        out: dict[str, Any] = {}
        for part in item:
            if isinstance(part, dict | list) or hasattr(part, "metadata"):
                facts = _facts(part)
                text = out.get("text", "") + facts.pop("text", "")
                out.update(facts)
                if text:
                    out["text"] = text
        return out
    if isinstance(item, dict):
        return _json_facts(item)
    if hasattr(item, "metadata"):
        return _sk_facts(item)
    return {}


def _json_facts(answer: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if isinstance(answer.get("model"), str) and answer["model"]:
        out[n.GEN_AI_RESPONSE_MODEL] = answer["model"]
    if isinstance(answer.get("id"), str) and answer["id"]:
        out[n.GEN_AI_RESPONSE_ID] = answer["id"]
    found = answer.get("choices")
    choices: list[Any] = found if isinstance(found, list) else []
    reasons = [c["finish_reason"] for c in choices if isinstance(c, dict) and isinstance(c.get("finish_reason"), str)]
    if reasons:
        out[n.GEN_AI_RESPONSE_FINISH_REASONS] = reasons
    text = "".join(str(((c.get("delta") or c.get("message") or {}).get("content")) or "")
                   for c in choices if isinstance(c, dict))
    if text:
        out["text"] = text
    usage = answer.get("usage")
    if isinstance(usage, dict):
        out.update(_usage_facts(usage.get("prompt_tokens"), usage.get("completion_tokens"),
                                (usage.get("prompt_tokens_details") or {}).get("cached_tokens"),
                                (usage.get("completion_tokens_details") or {}).get("reasoning_tokens")))
    return out


def _sk_facts(content: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    metadata = content.metadata or {}
    if isinstance(metadata.get("id"), str):
        out[n.GEN_AI_RESPONSE_ID] = metadata["id"]
    if getattr(content, "ai_model_id", None):
        out[n.GEN_AI_RESPONSE_MODEL] = str(content.ai_model_id)
    finish = getattr(content, "finish_reason", None)
    if finish is not None:
        out[n.GEN_AI_RESPONSE_FINISH_REASONS] = [str(getattr(finish, "value", finish))]
    if getattr(content, "content", None):
        out["text"] = str(content.content)
    usage = metadata.get("usage")
    if usage is not None:
        prompt_details = getattr(usage, "prompt_tokens_details", None)
        completion_details = getattr(usage, "completion_tokens_details", None)
        out.update(_usage_facts(getattr(usage, "prompt_tokens", None), getattr(usage, "completion_tokens", None),
                                getattr(prompt_details, "cached_tokens", None),
                                getattr(completion_details, "reasoning_tokens", None)))
    return out


def _usage_facts(prompt: object, completion: object, cached: object, reasoning: object) -> dict[str, int]:
    out: dict[str, int] = {}
    for name, value in ((n.GEN_AI_USAGE_INPUT_TOKENS, prompt), (n.GEN_AI_USAGE_OUTPUT_TOKENS, completion),
                        (n.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS, cached),
                        (n.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS, reasoning)):
        if isinstance(value, int) and not isinstance(value, bool):
            out[name] = value
    return out


def retried(endpoint: str, previous: str) -> None:
    """An attempt after the first: a retry on `endpoint`, and a failover when it moved from `previous`."""
    inst = tracing.instruments()
    if inst is None:
        return
    inst.retries.add(1, {n.ENDPOINT: endpoint})
    if previous and previous != endpoint:
        inst.failovers.add(1, {n.ENDPOINT: previous})


def breaker_moved(endpoint: str, state: str) -> None:
    inst = tracing.instruments()
    if inst is not None:
        inst.breaker_transitions.add(1, {n.ENDPOINT: endpoint, n.BREAKER_STATE: state})


class AttemptSpans:
    """The resilience policy's events as spans and metrics (shared/upstream/resilience/events.py)."""

    async def attempt(self, endpoint: Endpoint, number: int, wait_s: float, breaker: str,
                      call: Callable[[], Awaitable[T]]) -> T:
        return await attempted(endpoint, number, wait_s, breaker, call)

    def retried(self, endpoint: str, previous: str) -> None:
        retried(endpoint, previous)

    def breaker_moved(self, endpoint: str, state: str) -> None:
        breaker_moved(endpoint, state)


ATTEMPT_SPANS = AttemptSpans()
