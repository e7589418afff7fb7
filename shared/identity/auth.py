"""Authentication: turns an API key or an Entra ID token into a Principal, or refuses with 401/403."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from shared.core.errors import Forbidden, Unauthorized
from shared.core.key_limits import KeyLimits, tighter
from shared.core.responses_policy import ResponsesPolicy
from shared.core.routes import Route
from shared.core.safety_policy import SafetyPolicy
from shared.core.settings import TenantConfig, TenantKey, TenantLimits, hash_api_key
from shared.identity.claims import EntraCaller, InvalidToken, looks_like_jwt

if TYPE_CHECKING:
    from shared.identity.entra import EntraValidator  # PyJWT and cryptography: built with the container
    from shared.identity.tenants import TenantDirectory

log = logging.getLogger(__name__)
REALM = "aigw"
ADMIN_ROLE = "admin"  # a tenant role: its keys may call the admin API and see /api/ready's details
ADMIN_APP_ROLE = "AI.Admin"  # the Entra app role that may call the admin API (docs/identity.md)


@dataclass(frozen=True)
class Principal:
    """Who is calling: the tenant every counter, cache entry and job is scoped to."""

    tenant: str
    key_id: str  # the key's id, or `entra:<oid>` for an Entra caller: never a secret or a token
    roles: tuple[str, ...] = ("user",)
    limits: TenantLimits = field(default_factory=TenantLimits)
    client_id: str | None = None  # an Entra caller's client application (azp/appid), for audit records
    log_content: bool = False  # the tenant's opt-in: its prompts and answers go in its audit records
    responses: ResponsesPolicy = field(default_factory=ResponsesPolicy)  # the tenant's Responses API policy
    routes: Mapping[str, Route] = field(default_factory=dict, hash=False, compare=False)  # the tenant's own
    safety: SafetyPolicy = field(default_factory=SafetyPolicy)  # what the guard stage screens and redacts
    # The key's own budget (docs/admin.md); its rpm and tpm are already folded into `limits`.
    key_limits: KeyLimits | None = None

    @property
    def rate_key(self) -> str:
        """Rate limits count per key (or Entra principal); ids are unique within a tenant."""
        return f"{self.tenant}:{self.key_id}"


@dataclass(frozen=True)
class Credential:
    kind: str  # "key" or "jwt"
    value: str


def presented_credential(headers: Mapping[str, str]) -> Credential | None:
    """`x-api-key`, `api-key` (Azure OpenAI clients) or `Authorization: Bearer`; a Bearer value
    that parses as a JWT is a token, anything else a key."""
    for name in ("x-api-key", "api-key"):
        value = headers.get(name)
        if value and value.strip():
            return Credential("key", value.strip())
    scheme, _, token = headers.get("authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return Credential("jwt" if looks_like_jwt(token) else "key", token)


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def challenge(error: str | None = None, description: str | None = None) -> dict[str, str]:
    """WWW-Authenticate naming both accepted schemes (RFC 9110 11.6.1; RFC 6750 for Bearer errors)."""
    bearer = "Bearer "
    if error:
        bearer += f"error={_quoted(error)}, "
        if description:
            bearer += f"error_description={_quoted(description)}, "
    bearer += f"realm={_quoted(REALM)}"
    return {"WWW-Authenticate": f'{bearer}, ApiKey realm={_quoted(REALM)}, header="x-api-key"'}


class Authenticator:
    """API keys by their SHA-256 digest (no plaintext key is held or compared); Entra tokens
    through `entra` when configured, mapped to a tenant by their `entra` principals. Tenants and
    keys are looked up in `tenants` (shared/identity/tenants.py)."""

    def __init__(self, tenants: TenantDirectory, entra: EntraValidator | None = None,
                 required_role: str = "AI.User", wall: Callable[[], float] = time.time) -> None:
        self._tenants = tenants
        self._entra = entra
        self._required_role = required_role
        self._wall = wall  # a key's expiry is a moment every instance agrees on

    async def authenticate(self, headers: Mapping[str, str]) -> Principal:
        credential = presented_credential(headers)
        if credential is None:
            raise Unauthorized("Send an API key in the x-api-key or api-key header, or a Bearer token.",
                               headers=challenge())
        if credential.kind == "jwt":
            return await self._entra_principal(credential.value)
        found = await self._tenants.by_key(hash_api_key(credential.value))
        if found is None:
            raise Unauthorized("The API key is not valid.", headers=challenge("invalid_token", "The key is not valid."))
        tenant, key_id = found
        key = next((k for k in tenant.keys if k.id == key_id), None)
        if key is not None and key.expires is not None and key.expires.timestamp() <= self._wall():
            raise Unauthorized("The API key has expired.", headers=challenge("invalid_token", "The key has expired."))
        return _principal(tenant, key_id, key=key)

    async def admin(self, headers: Mapping[str, str]) -> Principal:
        """An admin API caller: a key whose tenant has the `admin` role, or an Entra token with the
        `AI.Admin` app role (no tenant needed). 401 without a valid credential, 403 for anyone else."""
        credential = presented_credential(headers)
        if credential is not None and credential.kind == "jwt" and self._entra is not None:
            try:
                caller = await self._entra.validate(credential.value)
            except InvalidToken as exc:
                raise Unauthorized(str(exc), headers=challenge("invalid_token", str(exc))) from None
            if ADMIN_APP_ROLE not in caller.roles:
                text = f"The caller does not have the app role {ADMIN_APP_ROLE!r}."
                raise Forbidden(text, headers=challenge("insufficient_scope", text))
            return Principal("", f"entra:{caller.oid}", (ADMIN_APP_ROLE,), client_id=caller.client_id)
        principal = await self.authenticate(headers)
        if ADMIN_ROLE not in principal.roles:
            raise Forbidden("This key's tenant does not have the admin role.")
        return principal

    async def _entra_principal(self, token: str) -> Principal:
        if self._entra is None:
            text = "This deployment does not accept Entra ID tokens."
            raise Unauthorized(text, headers=challenge("invalid_token", text))
        try:
            caller = await self._entra.validate(token)
        except InvalidToken as exc:
            log.info("entra token refused: %s", exc)
            raise Unauthorized(str(exc), headers=challenge("invalid_token", str(exc))) from None
        if not self._has_required_role(caller):
            log.info("entra caller without role %s: tid=%s oid=%s azp=%s", self._required_role, caller.tid,
                     caller.oid, caller.client_id)
            text = f"The caller does not have the app role {self._required_role!r}."
            raise Forbidden(text, headers=challenge("insufficient_scope", text))
        tenant = await self._tenants.by_entra(caller.tid, "oid", caller.oid) or await self._tenants.by_entra(
            caller.tid, "client_id", caller.client_id)
        if tenant is None:
            log.info("entra caller in no tenant: tid=%s oid=%s azp=%s", caller.tid, caller.oid, caller.client_id)
            raise Forbidden("This Entra ID caller is not mapped to a tenant.")
        return _principal(tenant, f"entra:{caller.oid}", caller.client_id)

    def _has_required_role(self, caller: EntraCaller) -> bool:
        # App-only tokens carry app roles in `roles`; delegated tokens carry the user's assigned
        # roles there too, or the same name as a consented scope in `scp` (docs/identity.md).
        return self._required_role in caller.roles or (caller.delegated and self._required_role in caller.scopes)

    async def principal_for_tenant(self, tenant: str) -> Principal | None:
        """The principal a queue job runs as: producers with queue access are trusted per tenant."""
        config = await self._tenants.by_name(tenant)
        return None if config is None else _principal(config, "queue")


def _principal(tenant: TenantConfig, key_id: str, client_id: str | None = None, *,
               key: TenantKey | None = None) -> Principal:
    limits, own = tenant.limits, key.limits if key is not None else None
    if own is not None and (own.rpm is not None or own.tpm is not None):
        # Rates already count per key: one counter, checked against the tighter of the two limits.
        limits = limits.model_copy(update={"rpm": tighter(limits.rpm, own.rpm), "tpm": tighter(limits.tpm, own.tpm)})
    return Principal(tenant.tenant, key_id, tuple(tenant.roles), limits, client_id, tenant.log_content,
                     tenant.responses, tenant.routes, tenant.safety, own)
