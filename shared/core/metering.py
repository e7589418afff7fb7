"""What one request cost at the providers, attempt by attempt, so settlement charges what was billed.

A request's model calls can span several attempts (retries, failover) and end in many ways: the
provider's usage arrives, the client goes away, the stream is cut, the deadline passes. The meter
is told about each attempt by the routing layer and about the answer's content by the gateway; at
settlement `total()` is what the tenant is charged (docs/accounting.md):
- an attempt whose usage arrived: that usage;
- a streamed attempt that may have been processed but reported no usage (a 200 that broke, a
  timeout, the deadline, a client gone): the prompt as counted plus the completion tokens
  received so far, with each tool call's framing;
- a whole (non-streamed) attempt cut after the provider accepted it: its worst case, the prompt
  plus the completion cap x n, since the provider may finish and bill it and nothing says how much;
- an attempt refused with an error status (429, 5xx before any body): nothing, as providers bill it;
- embedding calls made for the request (the semantic cache's): their reported usage.
The meter of the running request is found through a context variable, so the layers below the
gateway (routing, embeddings) report to it without being handed it through Semantic Kernel.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

from shared.core.models import Usage
from shared.core.tokens import TOKENS_PER_TOOL_CALL, counter_for


@dataclass
class _Attempt:
    usage: Usage | None = None
    text: list[str] = field(default_factory=list)
    chunks: int = 0  # content pieces received: each came from at least one token
    calls: int = 0  # tool calls begun: each billed with its framing besides its name and arguments
    whole: bool = False  # a non-streamed answer cut unseen: charged its worst case

    def received(self, content: str, calls: int = 0) -> None:
        if content:
            self.text.append(content)
            self.chunks += 1
        self.calls += calls


@dataclass(eq=False)  # one request's meter, compared and hashed by identity (kept in sets)
class Meter:
    """The billable attempts and embedding calls of one request."""

    model: str
    prompt_tokens: int  # the prompt as counted for the estimate: never below what providers bill
    completion_cap: int = 0  # the completion tokens reserved (cap x n): a cut whole answer's charge
    # Asked for room for one more worst case before an attempt that follows a charged one (the
    # gateway reserves it); None: no budget to ask (every retry allowed).
    hold_more: Callable[[], Awaitable[bool]] | None = None
    _attempts: list[_Attempt] = field(default_factory=list)
    _current: _Attempt | None = None
    _embeddings: list[Usage] = field(default_factory=list)
    _covered: int = 0  # charged failed attempts whose worst case is held besides the reservation's
    # When the current whole (non-streamed) attempt was sent (monotonic): how long it has run.
    attempt_began: float | None = None

    def began(self) -> None:
        """A whole attempt is sent."""
        self.attempt_began = time.monotonic()

    def received(self, content: str, calls: int = 0) -> None:
        """Content of the answer being delivered (the current attempt), and tool calls it began."""
        self._open().received(content, calls)

    def reported(self, usage: Usage) -> None:
        """The provider's own usage for the current attempt."""
        self._open().usage = usage

    def attempt_failed(self, partial: str = "", *, billable: bool, calls: int = 0, whole: bool = False) -> None:
        """An attempt that did not deliver the answer: charged when the provider may have processed
        it; `whole`: a non-streamed one, of which nothing was seen."""
        attempt = self._current or _Attempt()
        self._current = None
        attempt.received(partial, calls)
        attempt.whole = whole
        if billable:
            self._attempts.append(attempt)

    async def before_retry(self, remaining_s: float, time_limit_s: float | None) -> bool:
        """Whether another attempt may follow: always after one that was not charged; after a
        charged one only when the deadline fits a whole attempt and the budget holds one more
        worst case (docs/accounting.md, "Time limits"). Never billed twice blindly."""
        if len(self._attempts) <= self._covered:
            return True
        if time_limit_s is not None and remaining_s < time_limit_s:
            return False
        if self.hold_more is not None and not await self.hold_more():
            return False
        self._covered = len(self._attempts)
        return True

    def embedded(self, usage: Usage) -> None:
        self._embeddings.append(usage)

    @property
    def embedding_usage(self) -> Usage:
        return _sum(self._embeddings)

    def total(self) -> Usage:
        """What the tenant is charged for everything this request caused."""
        attempts = [*self._attempts, *([self._current] if self._current else [])]
        return _sum([self._charge(a) for a in attempts] + self._embeddings)

    def _open(self) -> _Attempt:
        if self._current is None:
            self._current = _Attempt()
        return self._current

    def _charge(self, attempt: _Attempt) -> Usage:
        if attempt.usage is not None:
            return attempt.usage
        if attempt.whole:
            completion = self.completion_cap
        else:
            completion = (completion_tokens(self.model, "".join(attempt.text), attempt.chunks)
                          + attempt.calls * TOKENS_PER_TOOL_CALL)
        return Usage(prompt_tokens=self.prompt_tokens, completion_tokens=completion,
                     total_tokens=self.prompt_tokens + completion)


def completion_tokens(model: str, text: str, chunks: int = 0) -> int:
    """Tokens of a partial answer: the tokenizer's count, and never fewer than the pieces that came."""
    count: Callable[[str], int] = counter_for(model)
    return max(count(text) if text else 0, chunks)


def _sum(usages: list[Usage]) -> Usage:
    prompt = sum(u.prompt_tokens for u in usages)
    completion = sum(u.completion_tokens for u in usages)
    return Usage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion)


_CURRENT: ContextVar[Meter | None] = ContextVar("aigw_meter", default=None)


def current_meter() -> Meter | None:
    return _CURRENT.get()


@contextmanager
def metering(meter: Meter) -> Iterator[Meter]:
    """Make `meter` the one the layers below report to, within this block (and tasks it starts)."""
    token = _CURRENT.set(meter)
    try:
        yield meter
    finally:
        _CURRENT.reset(token)
