"""KeyVaultSecrets with the real azure-keyvault-secrets and azure-identity clients, against a local
Key Vault over HTTPS (test CA) and a local managed-identity endpoint."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from azure.identity.aio import ManagedIdentityCredential
from azure.keyvault.secrets.aio import SecretClient

from shared.core.errors import ConfigError
from shared.identity.secrets import KeyVaultSecrets
from tests.support.identity.issuer import IDENTITY_HEADER, Issuer
from tests.support.identity.keyvault import VAULT_RESOURCE, KeyVault, LocalCA
from tests.support.identity.serve import Served


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> LocalCA:
    return LocalCA.create(tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="module")
def vault(issuer: Issuer, ca: LocalCA) -> Iterator[KeyVault]:
    kv = KeyVault(issuer)
    served = Served(kv.app(), certfile=ca.cert_pem, keyfile=ca.key_pem)
    kv.url = served.url
    yield kv
    served.stop()


@pytest.fixture
async def client(issuer: Issuer, vault: KeyVault, ca: LocalCA,
                 monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[SecretClient]:
    # The App Service / Functions managed-identity environment, as the platform sets it.
    monkeypatch.setenv("IDENTITY_ENDPOINT", f"{issuer.url}/msi/token")
    monkeypatch.setenv("IDENTITY_HEADER", IDENTITY_HEADER)
    credential = ManagedIdentityCredential()
    # The vault is on 127.0.0.1, not *.vault.azure.net: only tests turn the resource check off.
    async with SecretClient(vault.url, credential, verify_challenge_resource=False,
                            connection_verify=str(ca.ca_pem)) as secret_client:
        yield secret_client
    await credential.close()


async def test_the_sdk_answers_the_challenge_with_a_managed_identity_token(issuer: Issuer, vault: KeyVault,
                                                                           client: SecretClient) -> None:
    vault.set("model-key", "first")
    issued, challenges = len(issuer.issued), vault.challenges
    secrets = KeyVaultSecrets(client, ttl_s=300, clock=Clock())
    assert await secrets.get("model-key") == "first"
    assert vault.challenges == challenges + 1, "the first request is the SDK's challenge round"
    assert [c["aud"] for c in issuer.issued[issued:]] == [VAULT_RESOURCE]
    with pytest.raises(ConfigError, match="not in the Key Vault"):
        await secrets.get("no-such-secret")


async def test_a_rotated_secret_is_read_after_the_ttl_or_at_once_on_refresh(vault: KeyVault,
                                                                            client: SecretClient) -> None:
    clock = Clock()
    vault.set("rotating", "v1")
    secrets = KeyVaultSecrets(client, ttl_s=300, clock=clock)
    assert await secrets.get("rotating") == "v1"
    vault.set("rotating", "v2")
    clock.now += 299
    assert await secrets.get("rotating") == "v1", "cached within the TTL"
    clock.now += 1
    assert await secrets.get("rotating") == "v2", "re-read once the TTL is over"
    vault.set("rotating", "v3")
    clock.now += 1
    refused_at = clock.now  # a model endpoint refused the key sent now
    clock.now += 1
    assert await secrets.get("rotating", read_since=refused_at) == "v3", "a 401 re-reads at once"
    reads = secrets.reads
    vault.set("rotating", "v4")
    # Other requests refused at the same time share that read: a burst of 401s costs one.
    assert await secrets.get("rotating", read_since=refused_at) == "v3"
    assert secrets.reads == reads


async def test_when_the_vault_is_unreachable_the_last_value_is_kept(vault: KeyVault, client: SecretClient) -> None:
    clock = Clock()
    vault.set("sticky", "kept")
    secrets = KeyVaultSecrets(client, ttl_s=10, clock=clock)
    assert await secrets.get("sticky") == "kept"
    vault.versions.pop("sticky")  # the read now fails (404 stands in for any failure)
    clock.now += 11
    assert await secrets.get("sticky") == "kept"
