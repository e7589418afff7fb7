"""The local Cosmos emulator answers as Cosmos does where the app depends on it (tools/emulators/):
a transactional batch all or nothing, and a write that asks for no document gets none."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from azure.cosmos import PartitionKey
from azure.cosmos.aio import ContainerProxy
from azure.cosmos.exceptions import CosmosBatchOperationError

from shared.core.settings import Settings
from shared.state.cosmos import cosmos_client


@pytest.fixture
async def container(stack_settings: Settings) -> AsyncIterator[ContainerProxy]:
    async with cosmos_client(stack_settings, None) as client:
        database = await client.create_database_if_not_exists("emulator-checks")
        yield await database.create_container_if_not_exists(f"c{uuid.uuid4().hex[:8]}", PartitionKey("/tenant"))


def incr(n: int) -> list[dict[str, Any]]:
    return [{"op": "incr", "path": "/n", "value": n}]


async def test_a_batch_whose_check_fails_is_undone_whole(container: ContainerProxy) -> None:
    for doc_id in ("day", "month"):
        await container.create_item({"id": doc_id, "tenant": "t", "n": 0})
    await container.execute_item_batch([("patch", ("day", incr(5)), {"filter_predicate": "FROM c WHERE c.n <= 0"}),
                                        ("patch", ("month", incr(5)))], partition_key="t")
    with pytest.raises(CosmosBatchOperationError) as refused:
        await container.execute_item_batch([("patch", ("day", incr(1))),
                                            ("patch", ("month", incr(1)), {"filter_predicate": "FROM c WHERE c.n < 5"}),
                                            ("patch", ("day", incr(1)))], partition_key="t")
    assert refused.value.error_index == 1 and refused.value.status_code == 412
    assert [r["statusCode"] for r in refused.value.operation_responses] == [424, 412, 424]
    assert [(await container.read_item(d, "t"))["n"] for d in ("day", "month")] == [5, 5], "the first patch undone"


async def test_a_write_that_asks_for_no_document_gets_none(container: ContainerProxy) -> None:
    bodies: list[bytes] = []

    def hook(response: Any) -> None:
        bodies.append(response.http_response.body())

    await container.upsert_item({"id": "a", "tenant": "t", "n": 0}, no_response=True, raw_response_hook=hook)
    await container.upsert_item({"id": "b", "tenant": "t", "n": 0}, raw_response_hook=hook)
    assert bodies[0] == b"" and b'"id":"b"' in bodies[1]
    quiet = await container.execute_item_batch([("patch", ("a", incr(1)))], partition_key="t", no_response=True)
    loud = await container.execute_item_batch([("patch", ("a", incr(1)))], partition_key="t")
    assert "resourceBody" not in quiet[0] and quiet[0]["statusCode"] == 200
    assert loud[0]["resourceBody"]["n"] == 2
