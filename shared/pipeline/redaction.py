"""Output redaction: the answer's text and tool-call arguments, whole or streamed, before the client
(and the cache, which stores what the client received) sees them (docs/safety.md).

A whole answer is redacted at once (the offline kinds, then Azure AI Language's where the tenant
asks for them). A stream keeps its framing: each chunk goes on, carrying what its field's Window
lets out (a StreamRedactor's bounded hold-back window, so a secret split across chunks is still
caught; then, for named entities, whole sentences sent to Language), and a choice's finish chunk
carries what was held; usage and finish reasons are untouched.
"""

from __future__ import annotations

import dataclasses
import re
from collections import Counter
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from shared.core.errors import SafetyUnavailable
from shared.core.values import Completion, Delta
from shared.moderation.service import SafetyServiceError
from shared.observability import safety as telemetry
from shared.safety.redact import DEFAULT_HOLD, StreamRedactor, redact
from shared.upstream.protocol import billed_text

if TYPE_CHECKING:
    from shared.core.safety_policy import SafetyPolicy
    from shared.moderation.language import Language
    from shared.pipeline.exchange import DeltaSource

# Named entities in a stream: text is sent to Language a group of sentences at a time, once this
# much has gathered and a sentence ends (or, with no sentence end, at the most), so a name is seldom
# cut and a stream makes a call per few hundred characters, not per chunk.
NAMED_MIN_CHARS = 200
NAMED_MAX_CHARS = 1000
_SENTENCE_END = re.compile(r"[.!?\n]\s")

Fields = dict[tuple[int, int], "Window"]  # (choice, -1 for content | tool call index) -> its window


@runtime_checkable
class ShapedSource(Protocol):
    """A model call whose answers are not chat completions (the Responses API's): it knows their
    shape, and redacts them with the exchange's Redactor (shared/pipeline/responses_redaction.py)."""

    def __call__(self) -> AsyncIterator[Delta]: ...

    def redacted(self, redactor: Redactor) -> DeltaSource: ...


class Redactor:
    """One exchange's redaction: its kinds, Azure AI Language where asked for, the counts it made."""

    def __init__(self, tenant: str, policy: SafetyPolicy, language: Language | None) -> None:
        self.tenant, self.policy = tenant, policy
        self.kinds = policy.builtin_kinds
        self.language = language if policy.language_kinds else None
        self.counts: Counter[str] = Counter()

    async def text(self, text: str) -> str:
        """One whole text: the offline kinds, then the named entities."""
        text, counts = redact(text, self.kinds) if self.kinds else (text, {})
        self.counts.update(counts)
        return await self.named(text)

    async def named(self, text: str) -> str:
        """The named entities of `text` replaced, where the tenant asks for them; `on_error` decides a failure."""
        if self.language is not None and text.strip():
            try:
                text, named = await self.language.redact(text, self.policy.language_kinds)
            except SafetyServiceError:
                if self.policy.on_error == "closed":
                    raise SafetyUnavailable("The PII service is unavailable and this tenant's policy refuses "
                                            "answers it could not redact. Retry shortly.") from None
                telemetry.unchecked(self.tenant, "language")
            else:
                self.counts.update(named)
        return text

    def report(self) -> None:
        telemetry.redacted(self.tenant, self.counts)

    def source(self, live: DeltaSource) -> DeltaSource:
        """`live` with every answer redacted: whole deltas at once, streamed ones through hold-back windows."""
        if isinstance(live, ShapedSource):
            return live.redacted(self)

        async def source() -> AsyncIterator[Delta]:
            fields: Fields = {}
            last: list[dict[str, Any]] = []  # the latest provider chunk: a held tail goes out in its framing
            try:
                try:
                    async for delta in live():
                        if delta.whole is not None and not delta.cached:
                            yield await self._whole(delta)
                        elif delta.cached:
                            yield delta  # stored redacted
                        elif delta.raw is not None:
                            last[:] = [delta.raw]
                            chunk = await self._chunk(delta.raw, fields)
                            yield dataclasses.replace(delta, content=billed_text(chunk))
                        else:
                            yield await self._native(delta, fields)
                except Exception:
                    # Cut: what the model sent before the cut still reaches the client, redacted, then the error.
                    if held := await _held(fields, last):
                        yield held
                    raise
                if held := await _held(fields, last):  # ended without a finish: what was held still goes out
                    yield held
            finally:
                for window in fields.values():
                    self.counts.update(window.builtin.counts)
                self.report()

        return source

    async def _whole(self, delta: Delta) -> Delta:
        whole = delta.whole
        assert whole is not None  # noqa: S101  the caller checked
        raw = whole.raw
        for choice in (raw or {}).get("choices") or []:
            message = choice.get("message") or {}
            if isinstance(message.get("content"), str):
                message["content"] = await self.text(message["content"])
            for call in message.get("tool_calls") or []:
                function = call.get("function") or {}
                if isinstance(function.get("arguments"), str):
                    function["arguments"] = await self.text(function["arguments"])
        content = whole.content
        if raw is None:
            content = await self.text(content)
        elif raw.get("choices"):
            first = (raw["choices"][0].get("message") or {}).get("content")
            content = first if isinstance(first, str) else content
        redacted: Completion = dataclasses.replace(whole, content=content, raw=raw)
        return dataclasses.replace(delta, content=content, whole=redacted)

    async def _chunk(self, chunk: dict[str, Any], fields: Fields) -> dict[str, Any]:
        """An OpenAI stream chunk, its content and tool-call arguments let out of their windows (in place)."""
        for choice in chunk.get("choices") or []:
            index = int(choice.get("index") or 0)
            body = choice.get("delta") or {}
            if isinstance(body.get("content"), str):
                body["content"] = await self._field(fields, (index, -1)).feed(body["content"])
            for call in body.get("tool_calls") or []:
                function = call.get("function") or {}
                if isinstance(function.get("arguments"), str):
                    window = self._field(fields, (index, int(call.get("index") or 0)))
                    function["arguments"] = await window.feed(function["arguments"])
            if choice.get("finish_reason"):
                await _flush_into(body, index, fields)
                choice["delta"] = body
        return chunk

    async def _native(self, delta: Delta, fields: Fields) -> Delta:
        window = self._field(fields, (0, -1))
        content = await window.feed(delta.content) if delta.content else ""
        if delta.finish_reason is not None:
            content += await window.flush()
        return dataclasses.replace(delta, content=content)

    def _field(self, fields: Fields, key: tuple[int, int]) -> Window:
        found = fields.get(key)
        if found is None:
            found = fields[key] = Window(self)
        return found


