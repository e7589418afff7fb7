"""The value types of the request path: sampling parameters, a completion, a streamed delta.

Kept apart from the kernel so the cache, the wire helpers and the adapters use them without
importing Semantic Kernel.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.core.models import Usage

# The response header that carries the provider's id of the request that answered to the client.
UPSTREAM_REQUEST_ID = "x-upstream-request-id"


@dataclass(frozen=True)
class SamplingParams:
    """The sampling parameters a request may set; part of what makes two requests the same."""

    max_tokens: int
    temperature: float | None = None
    top_p: float | None = None
    stop: tuple[str, ...] | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    seed: int | None = None



@dataclass(frozen=True)
class Completion:
    content: str
    finish_reason: str
    model: str
    usage: Usage
    endpoint: str
    # The provider's whole response as it came (the OpenAI-compatible pass-through), else None.
    raw: dict[str, Any] | None = None
    # The provider's id of the request that answered (never cached: a hit was answered by no one).
    request_id: str | None = None


@dataclass(frozen=True)
class Delta:
    """One piece of a streamed answer: content, the finish reason, or the final usage."""

    content: str = ""
    finish_reason: str | None = None
    usage: Usage | None = None
    model: str | None = None
    cached: bool = False  # replayed from the cache
    stale: bool = False  # an expired cache entry, served because no endpoint could answer
    raw: dict[str, Any] | None = None  # the provider's chunk as it came (the pass-through)
    request_id: str | None = None  # the provider's id of the request streaming it
    # The whole answer, when it came whole (a non-streamed call, a cache hit): then the only delta
    # of its answer that carries content.
    whole: Completion | None = None

    @property
    def answers(self) -> bool:
        """Carries some of the answer: once one such delta went out, a failure is a cut, not a refusal."""
        return bool(self.content) or self.whole is not None
