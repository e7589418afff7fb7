"""OpenAI's automatic prompt caching: a repeated prompt prefix of 1024+ tokens reports cached_tokens."""

from __future__ import annotations

import hashlib
import struct
from collections import OrderedDict
from collections.abc import Sequence

# OpenAI caches prefixes of at least 1024 tokens, in steps of 128.
MIN_CACHED_TOKENS = 1024
CACHE_STEP = 128
# Prefixes remembered (least recently used go first): a few hundred long prompts' worth.
CAPACITY = 100_000


class PrefixCache:
    """Remembers the prompt prefixes one simulated deployment has seen; no expiry, so runs replay."""

    def __init__(self, capacity: int = CAPACITY) -> None:
        self._capacity = capacity
        self._seen: OrderedDict[bytes, None] = OrderedDict()

    def clear(self) -> None:
        self._seen.clear()

    def cached_tokens(self, model: str, prompt: Sequence[int]) -> int:
        """Tokens of the longest prefix (1024, 1152, ...) of prompt seen before for this model; 0 if none.
        The prompt's own prefixes are remembered for the next request."""
        digest = hashlib.blake2b(model.encode("utf-8") + b"\0", digest_size=16)
        cached = 0
        start = 0
        for end in range(MIN_CACHED_TOKENS, len(prompt) + 1, CACHE_STEP):
            digest.update(struct.pack(f"<{end - start}q", *prompt[start:end]))
            start = end
            key = digest.copy().digest()
            if key in self._seen:
                cached = end
                self._seen.move_to_end(key)
            else:
                self._seen[key] = None
        while len(self._seen) > self._capacity:
            self._seen.popitem(last=False)
        return cached
