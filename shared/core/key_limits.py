"""A key's own limits (tenants at run time, docs/admin.md): checked beside its tenant's, the tighter wins."""

from __future__ import annotations

from pydantic import BaseModel, Field

MAX_TOKENS_LIMIT = 10**15  # the largest token, request or rate limit a tenant or a key may have
MAX_USD_LIMIT = 1e9  # the largest USD limit: counted in micro-USD, it stays a number Cosmos compares exactly


class KeyLimits(BaseModel):
    """Limits of one API key; an absent (null) limit means only the tenant's applies. Rates count in
    the key's own window (as the tenant's `rpm` and `tpm` already do); the day resets at 00:00 UTC,
    and a key's use counts against its tenant's budget as well."""

    # Strict: `true` is not a limit of 1 (the admin API takes these as they are typed).
    model_config = {"extra": "forbid", "frozen": True, "strict": True}

    rpm: int | None = Field(default=None, ge=0, le=MAX_TOKENS_LIMIT)
    tpm: int | None = Field(default=None, ge=0, le=MAX_TOKENS_LIMIT)
    daily_tokens: int | None = Field(default=None, ge=0, le=MAX_TOKENS_LIMIT)
    daily_usd: float | None = Field(default=None, ge=0, le=MAX_USD_LIMIT)


def tighter(tenant: int | None, key: int | None) -> int | None:
    """The tighter of two limits, None meaning no limit."""
    if tenant is None or key is None:
        return key if tenant is None else tenant
    return min(tenant, key)
