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