class Window:
    """One stream field's redaction: the built-in kinds through a StreamRedactor, then (where the
    tenant asks) named entities, a group of sentences at a time."""

    def __init__(self, redactor: Redactor) -> None:
        self.redactor = redactor
        self.builtin = StreamRedactor(redactor.kinds, DEFAULT_HOLD)
        self.pending = ""  # clean of the built-in kinds, waiting for a sentence end to go to Language

    async def feed(self, text: str) -> str:
        out = self.builtin.feed(text)
        if self.redactor.language is None:
            return out
        self.pending += out
        if len(self.pending) < NAMED_MIN_CHARS:
            return ""
        ends = [m.end() for m in _SENTENCE_END.finditer(self.pending, NAMED_MIN_CHARS // 2)]
        cut = ends[-1] if ends else (len(self.pending) if len(self.pending) >= NAMED_MAX_CHARS else 0)
        if not cut:
            return ""
        ready, self.pending = self.pending[:cut], self.pending[cut:]
        return await self.redactor.named(ready)

    async def flush(self) -> str:
        rest, self.pending = self.pending + self.builtin.flush(), ""
        return await self.redactor.named(rest) if self.redactor.language is not None else rest


async def _held(fields: Fields, last: list[dict[str, Any]]) -> Delta | None:
    """What the windows still hold, as one last delta (a stream that ended without its finish): a
    provider chunk like the last one when the stream was the provider's, else plain content."""
    if not last:
        rest = "".join([await window.flush() for window in fields.values()])
        return Delta(content=rest) if rest else None
    choices = []
    for index in sorted({choice for choice, _ in fields}):
        body: dict[str, Any] = {}
        await _flush_into(body, index, fields)
        if body:
            choices.append({"index": index, "delta": body, "finish_reason": None})
    chunk = {**{k: v for k, v in last[0].items() if k != "usage"}, "choices": choices}
    return Delta(content=billed_text(chunk), raw=chunk) if chunk["choices"] else None


async def _flush_into(body: dict[str, Any], index: int, fields: Fields) -> None:
    """A finishing choice's held text, into its finish chunk: content, then each tool call's arguments."""
    for (choice, slot), window in sorted(fields.items()):
        if choice != index:
            continue
        rest = await window.flush()
        if not rest:
            continue
        if slot < 0:
            body["content"] = (body.get("content") or "") + rest
        else:
            calls: list[dict[str, Any]] = body.setdefault("tool_calls", [])
            calls.append({"index": slot, "function": {"arguments": rest}})
