"""Authentication: turns the credentials a caller sent into a Principal, or refuses with 401."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from shared.config import TenantConfig, TenantLimits, hash_api_key
from shared.errors import Unauthorized


@dataclass(frozen=True)
class Principal:
    """Who is calling: the tenant every counter, cache entry and job is scoped to."""

    tenant: str
    key_id: str
    roles: tuple[str, ...] = ("user",)
    limits: TenantLimits = field(default_factory=TenantLimits)

    @property
    def rate_key(self) -> str:
        """Rate limits count per key; key ids are unique within a tenant."""
        return f"{self.tenant}:{self.key_id}"


def presented_key(headers: Mapping[str, str]) -> str | None:
    """The key from `x-api-key`, `api-key` (Azure OpenAI clients) or `Authorization: Bearer`."""
    for name in ("x-api-key", "api-key"):
        value = headers.get(name)
        if value:
            return value.strip()
    auth = headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


class ApiKeyAuthenticator:
    """Looks keys up by their SHA-256 digest, so no plaintext key is ever held or compared."""

    def __init__(self, tenants: list[TenantConfig]) -> None:
        self._by_digest = {
            key.sha256: Principal(tenant.tenant, key.id, tuple(tenant.roles), tenant.limits)
            for tenant in tenants
            for key in tenant.keys
        }

    def authenticate(self, headers: Mapping[str, str]) -> Principal:
        key = presented_key(headers)
        if key is None:
            raise Unauthorized("Send an API key in the x-api-key or api-key header, or as a Bearer token.")
        principal = self._by_digest.get(hash_api_key(key))
        if principal is None:
            raise Unauthorized("The API key is not valid.")
        return principal

    def principal_for_tenant(self, tenant: str) -> Principal | None:
        """The principal a queue job runs as: producers with queue access are trusted per tenant."""
        for principal in self._by_digest.values():
            if principal.tenant == tenant:
                return Principal(tenant, "queue", principal.roles, principal.limits)
        return None
