"""What the tenants-at-run-time tests share: their TENANTS (which seed a database of their own), a
short TENANT_REFRESH_S, and a look into that database and the apps' logs."""

from __future__ import annotations

import json
from typing import Any

import httpx
from azure.cosmos import CosmosClient

from shared.core.settings import hash_api_key
from tools.localenv import LocalStack

ADMIN_KEY = "tenants-admin-key"  # the `ops` tenant: role admin
USER_KEY = "tenants-user-key"  # the `team` tenant: a user, no admin role
REFRESH_S = 2.0  # TENANT_REFRESH_S of these apps: the bound every change must meet
PROMPT = "Tell me one fact about the tides in the north channel."
MAX_TOKENS = 16  # below the simulator's shortest answer: every answer uses exactly this many
CHAT = {"messages": [{"role": "user", "content": PROMPT}], "max_tokens": MAX_TOKENS}
TENANTS = json.dumps([
    {"tenant": "ops", "keys": [{"id": "ops-1", "sha256": hash_api_key(ADMIN_KEY)}], "roles": ["admin"]},
    {"tenant": "team", "keys": [{"id": "team-1", "sha256": hash_api_key(USER_KEY)}],
     "limits": {"daily_tokens": 1_000_000, "cache_ttl_s": 0}, "log_content": True},
])


def app_settings(database: str) -> dict[str, str]:
    """A database per test module: the directory it seeds is its own, whatever other apps seeded."""
    return {"TENANTS": TENANTS, "TENANT_REFRESH_S": str(REFRESH_S), "COSMOS_DATABASE": database,
            "SEMANTIC_CACHE_MODE": "off"}


def admin(url: str) -> httpx.Client:
    return httpx.Client(base_url=f"{url}/api/admin", headers={"x-api-key": ADMIN_KEY}, timeout=30)


def chat(url: str, key: str) -> httpx.Response:
    return httpx.post(f"{url}/api/v1/chat", headers={"x-api-key": key}, json=CHAT, timeout=60)


def documents(stack: LocalStack, database: str, container: str) -> list[dict[str, Any]]:
    """Every document of a container, as Cosmos holds it."""
    settings = stack.settings
    client = CosmosClient(settings["COSMOS_ENDPOINT"], settings["COSMOS_KEY"], enable_endpoint_discovery=False)
    items = client.get_database_client(database).get_container_client(container).query_items(
        "SELECT * FROM c", enable_cross_partition_query=True)
    return list(items)


def app_log(stack: LocalStack, name: str) -> str:
    return (stack.data_dir / "logs" / f"{name}.log").read_text(errors="replace")
