"""The tenant directory in Cosmos `tenants` (partition `/tenant`), which TENANTS seeds (create only).

One document per tenant, id `config`: the tenant in the very schema TenantConfig validates (its keys
as SHA-256 digests, never a secret), beside the directory's own fields (`disabled`, `created`,
`updated`). Every document is read back through TenantConfig, so any field TenantConfig has (limits,
roles, policies) passes through unchanged. One small document per key, id `seen:<key id>`, holds the
day it was last used, written at most once a day per key and instance, off the request path.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from azure.core import MatchConditions
from azure.cosmos.exceptions import (
    CosmosAccessConditionFailedError,
    CosmosResourceExistsError,
    CosmosResourceNotFoundError,
)
from pydantic import ValidationError

from shared.core.background import spawn
from shared.core.errors import Conflict, NotFound
from shared.core.settings import TenantConfig
from shared.state.cosmos import CosmosState

log = logging.getLogger(__name__)
CONFIG_ID = "config"
SEEN_PREFIX = "seen:"
OWN_FIELDS = frozenset({"id", "disabled", "created", "updated"})  # the directory's, not TenantConfig's
UPDATE_TRIES = 3  # read, change, replace if unchanged: concurrent admins retry on a fresh read


@dataclass(frozen=True)
class TenantRecord:
    """A tenant as the directory holds it."""

    config: TenantConfig
    disabled: bool = False
    created: str | None = None
    updated: str | None = None
    etag: str | None = None


def encode(record: TenantRecord) -> dict[str, Any]:
    """The document: TenantConfig's own JSON, every field as it is, plus the directory's fields."""
    return {**record.config.model_dump(mode="json"), "id": CONFIG_ID, "disabled": record.disabled,
            "created": record.created, "updated": record.updated}


def decode(doc: dict[str, Any]) -> TenantRecord | None:
    """A tenant document as a record, or None (logged, by tenant and field) when TenantConfig
    refuses it: a document edited by hand must not take the other tenants down with it."""
    fields = {k: v for k, v in doc.items() if k not in OWN_FIELDS and not k.startswith("_")}
    try:
        config = TenantConfig.model_validate(fields)
    except ValidationError as exc:
        where = ", ".join(".".join(map(str, e["loc"])) for e in exc.errors())
        log.error("tenant document refused: tenant=%s fields=%s", str(doc.get("tenant"))[:64], where)
        return None
    return TenantRecord(config, bool(doc.get("disabled")), doc.get("created"), doc.get("updated"), doc.get("_etag"))


class CosmosTenants:
    """Reads and writes of the directory. Lookups go through identity.tenants.RefreshingTenants,
    which calls `load` at most once per TENANT_REFRESH_S."""

    def __init__(self, state: CosmosState, seed: list[TenantConfig], wall: Callable[[], float]) -> None:
        self._state = state
        self._seed = seed
        self._wall = wall
        self._seeded = False
        self._marked: dict[tuple[str, str], int] = {}  # (tenant, key id) -> the day (epoch days) written

    def stamp(self) -> str:
        return datetime.fromtimestamp(self._wall(), UTC).isoformat(timespec="seconds").replace("+00:00", "Z")

    async def load(self) -> list[TenantConfig]:
        """Every tenant that is not disabled (TENANTS seeds the directory at the first load)."""
        if not self._seeded:
            await self.seed()
        return [r.config for r in await self.all() if not r.disabled]

    async def seed(self) -> None:
        """Create the TENANTS tenants the directory lacks; an existing one is never overwritten."""
        container = await self._state.container("tenants")
        now = self.stamp()
        for config in self._seed:
            with contextlib.suppress(CosmosResourceExistsError):
                await container.create_item(encode(TenantRecord(config, created=now, updated=now)), no_response=True)
        self._seeded = True

    async def all(self) -> list[TenantRecord]:
        container = await self._state.container("tenants")
        query = "SELECT * FROM c WHERE c.id = @id"
        docs = container.query_items(query, parameters=[{"name": "@id", "value": CONFIG_ID}])
        return sorted((r for r in [decode(d) async for d in docs] if r is not None), key=lambda r: r.config.tenant)

    async def get(self, tenant: str) -> TenantRecord:
        """The tenant, disabled or not; NotFound when there is none (or its document is refused)."""
        doc = await self._state.find("tenants", tenant, CONFIG_ID)
        record = decode(doc) if doc is not None else None
        if record is None:
            raise NotFound(f"There is no tenant {tenant!r}.")
        return record

    async def create(self, config: TenantConfig) -> TenantRecord:
        now = self.stamp()
        record = TenantRecord(config, created=now, updated=now)
        container = await self._state.container("tenants")
        try:
            doc = await container.create_item(encode(record))
        except CosmosResourceExistsError:
            raise Conflict(f"Tenant {config.tenant!r} exists already.") from None
        return decode(dict(doc)) or record

    async def update(self, tenant: str, change: Callable[[TenantRecord], TenantRecord]) -> TenantRecord:
        """Apply `change` to the tenant as stored, replaced only if nobody changed it meanwhile
        (its ETag); re-read and applied again otherwise. `change` may raise to refuse."""
        container = await self._state.container("tenants")
        for _ in range(UPDATE_TRIES):
            current = await self.get(tenant)
            changed = change(current)
            new = TenantRecord(changed.config, changed.disabled, current.created, self.stamp())
            try:
                doc = await container.replace_item(CONFIG_ID, encode(new), etag=current.etag,
                                                   match_condition=MatchConditions.IfNotModified)
            except CosmosAccessConditionFailedError:
                continue
            except CosmosResourceNotFoundError:
                raise NotFound(f"There is no tenant {tenant!r}.") from None
            return decode(dict(doc)) or new
        raise Conflict(f"Tenant {tenant!r} is being changed by someone else. Try again.")

    def used(self, tenant: str, key_id: str) -> None:
        """The key authenticated: its last-used day, written once a day by this process, detached.
        Called on every request, so it compares day numbers and formats only what it writes."""
        day = int(self._wall() // 86400)
        if self._marked.get((tenant, key_id)) == day:
            return
        if len(self._marked) > 100_000:
            self._marked.clear()  # bounded: at worst a key's day is written again
        self._marked[(tenant, key_id)] = day
        spawn(self._mark(tenant, key_id, f"{datetime.fromtimestamp(day * 86400, UTC):%Y-%m-%d}"))

    async def _mark(self, tenant: str, key_id: str, day: str) -> None:
        container = await self._state.container("tenants")
        await container.upsert_item({"id": f"{SEEN_PREFIX}{key_id}", "tenant": tenant, "key": key_id, "day": day},
                                    no_response=True)

    async def last_used(self, tenant: str) -> dict[str, str]:
        """Key id -> the last day it was used (UTC), for the keys that ever were."""
        container = await self._state.container("tenants")
        query = "SELECT c.key, c.day FROM c WHERE STARTSWITH(c.id, @prefix)"
        rows = container.query_items(query, parameters=[{"name": "@prefix", "value": SEEN_PREFIX}],
                                     partition_key=tenant)
        return {str(r["key"]): str(r["day"]) async for r in rows}

