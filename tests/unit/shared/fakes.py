"""In-memory fakes behind the service ports, recording what the request path did to them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from shared.core.errors import AppError
from shared.core.metering import current_meter
from shared.core.models import ChatMessage, Usage
from shared.core.values import Completion, Delta, SamplingParams
from shared.identity.auth import Principal
from shared.state.budget import Estimate
from shared.state.cache import CacheKey
from shared.state.ratelimit import Allowance
from shared.upstream.prompts import render_summarize

USAGE = Usage(prompt_tokens=10, completion_tokens=5, total_tokens=15)


@dataclass
class FakeEngine:
    """Stands in for KernelEngine: answers, or fails with the given error after `fail_after` deltas."""

    answer: str = "a short answer"
    error: AppError | None = None
    fail_after: int | None = None  # None: fail before any content (when error is set)
    calls: int = 0
    default_model: str = "gpt-test"
    finish: str = "stop"

    def resolve_model(self, requested: str | None) -> str | None:
        return self.default_model if requested in (None, self.default_model, "chat") else None

    def long_after_s(self, model: str, work_tokens: int) -> float | None:
        return None  # the gateway's tests use no time limits

    async def chat(self, model: str, messages: list[ChatMessage], params: SamplingParams) -> Completion:
        self.calls += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.error is not None:
            raise self.error
        return Completion(self.answer, self.finish, model, USAGE, "primary")

    prompts: list[str] = field(default_factory=list)
    gate: asyncio.Event | None = None  # when set, a call waits for it (to cancel a caller mid-call)

    async def summarize(self, model: str, text: str, style: str, max_words: int, params: SamplingParams) -> Completion:
        self.prompts.append(render_summarize(text, style, max_words))
        return await self.chat(model, [], params)

    async def stream(self, model: str, messages: list[ChatMessage], params: SamplingParams) -> AsyncIterator[Delta]:
        self.calls += 1
        words = self.answer.split(" ")
        for i, word in enumerate(words):
            if self.gate is not None and i == 1:
                await self.gate.wait()
            if self.error is not None and (self.fail_after or 0) <= i:
                raise self.error
            yield Delta(content=word if i == 0 else " " + word, model=model)
        yield Delta(finish_reason="stop", model=model)
        yield Delta(usage=USAGE, model=model)


@dataclass
class FakeReservation:
    ledger: FakeBudget
    tokens: int
    renewals: int = 0

    async def settle(self, usage: Usage) -> None:
        self.ledger.events.append(("settle", usage.total_tokens))
        self.ledger.settled.append(usage)

    async def renew(self) -> None:
        self.renewals += 1


@dataclass
class FakeBudget:
    events: list[tuple[str, int]] = field(default_factory=list)
    estimates: list[Estimate] = field(default_factory=list)
    refusal: AppError | None = None  # when set, every reservation is refused with it (nothing held)
    settled: list[Usage] = field(default_factory=list)  # each settlement's usage, in order

    async def reserve(self, principal: Principal, model: str, estimate: Estimate) -> FakeReservation:
        if self.refusal is not None:
            raise self.refusal
        self.events.append(("reserve", estimate.tokens))
        self.estimates.append(estimate)
        return FakeReservation(self, estimate.tokens)


@dataclass
class FakeCache:
    """Both tiers: `entries` answers exact lookups; with `embedding_tokens` > 0 the fake has a
    semantic tier too (`similar_entries`), whose lookups embed, reporting that usage."""

    entries: dict[str, Completion] = field(default_factory=dict)
    similar_entries: dict[str, Completion] = field(default_factory=dict)
    expired: set[str] = field(default_factory=set)
    lookups: int = 0
    embedding_tokens: int = 0
    exact_tier: bool = True  # False: stores reach only the semantic tier

    def reads(self, principal: Principal) -> bool:
        return principal.limits.cache_ttl_s > 0

    def may_embed(self, principal: Principal, key: CacheKey) -> bool:
        return self.embedding_tokens > 0 and self.reads(principal)

    async def exact(self, principal: Principal, key: CacheKey, *, stale_ok: bool = False) -> Completion | None:
        self.lookups += 1
        if key.exact_id in self.expired and not stale_ok:
            return None
        return self.entries.get(key.exact_id)

    async def similar(self, principal: Principal, model: str, key: CacheKey) -> Completion | None:
        meter = current_meter()
        if self.embedding_tokens and meter is not None:
            meter.embedded(Usage(prompt_tokens=self.embedding_tokens, total_tokens=self.embedding_tokens))
        return self.similar_entries.get(key.exact_id)

    async def store(self, principal: Principal, model: str, key: CacheKey, completion: Completion) -> None:
        if self.exact_tier:
            self.entries[key.exact_id] = completion
        if self.embedding_tokens:
            self.similar_entries[key.exact_id] = completion


@dataclass
class CountingLimiter:
    admitted: list[int] = field(default_factory=list)
    refusal: AppError | None = None  # when set, every request is refused with it

    async def admit(self, principal: Principal, estimated_tokens: int) -> Allowance:
        if self.refusal is not None:
            raise self.refusal
        self.admitted.append(estimated_tokens)
        return Allowance(remaining_requests=99, remaining_tokens=1000 - estimated_tokens)
