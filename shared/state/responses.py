"""The Responses API's tenant-owned records (Cosmos container `responses`, partition /tenant): every
response id the gateway returned, whose it is, and the endpoint that holds it (docs/responses.md)."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from azure.cosmos.exceptions import CosmosResourceNotFoundError

from shared.state.cosmos import DEFAULT_TTLS, CosmosState

CONTAINER = "responses"
# The provider keeps a stored response 30 days; the record that says whose it is lives as long.
TTL_S = DEFAULT_TTLS[CONTAINER]


@dataclass(frozen=True)
class ResponseRecord:
    """One response id: its tenant and key, the endpoint that created it (the only one that knows
    it), its model, status, whether the provider stores it, the response it continued, its usage
    and the context a follow-up carries (its input plus output, in tokens)."""

    id: str
    tenant: str
    key: str
    endpoint: str
    model: str
    status: str
    store: bool
    previous_response_id: str | None
    usage: dict[str, int] | None
    context_tokens: int
    ttl: int = TTL_S


class ResponseRecords(Protocol):
    async def get(self, tenant: str, response_id: str) -> ResponseRecord | None: ...

    async def put(self, record: ResponseRecord) -> None: ...

    async def delete(self, tenant: str, response_id: str) -> None: ...

    async def put_origin(self, tenant: str, item_id: str, endpoint: str) -> None: ...

    async def origin_of(self, tenant: str, item_id: str) -> str | None: ...


class CosmosResponseRecords:
    """The records in Cosmos: a point read in the caller's own partition, so another tenant's id is
    simply not there (no query can cross tenants)."""

    def __init__(self, cosmos: CosmosState) -> None:
        self.cosmos = cosmos

    async def get(self, tenant: str, response_id: str) -> ResponseRecord | None:
        doc = await self.cosmos.find(CONTAINER, tenant, response_id)
        if doc is None:
            return None
        fields = {k: doc[k] for k in ResponseRecord.__dataclass_fields__ if k in doc}
        return ResponseRecord(**fields)

    async def put(self, record: ResponseRecord) -> None:
        container = await self.cosmos.container(CONTAINER)
        await container.upsert_item(_doc(record), no_response=True)

    async def delete(self, tenant: str, response_id: str) -> None:
        container = await self.cosmos.container(CONTAINER)
        with contextlib.suppress(CosmosResourceNotFoundError):  # expired or deleted already: the same end
            await container.delete_item(response_id, partition_key=tenant)


    async def put_origin(self, tenant: str, item_id: str, endpoint: str) -> None:
        """The endpoint that sealed a reasoning item's encrypted_content (only it can read it)."""
        container = await self.cosmos.container(CONTAINER)
        doc = {"id": _item(item_id), "tenant": tenant, "endpoint": endpoint, "ttl": TTL_S}
        await container.upsert_item(doc, no_response=True)

    async def origin_of(self, tenant: str, item_id: str) -> str | None:
        doc = await self.cosmos.find(CONTAINER, tenant, _item(item_id))
        return str(doc["endpoint"]) if doc is not None else None


def _item(item_id: str) -> str:
    # Apart from the response ids in the same partition (resp_...): an output item's own key.
    return f"item.{item_id}"


def _doc(record: ResponseRecord) -> dict[str, Any]:
    return asdict(record)


def usage_record(raw: Mapping[str, Any]) -> dict[str, int]:
    """The usage as recorded: input, cached input, output, reasoning."""
    def detail(name: str, key: str) -> int:
        part = raw.get(name)
        return int(part.get(key) or 0) if isinstance(part, dict) else 0

    return {"input_tokens": int(raw.get("input_tokens") or 0), "cached_tokens": detail("input_tokens_details",
            "cached_tokens"), "output_tokens": int(raw.get("output_tokens") or 0),
            "reasoning_tokens": detail("output_tokens_details", "reasoning_tokens")}
