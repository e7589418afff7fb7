"""Where tenants and their keys are looked up: a port, so the Authenticator does not care whether
they come from the TENANTS setting (today) or from Cosmos (the tenants-at-run-time issue)."""

from __future__ import annotations

from collections.abc import Iterable
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
