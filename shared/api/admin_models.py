"""The admin API's bodies and answers (docs/admin.md); described in the OpenAPI document."""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, create_model

from shared.core.key_limits import KeyLimits
from shared.core.settings import TenantConfig

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
# The bodies of POST /tenants and PATCH /tenants/{t}, made from TenantConfig's own fields (so every
# field it has is described, whoever added it): a new tenant names its first key in `key`, not
# `keys`; a patch may name any field but `tenant` and `keys`, null putting its default back.
TenantCreate = create_model(
    "TenantCreate", __config__=ConfigDict(extra="forbid"),
    **{name: (f.annotation, f) for name, f in TenantConfig.model_fields.items() if name != "keys"},  # type: ignore[call-overload]
    key=(KeyCreate | None, None))


def _patch_of(model: type[BaseModel], leave: tuple[str, ...] = ()) -> type[BaseModel]:
    """`model` as a JSON merge patch describes it: every field optional and nullable (null puts its
    default back), nested models likewise, each field's own constraints kept."""
    fields: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        if name in leave:
            continue
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            annotation = _patch_of(annotation)
        elif get_origin(annotation) is dict:  # a member set to null is removed (a route, say)
            names, value = get_args(annotation)
            annotation = dict[names, value | None]  # type: ignore[valid-type]
        info = copy.copy(field)
        info.default, info.default_factory, info.annotation = None, None, annotation | None  # type: ignore[operator,assignment]
        fields[name] = (info.annotation, info)
    return create_model(f"{model.__name__}Patch", __config__=ConfigDict(extra="forbid"), **fields)


TenantPatch = create_model("TenantPatch", __base__=_patch_of(TenantConfig, ("tenant", "keys")),
                           disabled=(bool | None, None))


ADMIN_REQUESTS: list[type[BaseModel]] = [KeyCreate, KeyRotate, TenantCreate, TenantPatch]
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
                       (201, TenantCreated), errors, ref(TenantCreate))},
        "/admin/tenants/{tenant}": {
            "parameters": [_TENANT],
            "get": op("tenant_get", "One tenant, its keys and their last use.", (200, TenantView), reads),
            "patch": op("tenant_update", "A JSON merge patch (RFC 7396) of its fields and `disabled`.",
                        (200, TenantView), errors, ref(TenantPatch))},
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
            "post": _optional_body(op("key_rotate", "A new key; the old one works for `grace_s` more.",
                                      (201, NewKey), errors, ref(KeyRotate)))},
        "/admin/tenants/{tenant}/keys/{key_id}": {
            "parameters": [_TENANT, _KEY],
            "delete": op("key_revoke", "Revoke the key (refused everywhere within TENANT_REFRESH_S).",
                         (204, None), [*reads, 409])},
        "/admin/tenants/{tenant}/usage": {
            "parameters": [_TENANT],
            "get": op("usage", "Today's and this month's use of the tenant and each key, against limits.",
                      (200, TenantUsage), reads)},
    }


def _optional_body(operation: dict[str, Any]) -> dict[str, Any]:
    operation["requestBody"]["required"] = False
    return operation
