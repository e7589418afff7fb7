"""Secrets and PII replaced by `[REDACTED:<kind>]`, in whole texts and in streams through a bounded window."""

from __future__ import annotations

import re
from collections.abc import Collection
from functools import lru_cache

from shared.safety.patterns import CONTEXT, HEAD_MAX, KINDS, PATTERNS, Pattern, Tail

__all__ = ["DEFAULT_HOLD", "KINDS", "StreamRedactor", "redact"]

DEFAULT_HOLD = 256


@lru_cache(maxsize=32)
def _compiled(kinds: frozenset[str]) -> tuple[tuple[Pattern, re.Pattern[str]], ...]:
    """The chosen kinds' patterns in priority order, each compiled on its own: one regex per pattern lets each
    skip through text on its own opening class, where one alternation of them all is tried at every position."""
    unknown = kinds - set(KINDS)
    if unknown:
        raise ValueError(f"unknown redaction kinds: {', '.join(sorted(unknown))} (known: {', '.join(KINDS)})")
    return tuple((p, re.compile(p.head)) for p in PATTERNS if p.kind in kinds)


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
        self._patterns = _compiled(frozenset(kinds))
        self._hold = hold
        self._buf = ""  # received, neither passed on nor swallowed yet
        self._seen = ""  # the last characters already dealt with, for the patterns' lookbehinds
        self._pos = 0  # in _buf: no match may start before it (a failed check skips its span, as re.sub would)
        self._tail: Tail = ()  # the continuation of the match being swallowed, first part first
        self._started = False
        self.counts: dict[str, int] = {}

    @property
    def pending(self) -> int:
        """Characters received and not yet let out (nor swallowed as part of a secret)."""
        return len(self._buf)

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
                decided = len(self._buf) if final or not self._patterns else len(self._buf) - HEAD_MAX - 1
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
        """The leftmost match (the first pattern's, at a tie) that no later text can change, or None."""
        # A head is at most HEAD_MAX long and looks one character past its end: one that starts further back than
        # that from the end of what has arrived is decided.
        decided = len(self._buf) if final else len(self._buf) - HEAD_MAX - 1
        text, off = self._seen + self._buf, len(self._seen)
        active = [(p, r) for p, r in self._patterns if not p.needs or p.needs in text]
        ahead: dict[int, re.Match[str] | None] = {}  # each pattern's next match, searched again once passed
        while True:
            best: re.Match[str] | None = None
            chosen: Pattern | None = None
            for i, (pattern, regex) in enumerate(active):
                m = ahead.get(i)
                if i not in ahead or (m is not None and m.start() < off + self._pos):
                    m = ahead[i] = regex.search(text, off + self._pos)
                if m is not None and (best is None or m.start() < best.start()):
                    best, chosen = m, pattern
            if best is None or chosen is None or best.start() - off >= decided:
                return None
            if chosen.check is None or chosen.check(best.group()):
                start = best.start("value") if "value" in best.re.groupindex else best.start()
                return start - off, best.end() - off, chosen
            self._pos = best.end() - off

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
