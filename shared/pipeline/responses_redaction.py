"""Output redaction of the Responses API's answers (docs/responses.md, "Content safety"), with the
chat's Redactor and its hold-back Windows (shared/pipeline/redaction.py).

A whole response has its message items' `output_text` parts, its function calls' `arguments` and
its `output_text` redacted at once. A stream keeps its events: each text or arguments delta carries
what its field's Window lets out; before the field's `.done` event, what the window still held goes
out as one more delta event (and every later event's `sequence_number` moves up by one, so they stay
contiguous); the `.done` events, `response.content_part.done`, `response.output_item.done` and the
terminal event's response then carry the text the client was sent. Usage is never touched.

The client is sent the events (`Delta.raw`), never `Delta.content`: a streamed delta keeps the text
the model generated as its content (an added delta event carries none), so the meter counts what
the provider billed (a cut stream is charged the same, redacted or not) and the answer has begun
at the model's first token, as without redaction: the adapter lets the response's first events out
then, not once a window has filled.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from shared.core.values import Delta
from shared.pipeline.redaction import Redactor, Window
from shared.upstream.responses_protocol import event_response, output_text

if TYPE_CHECKING:
    from shared.pipeline.exchange import DeltaSource

Field = tuple[int, int]  # (output_index, content_index | -1 for a function call's arguments)
# A streamed field's delta event and its done event, and the member each carries the text in.
TEXT = ("response.output_text.delta", "response.output_text.done", "text")
ARGUMENTS = ("response.function_call_arguments.delta", "response.function_call_arguments.done", "arguments")
ENDED = frozenset({"response.completed", "response.incomplete", "response.failed"})


class ResponsesSource:
    """A Responses exchange's model call (whole or streamed), which the guard redacts in its shape."""

    def __init__(self, live: DeltaSource) -> None:
        self.live = live

    def __call__(self) -> AsyncIterator[Delta]:
        return self.live()

    def redacted(self, redactor: Redactor) -> DeltaSource:
        live = self.live

        async def source() -> AsyncIterator[Delta]:
            events = Events(redactor)
            try:
                try:
                    async for delta in live():
                        if delta.whole is not None:
                            yield await events.whole(delta)
                        elif delta.raw is not None:
                            for out in await events.feed(delta):
                                yield out
                        else:
                            yield delta
                except Exception:
                    # Cut: what the model sent before the cut still reaches the client, redacted, then the error.
                    for out in await events.held():
                        yield out
                    raise
                for out in await events.held():  # ended without its done events: what was held still goes out
                    yield out
            finally:
                for window in events.windows.values():
                    redactor.counts.update(window.builtin.counts)
                redactor.report()

        return source


