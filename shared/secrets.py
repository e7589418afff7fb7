"""Secrets behind one port: Key Vault through managed identity in Azure, a local map elsewhere."""

from __future__ import annotations

from typing import Protocol

from azure.core.exceptions import AzureError, ResourceNotFoundError
from azure.keyvault.secrets.aio import SecretClient
from pydantic import SecretStr

from shared.errors import ConfigError


class SecretProvider(Protocol):
    async def get(self, name: str) -> str: ...

    async def close(self) -> None: ...


class LocalSecrets:
    """LOCAL_SECRETS: for machines without Key Vault (the local emulators)."""

    def __init__(self, values: dict[str, SecretStr]) -> None:
        self._values = values

    async def get(self, name: str) -> str:
        try:
            return self._values[name].get_secret_value()
        except KeyError:
            raise ConfigError(f"secret {name!r} is not in LOCAL_SECRETS") from None

    async def close(self) -> None:
        return None


class KeyVaultSecrets:
    """Reads secrets with the app's credential; values are kept in memory only, never logged."""

    def __init__(self, client: SecretClient) -> None:
        self._client = client
        self._cache: dict[str, str] = {}

    async def get(self, name: str) -> str:
        if name not in self._cache:
            try:
                secret = await self._client.get_secret(name)
            except ResourceNotFoundError:
                raise ConfigError(f"secret {name!r} is not in the Key Vault") from None
            except AzureError as exc:
                raise ConfigError(f"secret {name!r} could not be read ({type(exc).__name__})") from None
            if secret.value is None:
                raise ConfigError(f"secret {name!r} has no value")
            self._cache[name] = secret.value
        return self._cache[name]

    async def close(self) -> None:
        await self._client.close()
