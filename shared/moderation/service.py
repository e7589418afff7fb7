"""What the Azure safety clients share: their credential (the app's identity, or a key named in Key
Vault), their breaker and timeout, and the one error a failed call becomes."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from azure.core.credentials import AzureKeyCredential

from shared.observability import safety as telemetry
from shared.upstream.resilience.breaker import BreakerSettings, CircuitBreaker

if TYPE_CHECKING:
    from azure.core.credentials_async import AsyncTokenCredential

    from shared.core.clock import Clock
    from shared.identity.secrets import SecretProvider

T = TypeVar("T")


class SafetyServiceError(Exception):
    """A safety service did not answer in time, or answered with an error: the policy's `on_error` decides."""


class KeyOrIdentity:
    """The credential a client is built with: a key read from the secret provider before each call
    (so a rotated key takes effect within SECRET_TTL_S), else the app's identity (Entra ID tokens)."""

    def __init__(self, identity: AsyncTokenCredential | None, secrets: SecretProvider, key_secret: str | None) -> None:
        self.identity, self.secrets, self.key_secret = identity, secrets, key_secret
        self.key = AzureKeyCredential("unread") if key_secret else None

    def credential(self) -> AzureKeyCredential | AsyncTokenCredential:
        if self.key is not None:
            return self.key
        if self.identity is None:
            raise ValueError("a safety client needs a key secret or the app's identity")
        return self.identity

    async def refresh(self) -> None:
        if self.key is not None and self.key_secret is not None:
            self.key.update(await self.secrets.get(self.key_secret))


def client_options(timeout_s: float) -> dict[str, Any]:
    """The SDK clients' options: no retries of theirs (the breaker and the guard decide), our timeout,
    aiohttp without the environment's proxies (as the Cosmos client)."""
    from azure.core.pipeline.transport._aiohttp import AioHttpTransport  # noqa: PLC0415  loads aiohttp

    return {"retry_total": 0, "transport": AioHttpTransport(use_env_settings=False),
            "connection_timeout": timeout_s, "read_timeout": timeout_s}


def pieces(text: str, limit: int) -> list[str]:
    """`text` in pieces of at most `limit` characters, each cut after a line or a sentence where one
    falls in its second half, else at a space: a name or a phrase is seldom split between two calls."""
    out: list[str] = []
    while len(text) > limit:
        cut = max(text.rfind("\n", 0, limit), text.rfind(". ", 0, limit - 1)) + 1
        if cut <= limit // 2:
            cut = text.rfind(" ", 0, limit) + 1 or limit
        out.append(text[:cut])
        text = text[cut:]
    return [*out, text] if text else out


class Guarded:
    """One service's calls: its breaker (open: fail at once, no call), a timeout, a span each."""

    def __init__(self, service: str, clock: Clock, timeout_s: float, breaker: BreakerSettings | None = None) -> None:
        self.service = service
        self.timeout_s = timeout_s
        self.breaker = CircuitBreaker(service, breaker or BreakerSettings(), clock)

    async def call(self, operation: str, run: Callable[[], Awaitable[T]]) -> T:
        if not self.breaker.allow():
            raise SafetyServiceError(f"{self.service}: breaker open")
        with telemetry.span(operation, self.service):
            try:
                async with asyncio.timeout(self.timeout_s):
                    result = await run()
            except asyncio.CancelledError:
                self.breaker.release()  # no verdict on the service: a half-open probe is free again
                raise
            except Exception as exc:  # a timeout, the SDK's errors, an answer of another shape: never a 500
                self.breaker.record_failure()
                raise SafetyServiceError(f"{self.service}: {type(exc).__name__}") from exc
        self.breaker.record_success()
        return result
