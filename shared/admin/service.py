"""Tenants, keys and usage at run time: what each admin route does, and its audit record (docs/admin.md).

A key's secret exists only in the answer that creates it: the directory holds its SHA-256. Every
change is validated by TenantConfig itself, so a tenant's other fields (limits, roles, policies)
pass through as they are; this instance re-reads the directory at once, the others within
TENANT_REFRESH_S.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar, get_args, get_origin

from pydantic import BaseModel, ValidationError

from shared.api.admin_models import KeyCreate, KeyRotate, KeyView, NewKey, TenantCreated, TenantUsage, TenantView
from shared.core.clock import Clock, utc
from shared.core.errors import BadRequest, Conflict, NotFound, validation_failed
from shared.core.settings import (
    Settings,
    TenantConfig,
    TenantKey,
    has_usd_limit,
    hash_api_key,
    new_api_key,
    policy_problems,
    unpriced_models,
)
from shared.identity.auth import ADMIN_ROLE, Principal
from shared.identity.tenants import RefreshingTenants
from shared.observability.audit import admin_action
from shared.state.cosmos import CosmosState
from shared.state.tenants import CosmosTenants, TenantRecord
from shared.state.usage import tenant_usage

M = TypeVar("M", bound=BaseModel)
Change = Callable[[TenantRecord], TenantRecord]
LastHour = Callable[[str], Awaitable[dict[str, int]]]
# What a PATCH may not touch: the name is the partition, and keys change through their own routes.
_FIXED = {"tenant": "A tenant cannot be renamed.", "keys": "Change keys with the keys routes."}


def unknown_member(patch: Any, model: type[BaseModel], at: str = "") -> str | None:
    """The first member of a patch that `model` has no field for, as a dotted path (nested models and
    the members of a map of models, a tenant's routes say, are looked into), else None. A merge patch
    of null drops such a member silently; the API refuses it as it refuses any unknown field."""
    if not isinstance(patch, dict):
        return None
    for name, value in patch.items():
        path = f"{at}{name}"
        field = model.model_fields.get(name)
        if field is None:
            return path
        annotation = field.annotation
        if get_origin(annotation) is dict:  # a map of models: each member is one
            inner = _model_in(get_args(annotation)[1])
            for key, member in value.items() if isinstance(value, dict) else ():
                if (found := unknown_member(member, inner, f"{path}.{key}.")) is not None:
                    return found
        elif (found := unknown_member(value, _model_in(annotation), f"{path}.")) is not None:
            return found
    return None


def _model_in(annotation: Any) -> type[BaseModel]:
    """The model an annotation holds (`Limits`, `Limits | None`), or BaseModel (no field: nothing to
    look into) for any other."""
    for candidate in (annotation, *get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return BaseModel


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396: objects merge member by member, null removes a member (its default applies again)."""
    if not isinstance(patch, dict):
        return patch
    merged = dict(target) if isinstance(target, dict) else {}
    for name, value in patch.items():
        if value is None:
            merged.pop(name, None)
        else:
            merged[name] = merge_patch(merged.get(name), value)
    return merged


class AdminService:
    def __init__(self, store: CosmosTenants, directory: RefreshingTenants, state: CosmosState, settings: Settings, *,
                 now: Callable[[], datetime], last_hour: LastHour) -> None:
        self._store = store
        self._directory = directory
        self._state = state
        self._settings = settings
        self._now = now
        self._last_hour = last_hour

    async def list_tenants(self) -> list[TenantView]:
        return [self._view(r, {}) for r in await self._store.all()]

    async def get_tenant(self, tenant: str) -> TenantView:
        return self._view(await self._store.get(tenant), await self._store.last_used(tenant))

    async def create_tenant(self, caller: Principal, cid: str, body: dict[str, Any]) -> TenantCreated:
        body = dict(body)
        if "keys" in body:
            raise BadRequest(_FIXED["keys"] + " A new tenant gets one key; ask for its id and limits in `key`.",
                             param="keys")
        spec = self._parsed(KeyCreate, body.pop("key", None) or {}, "key")
        body.pop("disabled", None)
        name = str(body.get("tenant", ""))
        secret, key = self._mint(spec, f"{name}-1")
        config = self._config({**body, "keys": [key.model_dump(mode="json")]})
        await self._unique_principals(config)
        record = await self._store.create(config)
        self._changed(caller, cid, "tenant.create", config.tenant, key.id)
        return TenantCreated(tenant=self._view(record, {}), key=_new_key(key, secret))

    async def update_tenant(self, caller: Principal, cid: str, tenant: str, patch: dict[str, Any]) -> TenantView:
        for name, why in _FIXED.items():
            if name in patch:
                raise BadRequest(why, param=name)
        disabled = patch.get("disabled")
        if disabled is not None and not isinstance(disabled, bool):
            raise BadRequest("`disabled` is true or false.", param="disabled")
        changes = {k: v for k, v in patch.items() if k != "disabled"}
        if (unknown := unknown_member(changes, TenantConfig)) is not None:
            raise BadRequest(f"A tenant has no field {unknown!r}.", param=unknown or "body")

        def change(current: TenantRecord) -> TenantRecord:
            merged = merge_patch(current.config.model_dump(mode="json"), changes)
            return TenantRecord(self._config(merged), current.disabled if disabled is None else disabled)

        if "entra" in changes:
            await self._unique_principals(self._config(merge_patch(
                (await self._store.get(tenant)).config.model_dump(mode="json"), changes)))
        record = await self._store.update(tenant, self._guarded(caller, change))
        self._changed(caller, cid, "tenant.update", tenant, None, fields=sorted(patch))
        return self._view(record, await self._store.last_used(tenant))

    async def disable_tenant(self, caller: Principal, cid: str, tenant: str) -> TenantView:
        record = await self._store.update(tenant, self._guarded(caller, lambda r: TenantRecord(r.config, True)))
        self._changed(caller, cid, "tenant.disable", tenant, None)
        return self._view(record, {})

    async def list_keys(self, tenant: str) -> list[KeyView]:
        return (await self.get_tenant(tenant)).keys

    async def create_key(self, caller: Principal, cid: str, tenant: str, body: dict[str, Any]) -> NewKey:
        spec = self._parsed(KeyCreate, body)
        secret, key = self._mint(spec, f"k-{secrets.token_hex(4)}")
        await self._store.update(tenant, lambda r: self._with_keys(r, [*r.config.keys, key]))
        self._changed(caller, cid, "key.create", tenant, key.id)
        return _new_key(key, secret)

    async def rotate_key(self, caller: Principal, cid: str, tenant: str, key_id: str, body: dict[str, Any]) -> NewKey:
        """A new key with the old one's limits; the old one stops working after the grace."""
        spec = self._parsed(KeyRotate, body)
        ends = self._now() + timedelta(seconds=spec.grace_s)
        old = _key(await self._store.get(tenant), key_id)
        secret, key = self._mint(KeyCreate(id=spec.id, limits=old.limits), f"k-{secrets.token_hex(4)}")

        def change(current: TenantRecord) -> TenantRecord:
            keys = [k.model_copy(update={"expires": min(ends, k.expires or ends)}) if k.id == key_id else k
                    for k in current.config.keys]
            _key(current, key_id)  # revoked meanwhile: nothing to rotate
            return self._with_keys(current, [*keys, key])

        await self._store.update(tenant, self._guarded(caller, change))
        self._changed(caller, cid, "key.rotate", tenant, key.id, rotated=key_id, grace_s=spec.grace_s)
        return _new_key(key, secret)

    async def revoke_key(self, caller: Principal, cid: str, tenant: str, key_id: str) -> None:
        def change(current: TenantRecord) -> TenantRecord:
            _key(current, key_id)
            return self._with_keys(current, [k for k in current.config.keys if k.id != key_id])

        await self._store.update(tenant, self._guarded(caller, change))
        self._changed(caller, cid, "key.revoke", tenant, key_id)

    async def usage(self, tenant: str) -> TenantUsage:
        config = (await self._store.get(tenant)).config
        report = await tenant_usage(self._state, config, self._now(), self._settings.budget_slot_s)
        return TenantUsage.model_validate({**report, "last_hour": await self._last_hour(tenant)})

    def _mint(self, spec: KeyCreate, default_id: str) -> tuple[str, TenantKey]:
        secret = new_api_key()
        expires = spec.expires.astimezone(UTC) if spec.expires is not None and spec.expires.tzinfo else spec.expires
        key = TenantKey(id=spec.id or default_id, sha256=hash_api_key(secret), expires=expires, limits=spec.limits,
                        created=self._now().replace(microsecond=0))
        return secret, key

    def _guarded(self, caller: Principal, change: Change) -> Change:
        """`change`, refused when it would lock the caller out: an admin key cannot disable its own
        tenant, take its `admin` role away, or end itself (another admin can)."""
        def guarded(current: TenantRecord) -> TenantRecord:
            after = change(current)
            if after.config.tenant != caller.tenant:
                return after
            own = next((k for k in after.config.keys if k.id == caller.key_id), None)
            if after.disabled or ADMIN_ROLE not in after.config.roles or own is None or (
                    own.expires is not None and own.expires <= self._now()):
                raise Conflict("That change would lock out the key making it (its tenant disabled, its admin "
                               "role removed, or the key itself ended): make it with another admin key.")
            return after

        return guarded

    def _with_keys(self, current: TenantRecord, keys: list[TenantKey]) -> TenantRecord:
        if len({k.id for k in keys}) != len(keys):
            raise Conflict("The tenant has a key with that id already.")
        if not keys and not current.config.entra:
            raise Conflict("That is the tenant's last credential: disable the tenant instead "
                           f"(POST /api/admin/tenants/{current.config.tenant}/disable).")
        return TenantRecord(self._config({**current.config.model_dump(mode="json"),
                                          "keys": [k.model_dump(mode="json") for k in keys]}), current.disabled)

    def _config(self, data: dict[str, Any]) -> TenantConfig:
        """TenantConfig's own validation, and the app's rule that a USD limit needs every model priced."""
        config = self._parsed(TenantConfig, data)
        missing = unpriced_models(self._settings) if has_usd_limit(config) else []
        if missing:
            raise BadRequest(f"A USD limit needs a price for every model; MODEL_PRICES has none for "
                             f"{', '.join(missing)}.", param="limits")
        problems = policy_problems(self._settings, config)
        if problems:  # a route to a model this app lacks, or PII kinds it could not redact
            raise BadRequest("; ".join(why for _, why in problems) + ".", param=problems[0][0])
        return config

    @staticmethod
    def _parsed(model: type[M], data: Any, prefix: str = "") -> M:
        """Strictly, as JSON: `"true"` is not a flag nor `1` a time (TENANTS, read at start, stays lax)."""
        try:
            return model.model_validate_json(json.dumps(data), strict=True)
        except ValidationError as exc:
            raise validation_failed(exc, prefix) from None

    async def _unique_principals(self, config: TenantConfig) -> None:
        mine = {p.match_key for p in config.entra}
        for other in await self._store.all():
            if other.config.tenant != config.tenant and mine & {p.match_key for p in other.config.entra}:
                raise Conflict(f"An Entra principal of this tenant belongs to tenant {other.config.tenant!r}.")

    def _changed(self, caller: Principal, cid: str, action: str, tenant: str, key_id: str | None,
                 **details: Any) -> None:
        self._directory.expire()  # this instance sees the change at once; the others within the bound
        admin_action(caller.tenant, caller.key_id, action, tenant=tenant, key_id=key_id, correlation_id=cid,
                     details=details)

    @staticmethod
    def _view(record: TenantRecord, last_used: dict[str, str]) -> TenantView:
        config = record.config.model_dump(mode="json", exclude={"keys"})
        keys = [KeyView(id=k.id, created=k.created, expires=k.expires, limits=k.limits, last_used=last_used.get(k.id))
                for k in record.config.keys]
        return TenantView(tenant=record.config.tenant, disabled=record.disabled, created=record.created,
                          updated=record.updated, keys=keys, config=config)


def _key(record: TenantRecord, key_id: str) -> TenantKey:
    found = next((k for k in record.config.keys if k.id == key_id), None)
    if found is None:
        raise NotFound(f"Tenant {record.config.tenant!r} has no key {key_id!r}.")
    return found


def _new_key(key: TenantKey, secret: str) -> NewKey:
    return NewKey(id=key.id, created=key.created, expires=key.expires, limits=key.limits, key=secret)


def build_directory(settings: Settings, state: CosmosState, clock: Clock,
                    last_hour: LastHour) -> tuple[RefreshingTenants, AdminService]:
    """The tenant directory in Cosmos, seeded by TENANTS and read through a copy at most
    TENANT_REFRESH_S old, and the admin service that changes it."""
    store = CosmosTenants(state, settings.tenants, clock.wall)
    directory = RefreshingTenants(store.load, settings.tenant_refresh_s, clock.now, store.used)
    return directory, AdminService(store, directory, state, settings, now=utc(clock), last_hour=last_hour)
