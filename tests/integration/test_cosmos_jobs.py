"""The job store on the Cosmos emulator: conditional claims, leases, tenant isolation."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from shared.composition import Container
from shared.core.errors import DependencyFailed
from shared.jobs.service import CosmosJobStore
from shared.state.cosmos import CosmosState


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


class OvertakenStore(CosmosJobStore):
    """A delivery that another delivery overtakes: right after this one has read the job, the other
    claims it for real on the emulator, so this one writes over a document that has changed."""

    def __init__(self, state: CosmosState) -> None:
        super().__init__(state)
        self.rival = CosmosJobStore(state)
        self.overtaken = False

    async def get(self, tenant: str, job_id: str) -> dict[str, Any] | None:
        doc = await super().get(tenant, job_id)
        if doc is not None and not self.overtaken:
            self.overtaken = True
            assert await self.rival.claim(tenant, job_id, None, lease_s=30) is not None
        return doc


async def test_a_claim_over_a_job_claimed_since_it_was_read_is_refused(container: Container) -> None:
    # Cosmos's compare-and-swap (the ETag condition) is all that stands between the two: both read
    # the job queued, only the first write may win.
    store = OvertakenStore(container.cosmos)
    job = new_id()
    await store.create("t1", job, {"kind": "chat", "status": "queued"})
    with pytest.raises(DependencyFailed, match="changed while being claimed"):
        await store.claim("t1", job, None, lease_s=30)
    stored = await store.get("t1", job)
    assert stored is not None and (stored["status"], stored["attempts"]) == ("running", 1), "the rival's claim"


async def test_of_eight_deliveries_at_once_exactly_one_runs_the_job(container: Container) -> None:
    stores = [CosmosJobStore(container.cosmos) for _ in range(8)]
    job = new_id()
    await stores[0].create("t1", job, {"kind": "chat", "status": "queued"})
    outcomes = await asyncio.gather(*(s.claim("t1", job, None, lease_s=30) for s in stores), return_exceptions=True)
    claimed = [o for o in outcomes if isinstance(o, dict)]
    assert len(claimed) == 1, outcomes
    assert all(isinstance(o, DependencyFailed) for o in outcomes if not isinstance(o, dict)), outcomes
    assert (await stores[0].get("t1", job) or {}).get("attempts") == 1
