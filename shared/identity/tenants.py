"""Where tenants and their keys are looked up: a port, so the Authenticator does not care whether
they come from the TENANTS setting or from the directory in Cosmos (shared/state/tenants.py),
read through a copy refreshed every TENANT_REFRESH_S (docs/admin.md)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import Protocol

from shared.core.settings import TenantConfig


class TenantDirectory(Protocol):
    async def by_key(self, sha256: str) -> tuple[TenantConfig, str] | None:
        """The tenant and key id of an API key's SHA-256 hex digest, or None."""
        ...

    async def by_entra(self, tid: str, kind: str, value: str) -> TenantConfig | None:
        """The tenant an Entra principal (`oid` or `client_id` within directory `tid`) belongs to."""
        ...

    async def by_name(self, tenant: str) -> TenantConfig | None:
        ...


class SettingsTenants:
    """The tenants of the TENANTS setting, indexed once: every lookup is a dictionary read."""

    def __init__(self, tenants: Iterable[TenantConfig]) -> None:
        listed = list(tenants)
        self._by_name = {t.tenant: t for t in listed}
        self._by_digest = {key.sha256: (t, key.id) for t in listed for key in t.keys}
        self._by_entra = {p.match_key: t for t in listed for p in t.entra}

    async def by_key(self, sha256: str) -> tuple[TenantConfig, str] | None:
        return self._by_digest.get(sha256)

    async def by_entra(self, tid: str, kind: str, value: str) -> TenantConfig | None:
        return self._by_entra.get((tid, kind, value))

    async def by_name(self, tenant: str) -> TenantConfig | None:
        return self._by_name.get(tenant)


class RefreshingTenants:
    """A directory read through a copy of it that is never older than `refresh_s` when a lookup is
    answered: the first lookup after that re-reads it (one read, however many lookups wait for it).
    So a change (a key revoked, a limit raised) is in force on every instance within `refresh_s`
    plus one read. A read that fails fails the lookup: a revoked key is never let in on an old copy."""

    def __init__(self, load: Callable[[], Awaitable[list[TenantConfig]]], refresh_s: float,
                 now: Callable[[], float], used: Callable[[str, str], None] | None = None) -> None:
        self._load = load
        self._refresh_s = refresh_s
        self._now = now  # monotonic seconds
        self._used = used  # told of every key that authenticates (its last-used day)
        self._copy: SettingsTenants | None = None
        self._read_at = 0.0
        self._lock = asyncio.Lock()

    async def current(self) -> SettingsTenants:
        if self._copy is None or self._now() - self._read_at >= self._refresh_s:
            async with self._lock:
                if self._copy is None or self._now() - self._read_at >= self._refresh_s:
                    started = self._now()  # the copy is as old as the moment its read began
                    self._copy = SettingsTenants(await self._load())
                    self._read_at = started
        return self._copy

    def expire(self) -> None:
        """Read again at the next lookup (this instance changed the directory itself)."""
        self._copy = None

    async def by_key(self, sha256: str) -> tuple[TenantConfig, str] | None:
        found = await (await self.current()).by_key(sha256)
        if found is not None and self._used is not None:
            self._used(found[0].tenant, found[1])
        return found

    async def by_entra(self, tid: str, kind: str, value: str) -> TenantConfig | None:
        return await (await self.current()).by_entra(tid, kind, value)

    async def by_name(self, tenant: str) -> TenantConfig | None:
        return await (await self.current()).by_name(tenant)
