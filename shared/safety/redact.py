"""Secrets and PII replaced by `[REDACTED:<kind>]`, in whole texts and in streams through a bounded window."""

from __future__ import annotations

import re
from collections.abc import Collection
from functools import lru_cache

from shared.safety.patterns import CONTEXT, HEAD_MAX, KINDS, PATTERNS, Pattern, Tail

__all__ = ["DEFAULT_HOLD", "KINDS", "StreamRedactor", "redact"]

DEFAULT_HOLD = 256


@lru_cache(maxsize=32)
def _compiled(kinds: frozenset[str]) -> tuple[re.Pattern[str] | None, tuple[Pattern, ...]]:
    """One alternation of the chosen kinds' heads, in priority order: one pass over the text finds the leftmost."""
    unknown = kinds - set(KINDS)
    if unknown:
        raise ValueError(f"unknown redaction kinds: {', '.join(sorted(unknown))} (known: {', '.join(KINDS)})")
    chosen = tuple(p for p in PATTERNS if p.kind in kinds)
    if not chosen:
        return None, ()
    return re.compile("|".join(f"(?P<p{i}>{p.head})" for i, p in enumerate(chosen))), chosen


class StreamRedactor:
    """Feed text as it arrives; what comes out, concatenated, is exactly `redact` of the whole text.

    It holds back at most `hold` characters that could still begin a match, and scans only when that window is
    full, then releases all but the last HEAD_MAX + 1, so a stream of small chunks is scanned about once per
    `hold - HEAD_MAX` characters. A match already found swallows its continuation (a long key, a private-key block)
    as it arrives, so the window never grows with a secret's length.
    """

    def __init__(self, kinds: Collection[str], hold: int = DEFAULT_HOLD) -> None:
        if hold <= HEAD_MAX + 1:
            raise ValueError(f"hold must be more than {HEAD_MAX + 1} characters, the longest pattern head and one")
        self._regex, self._patterns = _compiled(frozenset(kinds))
        self._hold = hold
        self._buf = ""  # received, neither passed on nor swallowed yet
        self._seen = ""  # the last characters already dealt with, for the patterns' lookbehinds
        self._pos = 0  # in _buf: no match may start before it (a failed check skips its span, as re.sub would)
        self._tail: Tail = ()  # the continuation of the match being swallowed, first part first
        self._started = False
        self.counts: dict[str, int] = {}

    def feed(self, chunk: str) -> str:
        self._buf += chunk
        return self._drain(final=False)

    def flush(self) -> str:
        return self._drain(final=True)

    def _drain(self, final: bool) -> str:
        out: list[str] = []
        while True:
            if self._tail and not self._swallow(final):
                break
            if not final and len(self._buf) <= self._hold:
                break  # within the window: scanning now would only decide text there is no need to release yet
            found = self._next_match(final)
            if found is None:
                decided = len(self._buf) if final or self._regex is None else len(self._buf) - HEAD_MAX - 1
                cut = min(len(self._buf), max(self._pos, decided))
                out.append(self._buf[:cut])
                self._pass(cut)
                break
            start, end, pattern = found
            out.append(self._buf[:start])
            out.append(f"[REDACTED:{pattern.kind}]")
            self.counts[pattern.kind] = self.counts.get(pattern.kind, 0) + 1
            self._pass(end)
            self._pos = 0
            self._tail, self._started = pattern.tail, False
        return "".join(out)

    def _next_match(self, final: bool) -> tuple[int, int, Pattern] | None:
        """The next match whose head no later text can change, or None when there is none yet."""
        if self._regex is None:
            return None
        # A head is at most HEAD_MAX long and looks one character past its end: one that starts further back than
        # that from the end of what has arrived is decided.
        decided = len(self._buf) if final else len(self._buf) - HEAD_MAX - 1
        text, off = self._seen + self._buf, len(self._seen)
        while True:
            m = self._regex.search(text, off + self._pos)
            if m is None or m.start() - off >= decided:
                return None
            pattern = self._patterns[int(m.lastgroup[1:])]  # type: ignore[index]
            if pattern.check is None or pattern.check(m.group()):
                return m.start() - off, m.end() - off, pattern
            self._pos = m.end() - off

    def _swallow(self, final: bool) -> bool:
        """Consume the current match's continuation; False while more text could still extend it."""
        while self._tail:
            consumed, done, self._started = self._tail[0].advance(self._buf, final, self._started)
            self._pass(consumed)
            if not done:
                return False
            self._tail, self._started = self._tail[1:], False
        return True

    def _pass(self, n: int) -> None:
        self._seen = (self._seen + self._buf[:n])[-CONTEXT:]
        self._buf = self._buf[n:]
        self._pos = max(0, self._pos - n)


def redact(text: str, kinds: Collection[str]) -> tuple[str, dict[str, int]]:
    """The text with every match of the kinds replaced, and how many of each kind were replaced."""
    stream = StreamRedactor(kinds)
    out = stream.feed(text) + stream.flush()
    return out, stream.counts
