"""Identity end to end (issue 13): the app on its own process, with its managed identity, Key Vault
and Entra ID all local protocol servers, and model endpoints behind a gate that checks their keys."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import openai
import pytest
from azure.identity import ManagedIdentityCredential, get_bearer_token_provider

from shared.core.settings import hash_api_key
from tests.e2e.conftest import assert_openai_error, assert_problem
from tests.support.identity.gate import COGNITIVE_RESOURCE, Gate
from tests.support.identity.issuer import API_AUDIENCE, IDENTITY_HEADER, TENANT_ID, Identity, Issuer
from tests.support.identity.keyvault import KeyVault, LocalCA
from tests.support.identity.serve import Served
from tools.localenv import NO_JOBS, LocalStack, free_port

pytestmark = pytest.mark.e2e

GATEWAY_MI = Identity("aaaaaaaa-0000-0000-0000-000000000001", "aaaaaaaa-0000-0000-0000-00000000000a")
CALLER = Identity("bbbbbbbb-0000-0000-0000-000000000002", "bbbbbbbb-0000-0000-0000-00000000000b",
                  roles={API_AUDIENCE: ("AI.User",)})
NO_ROLE = Identity("cccccccc-0000-0000-0000-000000000003", "cccccccc-0000-0000-0000-00000000000c")
ACME_KEY = "acme-identity-test-key"
MI_TOKEN_LIFETIME_S = 3
NO_STORE = {"Cache-Control": "no-store"}  # every request reaches a model endpoint


@dataclass
class World:
    app: str
    issuer: Issuer
    vault: KeyVault
    keyed: Gate  # model endpoint with a key from Key Vault
    refusing: Gate  # refuses every key
    mi: Gate  # managed identity only


def _endpoint(name: str, url: str, model: str, priority: int = 0, secret: str | None = None) -> dict[str, object]:
    config: dict[str, object] = {"name": name, "kind": "azure_openai", "endpoint": url, "deployment": "chat",
                                 "model": model, "priority": priority}
    return {**config, "api_key_secret": secret} if secret else config


@pytest.fixture(scope="module")
def world(stack: LocalStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    issuer = Issuer([GATEWAY_MI, CALLER, NO_ROLE], default_client_id=GATEWAY_MI.client_id)
    issuer.lifetime_s[COGNITIVE_RESOURCE] = MI_TOKEN_LIFETIME_S
    ca = LocalCA.create(tmp_path_factory.mktemp("identity-ca"))
    vault = KeyVault(issuer)
    vault.set("model-key", "key-1")
    vault.set("refusing-key", "refused-1")
    gates = [Gate(stack.sim_url("primary"), issuer, keys={"key-1"}), Gate(stack.sim_url("primary"), issuer),
             Gate(stack.sim_url("primary"), issuer)]
    served = [Served(issuer.app()), Served(vault.app(), certfile=ca.cert_pem, keyfile=ca.key_pem),
              *(Served(g.app()) for g in gates)]
    issuer.url, vault.url = served[0].url, served[1].url
    for gate, server in zip(gates, served[2:], strict=True):
        gate.url = server.url
    keyed, refusing, mi = gates
    tenants = [
        {"tenant": "acme", "keys": [{"id": "acme-1", "sha256": hash_api_key(ACME_KEY)}],
         "entra": [{"tid": TENANT_ID, "client_id": CALLER.client_id}]},
        {"tenant": "no-role", "entra": [{"tid": TENANT_ID, "client_id": NO_ROLE.client_id}]},
    ]
    endpoints = [_endpoint("keyed", keyed.url, "gpt-4o-mini", secret="model-key"),
                 _endpoint("mi", mi.url, "gpt-4o"),
                 _endpoint("refusing", refusing.url, "gpt-4.1", secret="refusing-key"),
                 _endpoint("backup", mi.url, "gpt-4.1", priority=1)]
    price = {"input_per_1m": 0.15, "output_per_1m": 0.6}
    port = free_port()
    stack.start_app(name="identity-app", port=port, extra_env={
        "TENANTS": json.dumps(tenants), "AI_ENDPOINTS": json.dumps(endpoints),
        "MODEL_PRICES": json.dumps(dict.fromkeys(("gpt-4o-mini", "gpt-4o", "gpt-4.1"), price)),
        "SEMANTIC_CACHE_MODE": "off",
        # What App Service and Functions set for a managed identity:
        "IDENTITY_ENDPOINT": f"{issuer.url}/msi/token", "IDENTITY_HEADER": IDENTITY_HEADER,
        "KEY_VAULT_URI": vault.url, "KEY_VAULT_VERIFY_CHALLENGE_RESOURCE": "false",
        "SSL_CERT_FILE": str(ca.ca_pem),  # aiohttp (the Key Vault SDK's transport) trusts the test CA
        "ENTRA_AUTHORITY": issuer.url, "ENTRA_AUDIENCES": json.dumps([API_AUDIENCE]), **NO_JOBS,
    })
    yield World(f"http://127.0.0.1:{port}", issuer, vault, keyed, refusing, mi)
    stack.stop("identity-app")
    for server in served:
        server.stop()


def chat(world: World, model: str, **headers: str) -> httpx.Response:
    body = {"messages": [{"role": "user", "content": f"Name a harbour. {uuid.uuid4()}"}], "max_tokens": 16}
    return httpx.post(f"{world.app}/api/openai/deployments/{model}/chat/completions?api-version=2024-10-21",
                      json=body, headers={"api-key": ACME_KEY, **NO_STORE, **headers}, timeout=30)


def test_the_openai_sdk_with_a_managed_identity_token_provider_completes_a_chat(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    # The caller is itself an Azure app: its managed identity asks for a token for our API.
    monkeypatch.setenv("IDENTITY_ENDPOINT", f"{world.issuer.url}/msi/token")
    monkeypatch.setenv("IDENTITY_HEADER", IDENTITY_HEADER)
    credential = ManagedIdentityCredential(client_id=CALLER.client_id)
    provider = get_bearer_token_provider(credential, f"{API_AUDIENCE}/.default")
    client = openai.AzureOpenAI(azure_endpoint=f"{world.app}/api", azure_ad_token_provider=provider,
                                api_version="2024-10-21", max_retries=0, default_headers=NO_STORE)
    answer = client.chat.completions.create(model="keyed", max_tokens=16,
                                            messages=[{"role": "user", "content": "Name a harbour."}])
    assert answer.choices[0].message.content
    assert any(c["aud"] == API_AUDIENCE and c["appid"] == CALLER.client_id for c in world.issuer.issued)
    usage = httpx.get(f"{world.app}/api/v1/usage", headers={"authorization": f"Bearer {provider()}"}, timeout=30)
    assert usage.status_code == 200 and usage.json()["tenant"] == "acme"
    client.close()


def test_refusals_name_the_schemes_and_tell_401_from_403(world: World) -> None:
    url = f"{world.app}/api/v1/usage"
    missing = httpx.get(url, timeout=30)
    assert_problem(missing, 401)
    assert missing.headers["www-authenticate"] == 'Bearer realm="aigw", ApiKey realm="aigw", header="x-api-key"'
    expired = world.issuer.mint(version=1, appid=CALLER.client_id, oid=CALLER.oid, roles=["AI.User"],
                                exp=int(time.time()) - 600)
    refused = httpx.get(url, headers={"authorization": f"Bearer {expired}"}, timeout=30)
    assert "expired" in assert_problem(refused, 401)["detail"]
    assert refused.headers["www-authenticate"].startswith('Bearer error="invalid_token"')
    no_role, _ = world.issuer.token_for(NO_ROLE, API_AUDIENCE)
    assert "AI.User" in assert_problem(httpx.get(url, headers={"authorization": f"Bearer {no_role}"}, timeout=30),
                                       403)["detail"]
    stranger = world.issuer.mint(version=1, appid=str(uuid.uuid4()), roles=["AI.User"])
    assert_problem(httpx.get(url, headers={"authorization": f"Bearer {stranger}"}, timeout=30), 403)
    assert httpx.get(url, headers={"x-api-key": ACME_KEY}, timeout=30).status_code == 200


def test_an_endpoint_answering_401_is_called_once_then_failed_over_or_given_up(world: World) -> None:
    world.refusing.reset()
    assert chat(world, "refusing").status_code == 200  # the backup answered
    assert world.refusing.statuses == {401: 1}
    world.keyed.keys, world.keyed.statuses = {"not-the-key"}, world.keyed.statuses.__class__()
    try:
        assert_openai_error(chat(world, "keyed"), 503, "service_unavailable")  # its only endpoint: one call
        assert world.keyed.statuses == {401: 1}
    finally:
        world.keyed.keys = {world.vault.versions["model-key"][-1][1]}


def test_a_key_rotated_in_key_vault_costs_one_extra_call_then_none(world: World) -> None:
    world.vault.set("model-key", "key-2")
    world.keyed.keys = {"key-2"}  # the old key is regenerated: it stops working at once
    world.keyed.reset()
    assert chat(world, "keyed").status_code == 200
    assert world.keyed.statuses == {401: 1, 200: 1}
    world.keyed.reset()
    assert chat(world, "keyed").status_code == 200
    assert world.keyed.statuses == {200: 1}


async def test_requests_keep_succeeding_while_the_key_rotates(world: World) -> None:
    statuses: list[int] = []
    done = 0

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal done
        for _ in range(5):
            body = {"messages": [{"role": "user", "content": f"Name a port. {uuid.uuid4()}"}], "max_tokens": 8}
            response = await client.post("/api/openai/deployments/keyed/chat/completions?api-version=2024-10-21",
                                         json=body)
            statuses.append(response.status_code)
            done += 1
            if done == 10:  # mid-run, without a restart
                world.vault.set("model-key", "key-3")
                world.keyed.keys = {"key-3"}

    world.keyed.reset()
    async with httpx.AsyncClient(base_url=world.app, headers={"api-key": ACME_KEY, **NO_STORE},
                                 timeout=30) as client:
        await asyncio.gather(*(worker(client) for _ in range(6)))
    assert statuses == [200] * 30
    assert world.keyed.statuses[401] >= 1, "the old key was refused, and the re-read key took over"
    assert world.keyed.statuses[200] == 30


def test_a_managed_identity_token_that_expires_mid_run_is_refreshed(world: World) -> None:
    assert chat(world, "mi").status_code == 200
    first = [c for c in world.issuer.issued if c["aud"] == COGNITIVE_RESOURCE][-1]
    while time.time() <= first["exp"] + 1:  # let the token the app holds expire
        time.sleep(0.2)
    assert chat(world, "mi").status_code == 200
    fresh = [c for c in world.issuer.issued if c["aud"] == COGNITIVE_RESOURCE][-1]
    assert fresh["exp"] > first["exp"] and fresh["appid"] == GATEWAY_MI.client_id
    assert world.mi.statuses[401] == 0, "no call went out with an expired token"
    assert len(world.mi.tokens_seen) >= 2
