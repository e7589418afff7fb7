"""Server-Sent Events as the openai SDK reads them: the data of each event, incrementally."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator


async def sse_data(chunks: AsyncIterator[bytes]) -> AsyncIterator[str]:
    """The `data` of each Server-Sent Event (multi-line data joined by newlines), as the openai SDK's
    SSEDecoder reads it: lines end at CR, LF or CRLF (not at the other line breaks str.splitlines
    knows, which JSON may hold raw), `:` lines are comments, other fields are ignored. An event
    without data is not dispatched (the SSE spec; the SDK would fail to parse it), nor is one the
    body ends in before its blank line (the spec and the SDK alike)."""
    lines = _Lines()
    data: list[str] = []
    async for chunk in chunks:
        for line in lines.feed(chunk):
            if line:
                _field(line, data)
            elif data:
                yield "\n".join(data)
                data = []


def _field(line: bytes, data: list[str]) -> None:
    if line.startswith(b":"):
        return
    name, _, value = line.partition(b":")
    if name == b"data":
        data.append((value[1:] if value.startswith(b" ") else value).decode("utf-8"))


_LINE_END = re.compile(b"[\r\n]")


class _Lines:
    """Splits bytes at CR, LF and CRLF incrementally, a CRLF split across chunks included."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._skip_lf = False

    def feed(self, chunk: bytes) -> Iterator[bytes]:
        start = 0
        for match in _LINE_END.finditer(chunk):
            end = match.start()
            if self._skip_lf and end == start and chunk[end] == 10:  # the LF of a CRLF cut after its CR
                self._skip_lf = False
                start = end + 1
                continue
            self._buffer += chunk[start:end]
            line = bytes(self._buffer)
            self._buffer.clear()
            self._skip_lf = chunk[end] == 13
            start = end + 1
            yield line
        if start < len(chunk):
            self._skip_lf = False
            self._buffer += chunk[start:]
