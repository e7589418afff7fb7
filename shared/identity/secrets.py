"""Secrets behind one port: Key Vault through managed identity in Azure, a local map elsewhere."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from azure.core.exceptions import AzureError, ResourceNotFoundError
from pydantic import SecretStr

from shared.core.errors import ConfigError

if TYPE_CHECKING:
    from azure.keyvault.secrets.aio import SecretClient  # loaded only where Key Vault is configured


class SecretProvider(Protocol):
    async def get(self, name: str, *, read_since: float | None = None) -> str:
        """The secret's current value. `read_since` (a time.monotonic() value): re-read it unless
        the cached value was read at or after then (a model endpoint refused the key it was sent
        at that time; requests refused together share one re-read)."""
        ...

    async def close(self) -> None: ...


class LocalSecrets:
    """LOCAL_SECRETS: for machines without Key Vault (the local emulators)."""

    def __init__(self, values: dict[str, SecretStr]) -> None:
        self._values = values

    async def get(self, name: str, *, read_since: float | None = None) -> str:
        try:
            return self._values[name].get_secret_value()
        except KeyError:
            raise ConfigError(f"secret {name!r} is not in LOCAL_SECRETS") from None

    async def close(self) -> None:
        return None


@dataclass
class _Cached:
    value: str
    read_at: float


class KeyVaultSecrets:
    """Reads secrets with the app's credential and keeps each for `ttl_s`, so a secret rotated in
    Key Vault takes effect without a restart. Values stay in memory only, never logged."""

    def __init__(self, client: SecretClient, *, ttl_s: float = 300.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._client = client
        self._ttl_s = ttl_s
        self._clock = clock
        self._cache: dict[str, _Cached] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self.reads = 0

    async def get(self, name: str, *, read_since: float | None = None) -> str:
        cached = self._cache.get(name)
        if cached is not None and self._fresh(cached, read_since):
            return cached.value
        async with self._locks.setdefault(name, asyncio.Lock()):  # concurrent misses share one read
            cached = self._cache.get(name)
            if cached is not None and self._fresh(cached, read_since):
                return cached.value
            started = self._clock()
            try:
                value = await self._read(name)
            except ConfigError:
                if cached is None:
                    raise
                # Key Vault is unreachable: the last value we read beats failing every request.
                return cached.value
            self._cache[name] = _Cached(value, started)
            return value

    def _fresh(self, cached: _Cached, read_since: float | None) -> bool:
        if read_since is not None:
            return cached.read_at >= read_since
        return self._clock() - cached.read_at < self._ttl_s

    async def _read(self, name: str) -> str:
        self.reads += 1
        try:
            secret = await self._client.get_secret(name)
        except ResourceNotFoundError:
            raise ConfigError(f"secret {name!r} is not in the Key Vault") from None
        except AzureError as exc:
            raise ConfigError(f"secret {name!r} could not be read ({type(exc).__name__})") from None
        if secret.value is None:
            raise ConfigError(f"secret {name!r} has no value")
        return secret.value

    async def close(self) -> None:
        await self._client.close()