class Events:
    """One answer's redaction: a window per streamed field, the text each field was sent, and how
    far the events' sequence numbers moved for the delta events added."""

    def __init__(self, redactor: Redactor) -> None:
        self.redactor = redactor
        self.windows: dict[Field, Window] = {}
        self.sent: dict[Field, list[str]] = {}
        self.where: dict[Field, dict[str, Any]] = {}  # a field's item_id, output_index (and content_index)
        self.finished: dict[Field, str] = {}  # a field's whole text, as the client received it
        self.shift = 0  # delta events added so far: every later sequence_number moves up this much
        self.last: int | None = None  # the last sequence_number sent

    async def whole(self, delta: Delta) -> Delta:
        """A whole response: its output items' texts and arguments, and its output_text."""
        completion = delta.whole
        assert completion is not None  # noqa: S101  the caller checked
        if completion.raw is None:
            content = await self.redactor.text(completion.content)
        else:
            await self.response(completion.raw)
            content = output_text(completion.raw)
        return dataclasses.replace(delta, content=content, whole=dataclasses.replace(completion, content=content))

    async def feed(self, delta: Delta) -> list[Delta]:
        """A streamed event, redacted in place, after a delta event for each field it closes whose
        window still held text (numbered in its place: it and every later event move up one)."""
        event, out = delta.raw, []
        assert event is not None  # noqa: S101  the caller checked
        kind, number = event.get("type"), event.get("sequence_number")
        for key in self._closed_by(event):
            if (extra := await self._flush(key)) is not None:
                if isinstance(number, int):
                    extra["sequence_number"] = number + self.shift
                    self.shift += 1
                out.append(dataclasses.replace(delta, content="", raw=extra, usage=None, finish_reason=None))
        for delta_type, done_type, member in (TEXT, ARGUMENTS):
            key = _field(event, member)
            if kind == delta_type and isinstance(event.get("delta"), str):
                self.where.setdefault(key, {k: event[k] for k in ("item_id", "output_index", "content_index")
                                            if k in event})
                event["delta"] = await self._window(key).feed(event["delta"])
                self.sent.setdefault(key, []).append(event["delta"])
            elif kind == done_type and isinstance(event.get(member), str):
                event[member] = await self.final(key, event[member])
        if kind == "response.content_part.done" and isinstance(part := event.get("part"), dict):
            await self._part(_field(event, "text"), part)
        elif kind == "response.output_item.done" and isinstance(event.get("item"), dict):
            await self.item(int(event.get("output_index") or 0), event["item"])
        elif kind in ENDED:
            await self.response(event_response(event))
        if isinstance(number, int):
            self.last = event["sequence_number"] = number + self.shift
        return [*out, dataclasses.replace(delta, raw=event)]

    async def held(self) -> list[Delta]:
        """What the windows of unfinished fields still hold, as delta events after the last one sent."""
        out = []
        for key in sorted(k for k in self.windows if k not in self.finished):
            if (extra := await self._flush(key)) is not None:
                if self.last is not None:
                    self.last = extra["sequence_number"] = self.last + 1
                out.append(Delta(raw=extra))
        return out

    def _closed_by(self, event: dict[str, Any]) -> list[Field]:
        """The streamed fields whose text this event carries whole: a field's done event, its content
        part's, its output item's, the terminal event (every field)."""
        kind = event.get("type")
        if kind in (TEXT[1], "response.content_part.done"):
            closed = [_field(event, "text")]
        elif kind == ARGUMENTS[1]:
            closed = [_field(event, "arguments")]
        elif kind == "response.output_item.done":
            closed = [key for key in self.windows if key[0] == int(event.get("output_index") or 0)]
        else:
            closed = list(self.windows) if kind in ENDED else []
        return sorted(key for key in closed if key in self.windows and key not in self.finished)

    async def response(self, response: Any) -> None:
        """A response's output items redacted (in place), and its output_text if it carries one."""
        output = response.get("output") if isinstance(response, dict) else None
        for index, item in enumerate(output if isinstance(output, list) else []):
            if isinstance(item, dict):
                await self.item(index, item)
        if isinstance(response, dict) and isinstance(response.get("output_text"), str):
            response["output_text"] = output_text(response)

    async def item(self, index: int, item: dict[str, Any]) -> None:
        """An output item: a message's output_text parts, a function call's arguments."""
        if item.get("type") == "message":
            for part_index, part in enumerate(item.get("content") or []):
                if isinstance(part, dict):
                    await self._part((index, part_index), part)
        elif item.get("type") == "function_call" and isinstance(item.get("arguments"), str):
            item["arguments"] = await self.final((index, -1), item["arguments"])

    async def final(self, key: Field, text: str) -> str:
        """A field's whole text as the client receives it: what its deltas carried (its window was
        flushed by the event that closes it), or, for a field never streamed, the text redacted at once."""
        if key not in self.finished:
            sent = self.sent.get(key)
            self.finished[key] = "".join(sent) if sent is not None else await self.redactor.text(text)
        return self.finished[key]

    async def _part(self, key: Field, part: dict[str, Any]) -> None:
        if part.get("type") == "output_text" and isinstance(part.get("text"), str):
            part["text"] = await self.final(key, part["text"])

    async def _flush(self, key: Field) -> dict[str, Any] | None:
        """The field's held text as a delta event (numbered by the caller), or None when its window
        held nothing."""
        rest = await self.windows[key].flush()
        if not rest:
            return None
        self.sent.setdefault(key, []).append(rest)
        return {"type": TEXT[0] if key[1] >= 0 else ARGUMENTS[0], **self.where.get(key, {}), "delta": rest}

    def _window(self, key: Field) -> Window:
        found = self.windows.get(key)
        if found is None:
            found = self.windows[key] = Window(self.redactor)
        return found


def _field(event: dict[str, Any], member: str) -> Field:
    """The field an event speaks of: its output item, and its content part (text) or -1 (arguments)."""
    part = int(event.get("content_index") or 0) if member == "text" else -1
    return int(event.get("output_index") or 0), part
