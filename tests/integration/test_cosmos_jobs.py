"""The job store on the Cosmos emulator: conditional claims, leases, tenant isolation."""

from __future__ import annotations

import uuid

import pytest

from shared.composition import Container
from shared.core.errors import DependencyFailed
from shared.jobs.service import CosmosJobStore


def new_id() -> str:
    return uuid.uuid4().hex


async def test_containers_exist_with_their_partition_keys(container: Container) -> None:
    db = await container.cosmos.database()
    keys = {}
    for name in ("cache", "budgets", "ratelimits", "jobs"):
        props = await db.get_container_client(name).read()
        keys[name] = props["partitionKey"]["paths"]
    assert keys == {"cache": ["/tenant"], "budgets": ["/tenant"], "ratelimits": ["/key"], "jobs": ["/tenant"]}


async def test_a_claim_is_exclusive_until_its_lease_ends(container: Container) -> None:
    store = CosmosJobStore(container.cosmos)
    job = new_id()
    claimed = await store.claim("t1", job, {"kind": "chat"}, lease_s=30)
    assert claimed is not None and claimed["status"] == "running" and claimed["attempts"] == 1
    with pytest.raises(DependencyFailed):
        await store.claim("t1", job, {"kind": "chat"}, lease_s=30)
    await store.update("t1", job, {"lease_until": 0})
    again = await store.claim("t1", job, {"kind": "chat"}, lease_s=30)
    assert again is not None and again["attempts"] == 2


async def test_a_finished_job_is_not_claimed_again(container: Container) -> None:
    store = CosmosJobStore(container.cosmos)
    job = new_id()
    await store.claim("t1", job, {"kind": "chat"}, lease_s=30)
    await store.update("t1", job, {"status": "succeeded", "result": {"content": "x"}})
    assert await store.claim("t1", job, {"kind": "chat"}, lease_s=30) is None


async def test_a_tenant_cannot_read_another_tenants_job(container: Container) -> None:
    store = CosmosJobStore(container.cosmos)
    job = new_id()
    await store.create("tenant-a", job, {"kind": "chat", "status": "queued"})
    assert (await store.get("tenant-a", job) or {}).get("status") == "queued"
    assert await store.get("tenant-b", job) is None
