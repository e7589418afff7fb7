"""The jobs queue as the app itself writes to it (re-queues with a delay, the sweeper): Storage queue SDK."""

from __future__ import annotations

import math
from typing import Any, Protocol

from azure.core.credentials_async import AsyncTokenCredential
from azure.core.exceptions import AzureError
from azure.storage.queue.aio import QueueClient

from shared.core.errors import ConfigError, DependencyFailed
from shared.core.settings import Settings

# Storage holds a message invisible for at most 7 days.
MAX_VISIBILITY_S = 7 * 24 * 3600


class JobQueue(Protocol):
    async def send(self, text: str, delay_s: float = 0) -> None: ...
    async def close(self) -> None: ...


class StorageJobQueue:
    """Messages as plain text: host.json sets messageEncoding none, so the trigger reads them as sent."""

    def __init__(self, client: QueueClient) -> None:
        self._client = client

    async def send(self, text: str, delay_s: float = 0) -> None:
        delay = min(MAX_VISIBILITY_S, max(0, math.ceil(delay_s)))
        try:
            await self._client.send_message(text, visibility_timeout=delay or None)
        except AzureError:
            raise DependencyFailed("The jobs queue is unavailable.") from None

    async def close(self) -> None:
        await self._client.close()


def storage_job_queue(settings: Settings, credential: AsyncTokenCredential | None) -> StorageJobQueue:
    """The host's own storage connection: a connection string locally (Azurite), the identity in Azure
    (`AzureWebJobsStorage__accountName` or `__queueServiceUri`, as the host reads them)."""
    # The SDK's retries are the only layer on Storage (3 tries, as the host's .NET client).
    options: dict[str, Any] = {"retry_total": 3, "initial_backoff": 1, "increment_base": 2}
    if settings.azure_web_jobs_storage is not None:
        return StorageJobQueue(QueueClient.from_connection_string(
            settings.azure_web_jobs_storage.get_secret_value(), settings.jobs_queue, **options))
    url = settings.storage_queue_service_uri or (
        f"https://{settings.storage_account_name}.queue.core.windows.net" if settings.storage_account_name else None)
    if url is None:
        raise ConfigError("AzureWebJobsStorage: set a connection string, or AzureWebJobsStorage__accountName "
                          "(or __queueServiceUri) with the managed identity")
    if credential is None:
        raise ConfigError("AzureWebJobsStorage__accountName needs the managed identity (AZURE_CLIENT_ID)")
    return StorageJobQueue(QueueClient(url, settings.jobs_queue, credential=credential, **options))
