"""The model-bound operations of the matrix, each as the reader its adapter is: what the user sees
(the text, whether it was a cache hit), read piece by piece so a test can leave or cancel mid-way."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from typing import Any

from shared.core.models import ChatMessage, ChatRequest, SummarizeRequest
from shared.core.values import Delta, SamplingParams
from shared.identity.auth import Principal
from shared.pipeline.exchange import CallContext
from shared.pipeline.gateway import Answer, ChatCall
from tests.unit.pipeline.provider import ANSWER, EMBEDDING_TOKENS, USAGE, Provider
from tests.unit.pipeline.rig import EMBEDDING, Rig

Piece = tuple[str, bool]  # content, and whether it came from the cache
MAX_TOKENS = 50
TENANT = Principal("tenant-a", "k1")  # a tenant with a cache (the default TTL)


@dataclass(frozen=True)
class Seen:
    """What the user got: the text and whether it was served from the cache."""

    text: str
    cached: bool


@dataclass(frozen=True)
class Operation:
    name: str
    read: Callable[[Rig, CallContext], AsyncGenerator[Piece, None]]
    path: str = "/chat/completions"  # where its model call goes at the provider
    streamed: bool = False
    cached: bool = True  # its answers are stored and served from the cache
    answer: str = ANSWER
    billed: int = USAGE.total_tokens  # what the provider reports for one call

    def __str__(self) -> str:
        return self.name


async def collect(op: Operation, rig: Rig, ctx: CallContext) -> Seen:
    pieces = [piece async for piece in op.read(rig, ctx)]
    # A hit is a hit in every piece; one piece flagged otherwise would tell the client a mixed story.
    return Seen("".join(text for text, _ in pieces), bool(pieces) and all(cached for _, cached in pieces))


def ctx(principal: Principal = TENANT) -> CallContext:
    return CallContext(principal, "cid-1")


async def under_way(provider: Provider, request: asyncio.Future[Any]) -> None:
    """Until the provider holds the (slow) call; a request that ends without reaching it fails the
    test here instead of hanging it."""
    reached = asyncio.ensure_future(provider.reached.wait())
    await asyncio.wait({reached, request}, return_when=asyncio.FIRST_COMPLETED)
    reached.cancel()
    assert provider.reached.is_set(), "the request ended before its model call was under way"


def chat_body(*, stream: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {"messages": [{"role": "user", "content": "hello there"}], "max_tokens": MAX_TOKENS}
    return {**body, "stream": True} if stream else body


def whole(answer: Answer) -> Piece:
    return answer.completion.content, answer.cached


async def deltas(stream: AsyncGenerator[Delta, None]) -> AsyncGenerator[Piece, None]:
    """The stream's pieces; closed with the reader (an adapter closes its generator when it leaves)."""
    async with contextlib.aclosing(stream) as opened:
        async for delta in opened:
            yield delta.content, delta.cached


async def openai_chat(rig: Rig, ctx: CallContext) -> AsyncGenerator[Piece, None]:
    yield whole(await rig.openai.complete(ctx, None, chat_body()))


async def openai_chat_stream(rig: Rig, ctx: CallContext) -> AsyncGenerator[Piece, None]:
    streaming = await rig.openai.stream(ctx, None, chat_body(stream=True))
    # Closed with this generator: closing the reader must close the gateway's stream at once.
    async with contextlib.aclosing(deltas(streaming.deltas)) as pieces:
        async for piece in pieces:
            yield piece


async def openai_embeddings(rig: Rig, ctx: CallContext) -> AsyncGenerator[Piece, None]:
    answer = await rig.openai.embeddings(ctx, EMBEDDING, {"input": "hello there"})
    raw = answer.completion.raw or {}
    yield f"{len(raw.get('data') or [])} vector(s)", answer.cached


def response_body(*, stream: bool = False) -> dict[str, Any]:
    return {"model": "gpt-4o-mini", "input": "hello there", "max_output_tokens": MAX_TOKENS,
            **({"stream": True} if stream else {})}


async def openai_responses(rig: Rig, ctx: CallContext) -> AsyncGenerator[Piece, None]:
    yield whole(await rig.responses.create(ctx, None, response_body()))


async def openai_responses_stream(rig: Rig, ctx: CallContext) -> AsyncGenerator[Piece, None]:
    streaming = await rig.responses.stream(ctx, None, response_body(stream=True))
    async with contextlib.aclosing(deltas(streaming.deltas)) as pieces:
        async for piece in pieces:
            if piece[0]:  # the events that carry no text (created, completed) show the user nothing
                yield piece


async def native_chat(rig: Rig, ctx: CallContext) -> AsyncGenerator[Piece, None]:
    served = await rig.gateway.chat(ctx, ChatRequest(messages=[ChatMessage(role="user", content="hello there")],
                                                     max_tokens=MAX_TOKENS))
    yield served.body.content, served.body.cached


def native_chat_stream(rig: Rig, ctx: CallContext) -> AsyncGenerator[Piece, None]:
    call = ChatCall(None, (ChatMessage(role="user", content="hello there"),), SamplingParams(max_tokens=MAX_TOKENS))
    return deltas(rig.gateway.stream(ctx, call))


async def summarize(rig: Rig, ctx: CallContext) -> AsyncGenerator[Piece, None]:
    served = await rig.gateway.summarize(ctx, SummarizeRequest(text="The harbour board met at noon.", max_words=20))
    yield served.body.result, served.body.cached


OPERATIONS = [
    Operation("openai.chat", openai_chat),
    Operation("openai.chat.stream", openai_chat_stream, streamed=True),
    Operation("openai.embeddings", openai_embeddings, path="/embeddings", cached=False, answer="1 vector(s)",
              billed=EMBEDDING_TOKENS),
    Operation("openai.responses", openai_responses, path="/responses", cached=False),
    Operation("openai.responses.stream", openai_responses_stream, path="/responses", streamed=True, cached=False),
    Operation("native.chat", native_chat),
    Operation("native.chat.stream", native_chat_stream, streamed=True),
    Operation("native.summarize", summarize),
]
