"""The admin API's bodies and answers (docs/admin.md); described in the OpenAPI document."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from shared.core.key_limits import KeyLimits

KEY_ID = r"^[A-Za-z0-9_.-]{1,64}$"
MAX_GRACE_S = 30 * 86400


class KeyCreate(BaseModel):
    """A new key: its id (made up when absent), when it stops working, its own limits."""

    model_config = ConfigDict(extra="forbid")

    id: str | None = Field(default=None, pattern=KEY_ID)
    expires: datetime | None = None
    limits: KeyLimits | None = None


class KeyRotate(BaseModel):
    """The old key keeps working for `grace_s` seconds (at most 30 days) after the new one is made."""

    model_config = ConfigDict(extra="forbid")

    grace_s: int = Field(default=3600, ge=0, le=MAX_GRACE_S)
    id: str | None = Field(default=None, pattern=KEY_ID)


class KeyView(BaseModel):
    """A key as listed: never its secret, nor its digest."""

    id: str
    created: datetime | None = None
    expires: datetime | None = None
    limits: KeyLimits | None = None
    last_used: str | None = None  # the last UTC day it authenticated


class NewKey(KeyView):
    """The one answer that carries the key itself: it is never shown again."""

    key: str


class TenantView(BaseModel):
    """A tenant as the directory holds it; `config` is every TenantConfig field but its key digests."""

    model_config = ConfigDict(extra="allow")

    tenant: str
    disabled: bool
    created: str | None = None
    updated: str | None = None
    keys: list[KeyView]
    config: dict[str, Any]


class TenantCreated(BaseModel):
    tenant: TenantView
    key: NewKey


class KeyUse(BaseModel):
    tokens_used: int
    usd_spent: float


class WindowUse(KeyUse):
    tokens_reserved: int
    token_limit: int | None
    usd_limit: float | None
    resets_at: str


class KeyUsage(BaseModel):
    id: str
    daily: WindowUse | KeyUse
    monthly: KeyUse
    limits: dict[str, Any]


class LastHour(BaseModel):
    requests: int
    cache_hits: int
    refusals: int


class TenantUsage(BaseModel):
    tenant: str
    daily: WindowUse
    monthly: WindowUse
    keys: list[KeyUsage]
    last_hour: LastHour


class TenantList(BaseModel):
    tenants: list[TenantView]


class KeyList(BaseModel):
    keys: list[KeyView]


_TENANT = {"name": "tenant", "in": "path", "required": True, "schema": {"type": "string", "pattern": KEY_ID}}
_KEY = {"name": "key_id", "in": "path", "required": True, "schema": {"type": "string", "pattern": KEY_ID}}
_CONFIG = {"type": "object", "description": "TenantConfig's fields (docs/settings.md, TENANTS), as a JSON merge "
                                            "patch (RFC 7396): null removes a field, so its default applies"}
_NEW_TENANT = {"type": "object", "required": ["tenant"],
               "description": "TenantConfig's fields but `keys`; `key` (a KeyCreate) names the first key",
               "properties": {"tenant": {"type": "string"}, "key": {"$ref": "#/components/schemas/KeyCreate"}}}
ADMIN_REQUESTS: list[type[BaseModel]] = [KeyCreate, KeyRotate]
ADMIN_RESPONSES: list[type[BaseModel]] = [TenantList, TenantView, TenantCreated, KeyList, NewKey, TenantUsage]


def admin_paths(operation: Any, ref: Any) -> dict[str, Any]:
    """The admin API's paths, built with the document's own `operation` and `ref` helpers."""
    errors = [400, 401, 403, 404, 405, 409, 415, 503]
    reads = [401, 403, 404, 405, 503]

    def op(op_id: str, summary: str, ok: tuple[int, type[BaseModel] | None], codes: list[int],
           body: dict[str, Any] | None = None) -> dict[str, Any]:
        described: dict[str, Any] = operation(f"admin_{op_id}", summary, ok, codes, body=body)
        return described

    return {
        "/admin/tenants": {
            "get": op("tenants_list", "Every tenant, with its keys (never a secret).", (200, TenantList), reads),
            "post": op("tenants_create", "A new tenant and its first key (the secret returned once).",
                       (201, TenantCreated), errors, _NEW_TENANT)},
        "/admin/tenants/{tenant}": {
            "parameters": [_TENANT],
            "get": op("tenant_get", "One tenant, its keys and their last use.", (200, TenantView), reads),
            "patch": op("tenant_update", "Change limits, roles, policies, `disabled`.", (200, TenantView), errors,
                        _CONFIG)},
        "/admin/tenants/{tenant}/disable": {
            "parameters": [_TENANT],
            "post": op("tenant_disable", "Refuse every key of the tenant.", (200, TenantView), [*reads, 409])},
        "/admin/tenants/{tenant}/keys": {
            "parameters": [_TENANT],
            "get": op("keys_list", "The tenant's keys: ids, expiry, limits, last use.", (200, KeyList), reads),
            "post": op("keys_create", "A new key (the secret returned once).", (201, NewKey), errors,
                       ref(KeyCreate))},
        "/admin/tenants/{tenant}/keys/{key_id}/rotate": {
            "parameters": [_TENANT, _KEY],
            "post": op("key_rotate", "A new key; the old one works for `grace_s` more.", (201, NewKey), errors,
                       ref(KeyRotate))},
        "/admin/tenants/{tenant}/keys/{key_id}": {
            "parameters": [_TENANT, _KEY],
            "delete": op("key_revoke", "Revoke the key (refused everywhere within TENANT_REFRESH_S).",
                         (204, None), [*reads, 409])},
        "/admin/tenants/{tenant}/usage": {
            "parameters": [_TENANT],
            "get": op("usage", "Today's and this month's use of the tenant and each key, against limits.",
                      (200, TenantUsage), reads)},
    }
