"""Response cache behind one port; the Cosmos exact and semantic caches are issue #4's.

Keys are built from the tenant, the model and the whole normalized request, so the port already
receives everything a correct cache needs. `NoCache` always misses and stores nothing.
"""

from __future__ import annotations

from typing import Any, Protocol

from shared.auth import Principal
from shared.kernel import Completion


class ResponseCache(Protocol):
    async def lookup(self, principal: Principal, model: str, request: dict[str, Any]) -> Completion | None: ...

    async def store(self, principal: Principal, model: str, request: dict[str, Any],
                    completion: Completion) -> None: ...


class NoCache:
    async def lookup(self, principal: Principal, model: str, request: dict[str, Any]) -> Completion | None:
        return None

    async def store(self, principal: Principal, model: str, request: dict[str, Any],
                    completion: Completion) -> None:
        return None
