"""Tenants at run time, without Cosmos: the directory's copy and its refresh bound, keys' expiry and
own limits at authentication, and the merge patch the admin API applies (docs/admin.md)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from shared.admin.service import merge_patch
from shared.core.errors import Forbidden, Unauthorized
from shared.core.key_limits import KeyLimits
from shared.core.settings import TenantConfig, TenantKey, TenantLimits, hash_api_key
from shared.identity.auth import Authenticator
from shared.identity.tenants import RefreshingTenants

REFRESH_S = 10.0


class Directory:
    """What Cosmos holds, and how often it was read."""

    def __init__(self, *tenants: TenantConfig) -> None:
        self.tenants = list(tenants)
        self.reads = 0

    async def load(self) -> list[TenantConfig]:
        self.reads += 1
        return list(self.tenants)


def tenant(name: str, *keys: TenantKey, roles: tuple[str, ...] = ("user",), rpm: int | None = None) -> TenantConfig:
    return TenantConfig(tenant=name, keys=list(keys), roles=list(roles), limits=TenantLimits(rpm=rpm))


def key(key_id: str, secret: str, **fields: object) -> TenantKey:
    return TenantKey.model_validate({"id": key_id, "sha256": hash_api_key(secret), **fields})


async def test_a_revoked_key_is_refused_once_the_copy_is_refresh_s_old_and_not_before() -> None:
    cosmos = Directory(tenant("acme", key("k1", "s1")))
    now = [100.0]
    directory = RefreshingTenants(cosmos.load, REFRESH_S, lambda: now[0])
    assert await directory.by_key(hash_api_key("s1")) is not None
    cosmos.tenants = [tenant("acme", key("k2", "s2"))]  # k1 revoked, k2 made, through another instance
    now[0] += REFRESH_S - 0.001
    assert await directory.by_key(hash_api_key("s1")) is not None  # the copy is still young: one read so far
    assert cosmos.reads == 1
    now[0] += 0.001
    assert await directory.by_key(hash_api_key("s1")) is None  # at the bound: read again, refused
    assert await directory.by_key(hash_api_key("s2")) is not None
    assert cosmos.reads == 2


async def test_lookups_waiting_for_one_read_share_it_and_expire_reads_at_once() -> None:
    cosmos = Directory(tenant("acme", key("k1", "s1")))
    directory = RefreshingTenants(cosmos.load, REFRESH_S, lambda: 0.0)
    found = await asyncio.gather(*(directory.by_key(hash_api_key("s1")) for _ in range(20)))
    assert all(found) and cosmos.reads == 1
    directory.expire()  # this instance changed the directory: its next lookup reads it
    assert await directory.by_name("acme") is not None and cosmos.reads == 2


async def test_a_failed_read_fails_the_lookup_instead_of_serving_an_old_copy() -> None:
    now = [0.0]
    calls = []

    async def load() -> list[TenantConfig]:
        calls.append(now[0])
        if len(calls) > 1:
            raise ConnectionError("cosmos down")
        return [tenant("acme", key("k1", "s1"))]

    directory = RefreshingTenants(load, REFRESH_S, lambda: now[0])
    assert await directory.by_key(hash_api_key("s1")) is not None
    now[0] = REFRESH_S
    with pytest.raises(ConnectionError):
        await directory.by_key(hash_api_key("s1"))


async def test_used_keys_are_reported_and_expired_keys_refused() -> None:
    used: list[tuple[str, str]] = []
    wall = datetime(2026, 12, 7, 12, tzinfo=UTC).timestamp()
    cosmos = Directory(tenant("acme", key("old", "s-old", expires=datetime(2026, 12, 7, 11, tzinfo=UTC)),
                              key("new", "s-new", expires=datetime(2026, 12, 7, 13, tzinfo=UTC))))
    auth = Authenticator(RefreshingTenants(cosmos.load, REFRESH_S, lambda: 0.0, lambda t, k: used.append((t, k))),
                         wall=lambda: wall)
    with pytest.raises(Unauthorized, match="expired"):
        await auth.authenticate({"x-api-key": "s-old"})
    assert (await auth.authenticate({"x-api-key": "s-new"})).key_id == "new"
    assert ("acme", "new") in used


async def test_a_keys_own_rates_are_the_tighter_and_its_budget_rides_on_the_principal() -> None:
    own = KeyLimits(rpm=5, tpm=None, daily_tokens=100)
    cosmos = Directory(tenant("acme", key("small", "s1", limits=own), key("plain", "s2"), rpm=60))
    auth = Authenticator(RefreshingTenants(cosmos.load, REFRESH_S, lambda: 0.0))
    small = await auth.authenticate({"x-api-key": "s1"})
    assert (small.limits.rpm, small.key_limits) == (5, own)
    plain = await auth.authenticate({"x-api-key": "s2"})
    assert (plain.limits.rpm, plain.key_limits) == (60, None)


async def test_only_an_admin_tenants_key_may_call_the_admin_api() -> None:
    cosmos = Directory(tenant("ops", key("o1", "admin-secret"), roles=("admin",)), tenant("acme", key("k1", "s1")))
    auth = Authenticator(RefreshingTenants(cosmos.load, REFRESH_S, lambda: 0.0))
    assert (await auth.admin({"x-api-key": "admin-secret"})).tenant == "ops"
    with pytest.raises(Forbidden):
        await auth.admin({"x-api-key": "s1"})
    with pytest.raises(Unauthorized):
        await auth.admin({})


def test_a_merge_patch_changes_only_what_it_names_and_null_removes() -> None:
    stored = {"tenant": "acme", "limits": {"rpm": 5, "daily_tokens": 10}, "log_content": True, "safety": {"a": 1}}
    patched = merge_patch(stored, {"limits": {"rpm": 7, "daily_tokens": None}})
    assert patched == {"tenant": "acme", "limits": {"rpm": 7}, "log_content": True, "safety": {"a": 1}}
    assert stored["limits"] == {"rpm": 5, "daily_tokens": 10}  # the stored copy is left alone
