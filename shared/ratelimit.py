"""Rate limits (RPM/TPM per key) behind one port; the Cosmos-backed limiter is issue #4's.

Until it lands the request path calls `NoRateLimit`, which admits everything and says so in its
name: the seam is real (every request passes through `admit`), the limit is not there yet.
"""

from __future__ import annotations

from typing import Protocol

from shared.auth import Principal


class RateLimiter(Protocol):
    async def admit(self, principal: Principal, estimated_tokens: int) -> None:
        """Raise TooManyRequests (with Retry-After) when the key is over its RPM or TPM."""


class NoRateLimit:
    async def admit(self, principal: Principal, estimated_tokens: int) -> None:
        return None
