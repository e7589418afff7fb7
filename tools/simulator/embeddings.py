"""Deterministic hashed bag-of-words embeddings and their wire encodings."""

from __future__ import annotations

import base64
import hashlib
import math
import struct
from typing import Literal

from tools.simulator.text import WORD_RE

EncodingFormat = Literal["float", "base64"]


def embed(text: str, dims: int) -> list[float]:
    """A unit vector where texts sharing words point the same way and equal texts are equal.

    Each lower-cased word adds ±1 at a hashed index (the "hashing trick"); blake2b rather than
    hash() so vectors match across processes, regions and runs, as a real model's would.
    """
    vector = [0.0] * dims
    # A text without words (only symbols) is still hashed whole, so it never becomes all zeros.
    for feature in WORD_RE.findall(text.lower()) or [text]:
        digest = int.from_bytes(hashlib.blake2b(feature.encode("utf-8"), digest_size=8).digest(), "big")
        vector[(digest >> 1) % dims] += 1.0 if digest & 1 else -1.0
    norm = math.sqrt(sum(x * x for x in vector))
    # Opposite signs of colliding words can cancel to zero; leave that (rare) vector as it is.
    return [x / norm for x in vector] if norm else vector


def encode(vector: list[float], encoding_format: EncodingFormat) -> list[float] | str:
    """The `embedding` field as the API sends it: floats, or base64 of little-endian float32."""
    if encoding_format == "base64":
        return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")
    return vector


def decode_base64(data: str) -> list[float]:
    """Inverse of encode(..., "base64"); what the openai SDK does on receipt."""
    raw = base64.b64decode(data)
    return list(struct.unpack(f"<{len(raw) // 4}f", raw))


def cosine(a: list[float], b: list[float]) -> float:
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return sum(x * y for x, y in zip(a, b, strict=True)) / norm if norm else 0.0
