"""Four app processes, one directory: a change made through one instance is in force on every
instance within TENANT_REFRESH_S (docs/admin.md), and a key's own budget holds across them all."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Iterator

import httpx
import pytest

from shared.core.tokens import prompt_tokens
from tests.e2e.admin_stack import CHAT, MAX_TOKENS, PROMPT, REFRESH_S, USER_KEY, admin, app_settings, chat
from tools.localenv import NO_JOBS, LocalStack, free_port

pytestmark = pytest.mark.e2e
DATABASE = "aigw-tenants-everywhere"
PER_REQUEST = prompt_tokens("gpt-4o-mini", [("user", PROMPT)]) + MAX_TOKENS
POLL_S = 0.1


@pytest.fixture(scope="module")
def four_apps(stack: LocalStack) -> Iterator[list[str]]:
    urls = []
    for i in range(4):
        port = free_port()
        stack.start_app(extra_env={**app_settings(DATABASE), **NO_JOBS}, name=f"tenants-{i}", port=port)
        urls.append(f"http://127.0.0.1:{port}")
    yield urls
    for i in range(4):
        stack.stop(f"tenants-{i}")


def delays(urls: list[str], since: float, seen: Callable[[str], bool]) -> list[float]:
    """Per instance, how long after `since` it first answered as `seen` asks (polled; None for
    an instance that had not within twice the bound). Printed, so the run shows the real delays."""
    found: list[float] = []
    for url in urls:
        while not seen(url) and time.monotonic() - since < 2 * REFRESH_S + 5:
            time.sleep(POLL_S)
        found.append(round(time.monotonic() - since, 2))
    return found


def settled_everywhere(urls: list[str], since: float, seen: Callable[[str], bool]) -> list[bool]:
    """The bound itself: once TENANT_REFRESH_S has passed since the change, the very next request
    on every instance sees it (no retry, no polling)."""
    time.sleep(max(0.0, since + REFRESH_S - time.monotonic()) + 0.05)
    return [seen(url) for url in urls]


def test_a_key_made_on_one_instance_works_on_all_and_a_revoked_one_is_refused_on_all(
        four_apps: list[str]) -> None:
    for url in four_apps:  # every instance has read the directory once, before the change
        assert chat(url, USER_KEY).status_code == 200
    with admin(four_apps[0]) as api:
        made = time.monotonic()
        key = api.post("/tenants/team/keys", json={"id": "everywhere"}).json()["key"]
    def works(url: str) -> bool:
        return chat(url, key).status_code == 200

    print(f"\nnew key accepted after (s), per instance: {delays(four_apps, made, works)}; bound {REFRESH_S} s")
    assert settled_everywhere(four_apps, made, works) == [True] * 4

    with admin(four_apps[1]) as api:
        revoked = time.monotonic()
        assert api.delete("/tenants/team/keys/everywhere").status_code == 204
    def refused(url: str) -> bool:
        return chat(url, key).status_code == 401

    measured = delays(four_apps, revoked, refused)
    print(f"revoked key refused after (s), per instance: {measured}; bound {REFRESH_S} s")
    assert settled_everywhere(four_apps, revoked, refused) == [True] * 4
    assert refused(four_apps[1])  # the instance that revoked it refuses it at once
    assert [chat(url, USER_KEY).status_code for url in four_apps] == [200] * 4  # the others' keys still work


def test_a_raised_limit_takes_effect_on_every_instance(four_apps: list[str]) -> None:
    with admin(four_apps[0]) as api:
        made = api.post("/tenants", json={"tenant": "capped", "limits": {"daily_tokens": PER_REQUEST // 2}}).json()
    key = made["key"]["key"]
    time.sleep(REFRESH_S + 0.05)
    for url in four_apps:
        refused = chat(url, key)
        assert refused.status_code == 429 and refused.json()["scope"] == "tenant", refused.text
        assert refused.json()["type"].endswith("/budget-exhausted")
    with admin(four_apps[2]) as api:
        raised = time.monotonic()
        assert api.patch("/tenants/capped", json={"limits": {"daily_tokens": 100 * PER_REQUEST}}).status_code == 200
    def works(url: str) -> bool:
        return chat(url, key).status_code == 200

    assert settled_everywhere(four_apps, raised, works) == [True] * 4


def test_a_keys_own_budget_refuses_with_scope_key_while_its_tenant_has_room(four_apps: list[str]) -> None:
    """Room for 5 requests in the key's day, 12 sent at once over four instances: exactly 5 pass
    (the key's window is reserved and settled like the tenant's), the rest are refused naming
    the key, and the tenant's other key still works."""
    with admin(four_apps[0]) as api:
        limit = 5 * PER_REQUEST + PER_REQUEST // 2
        key = api.post("/tenants/team/keys", json={"id": "small", "limits": {"daily_tokens": limit}}).json()["key"]
        time.sleep(REFRESH_S + 0.05)
        statuses, scopes = asyncio.run(burst(four_apps, key, 12))
        assert statuses == Counter({200: 5, 429: 7}), statuses
        assert scopes == {"key"}
        # Each answer's settlement is written just after the answer went out: read once they landed.
        deadline = time.monotonic() + 15
        while True:
            usage = api.get("/tenants/team/usage").json()
            small = next(k for k in usage["keys"] if k["id"] == "small")
            if small["daily"]["tokens_used"] == 5 * PER_REQUEST or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert small["daily"]["tokens_used"] == 5 * PER_REQUEST and small["daily"]["token_limit"] == limit
        assert usage["daily"]["tokens_used"] + PER_REQUEST <= usage["daily"]["token_limit"]  # the tenant has room
    assert [chat(url, USER_KEY).status_code for url in four_apps] == [200] * 4


async def burst(urls: list[str], key: str, count: int) -> tuple[Counter[int], set[str]]:
    async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=count)) as client:
        async def one(i: int) -> httpx.Response:
            return await client.post(f"{urls[i % len(urls)]}/api/v1/chat", headers={"x-api-key": key}, json=CHAT)

        answers = await asyncio.gather(*(one(i) for i in range(count)))
    return Counter(a.status_code for a in answers), {a.json()["scope"] for a in answers if a.status_code == 429}
