"""One async Cosmos client per worker, and the containers of docs/state.md (created locally if missing)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from azure.core.credentials_async import AsyncTokenCredential
from azure.core.pipeline.transport import AsyncHttpTransport
from azure.cosmos import PartitionKey
from azure.cosmos.aio import ContainerProxy, CosmosClient, DatabaseProxy
from azure.cosmos.exceptions import CosmosResourceExistsError, CosmosResourceNotFoundError

from shared.core.settings import Settings

# name -> partition key path (docs/state.md)
CONTAINERS: dict[str, str] = {
    "cache": "/tenant",
    "budgets": "/tenant",
    "ratelimits": "/key",
    "jobs": "/tenant",
    "responses": "/tenant",  # response records of the Responses API (shared/state/responses.py)
    "tenants": "/tenant",  # the tenant directory (shared/state/tenants.py)
}
# Containers whose documents expire (their `ttl`, else this default, in seconds): the Responses
# API's records live as long as the provider keeps a stored response (30 days).
DEFAULT_TTLS: dict[str, int] = {"responses": 30 * 86_400}

# The SDK's HTTP logging policy writes two INFO records per call (URL and headers, then the
# response). The Functions worker sets the root logger to INFO and ships every record to the host
# and on to Application Insights, so in Azure every Cosmos call paid for both. They go to this
# logger instead, quiet unless someone sets it to INFO to see the traffic.
HTTP_LOG = logging.getLogger("shared.state.cosmos.http")
HTTP_LOG.setLevel(logging.WARNING)


def cosmos_client(settings: Settings, credential: AsyncTokenCredential | None,
                  transport: AsyncHttpTransport[Any, Any] | None = None) -> CosmosClient:
    """Key for the local emulator only; managed identity everywhere else. The SDK keeps its own
    tuned retries for throttling (ours are never wrapped around it)."""
    auth: Any = settings.cosmos_key.get_secret_value() if settings.cosmos_key else credential
    if auth is None:
        raise ValueError("COSMOS_KEY is unset and there is no managed identity credential")
    # The emulator serves one plain-HTTP region: endpoint discovery would redirect to an address
    # it does not serve, so it is off there; real accounts keep discovery for multi-region reads.
    discovery = not settings.cosmos_endpoint.startswith("http://")
    # `transport` is for measuring (bench/cache.py counts requests). Ours ignores the environment's
    # proxy settings: with them on, aiohttp looks up HTTP(S)_PROXY and reads ~/.netrc in a thread
    # for every request, about a tenth of the app's CPU under load. No Functions plan routes Cosmos
    # through an environment proxy (docs/state.md says how to give the SDK one).
    if transport is None:
        # Imported here, at the one first use: it loads aiohttp. The package exports it through a
        # lazy __getattr__ (Any to mypy); the defining module is typed.
        from azure.core.pipeline.transport._aiohttp import AioHttpTransport  # noqa: PLC0415  loads aiohttp

        transport = AioHttpTransport(use_env_settings=False)
    # Not `no_response_on_write`: the SDK sends its `Prefer: return=minimal` on queries too (they
    # are POSTs), so writes that need no document back say so per call (`no_response=True`).
    return CosmosClient(settings.cosmos_endpoint, credential=auth, enable_endpoint_discovery=discovery,
                        transport=transport, logger=HTTP_LOG)


class CosmosState:
    """Hands out container clients; creates database and containers once, when asked to."""

    def __init__(self, client: CosmosClient, database: str, create: bool) -> None:
        self.client = client
        self._database_name = database
        self._create = create
        self._ready: DatabaseProxy | None = None
        self._lock = asyncio.Lock()

    async def database(self) -> DatabaseProxy:
        if self._ready is None:
            async with self._lock:
                if self._ready is None:
                    self._ready = await self._open()
        return self._ready

    async def container(self, name: str) -> ContainerProxy:
        if name not in CONTAINERS:
            raise KeyError(f"unknown container {name!r}")
        return (await self.database()).get_container_client(name)

    async def _open(self) -> DatabaseProxy:
        if not self._create:
            return self.client.get_database_client(self._database_name)
        # "If not exists" reads, then creates: instances starting together race between the two,
        # and the loser's create gets a 409. The resource exists then, which is all that is asked.
        with contextlib.suppress(CosmosResourceExistsError):
            await self.client.create_database_if_not_exists(self._database_name)
        db = self.client.get_database_client(self._database_name)
        for name, pk in CONTAINERS.items():
            with contextlib.suppress(CosmosResourceExistsError):
                await db.create_container_if_not_exists(name, partition_key=PartitionKey(path=pk),
                                                        default_ttl=DEFAULT_TTLS.get(name))
        return db

    async def find(self, name: str, tenant: str, item_id: str) -> dict[str, Any] | None:
        """One document of a tenant-partitioned container, or None: a point read, the cheapest
        request Cosmos serves (1 RU for 1 KB, no query engine)."""
        try:
            return dict(await (await self.container(name)).read_item(item_id, partition_key=tenant))
        except CosmosResourceNotFoundError:
            return None

    async def ping(self) -> None:
        """Raise if Cosmos does not answer: a cheap read of the database's properties."""
        await (await self.database()).read()

    async def close(self) -> None:
        await self.client.close()
