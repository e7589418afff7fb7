"""Deterministic token log probabilities in the API's shape (choices[i].logprobs.content)."""

from __future__ import annotations

from typing import Any

from tools.simulator.text import Answer, encode, stable_hash, token_bytes

# Alternatives are drawn from the ordinary ids of o200k_base (all below this).
_VOCABULARY = 199_998


def content_logprobs(answer: Answer, *, top: int, seed: int | str) -> list[list[dict[str, Any]]]:
    """One list per streamed piece of the answer (its tokens' entries), so a stream and the whole
    answer carry the same entries; flatten them for a non-streamed response."""
    tokens = encode(answer.content)
    entries = [_entry(token, position, top, seed) for position, token in enumerate(tokens)]
    grouped: list[list[dict[str, Any]]] = []
    start = 0
    for piece in answer.pieces:
        grouped.append(entries[start : start + piece.tokens])
        start += piece.tokens
    return grouped


def _entry(token: int, position: int, top: int, seed: int | str) -> dict[str, Any]:
    # The chosen token is the likeliest: its logprob is in (-1, 0]; alternatives are below it.
    chosen = -(stable_hash(f"{seed}:{position}:{token}") % 1000) / 1000
    alternatives = [
        _top(candidate, chosen - 1.0 - rank - (stable_hash(f"{seed}:{position}:{rank}") % 1000) / 1000)
        for rank, candidate in enumerate(_others(token, position, top - 1))
    ]
    return {**_top(token, chosen), "top_logprobs": [_top(token, chosen), *alternatives] if top else []}


def _top(token: int, logprob: float) -> dict[str, Any]:
    raw = token_bytes([token])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        # The API's spelling of a token that is only part of a character.
        text = "bytes:" + "".join(f"\\x{byte:02x}" for byte in raw)
    return {"token": text, "logprob": round(logprob, 6), "bytes": list(raw)}


def _others(token: int, position: int, count: int) -> list[int]:
    others: list[int] = []
    step = 1 + stable_hash(f"{position}:{token}") % 9973
    candidate = token
    while len(others) < count:
        candidate = (candidate + step) % _VOCABULARY
        if candidate != token:
            others.append(candidate)
    return others
