"""The Semantic Kernel engine over the model groups, built on first use: the OpenAI-compatible path
needs only the groups, so an instance that serves it never loads Semantic Kernel or the openai SDK
(about 2.5 s of CPU and 120 MB)."""

from __future__ import annotations

import asyncio
import importlib
import logging
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from azure.core.credentials_async import AsyncTokenCredential

    from shared.core.models import ChatMessage
    from shared.core.values import Completion, Delta, SamplingParams
    from shared.identity.secrets import SecretProvider
    from shared.upstream.groups import ModelGroups
    from shared.upstream.kernel import KernelEngine

log = logging.getLogger(__name__)


class LazyEngine:
    """The native endpoints' and jobs' engine: the Semantic Kernel engine over the groups, imported
    in a thread (the event loop keeps serving meanwhile) and built by the first call that needs it.
    A failed build is not kept: the next call tries again."""

    def __init__(self, groups: ModelGroups, *, credential: AsyncTokenCredential | None, secrets: SecretProvider,
                 timeout_s: float) -> None:
        self.groups = groups
        self._credential = credential
        self._secrets = secrets
        self._timeout_s = timeout_s
        self._engine: KernelEngine | None = None
        self._lock = asyncio.Lock()

    @property
    def default_model(self) -> str:
        return self.groups.default_model

    def resolve_model(self, requested: str | None) -> str | None:
        return self.groups.resolve_model(requested)

    def long_after_s(self, model: str, work_tokens: int) -> float | None:
        return self.groups.long_after_s(model, work_tokens)

    async def kernel(self) -> KernelEngine:
        if self._engine is None:
            async with self._lock:
                if self._engine is None:
                    started = time.perf_counter()
                    module = await asyncio.to_thread(importlib.import_module, "shared.upstream.kernel")
                    self._engine = await module.build_engine(self.groups, credential=self._credential,
                                                             secrets=self._secrets, timeout_s=self._timeout_s)
                    # How long the first native call or job of an instance waited for the kernel.
                    log.info("semantic kernel loaded in %.2f s", time.perf_counter() - started)
        return self._engine

    @property
    def loaded(self) -> bool:
        return self._engine is not None

    async def chat(self, model: str, messages: list[ChatMessage], params: SamplingParams) -> Completion:
        return await (await self.kernel()).chat(model, messages, params)

    async def summarize(self, model: str, text: str, style: str, max_words: int, params: SamplingParams) -> Completion:
        return await (await self.kernel()).summarize(model, text, style, max_words, params)

    async def stream(self, model: str, messages: list[ChatMessage], params: SamplingParams) -> AsyncIterator[Delta]:
        async for delta in (await self.kernel()).stream(model, messages, params):
            yield delta

    async def close(self) -> None:
        if self._engine is not None:
            await self._engine.close()
