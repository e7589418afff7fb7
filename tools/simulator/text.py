"""Tokenizer, prompt token accounting and the deterministic answer generator."""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

TOKEN_RE = re.compile(r"\w+|[^\w\s]")
WORD_RE = re.compile(r"\w+")

# Per-message and per-reply overheads, the same shape as OpenAI's published counting recipe.
TOKENS_PER_MESSAGE = 3
TOKENS_PER_REPLY = 3

MIN_ANSWER_TOKENS = 20
ANSWER_TOKEN_SPREAD = 60

# A prompt made only of punctuation has no words to echo; the answer still needs some.
FALLBACK_WORDS = ("simulated", "answer", "from", "the", "model", "simulator")

FinishReason = Literal["stop", "length"]


def tokenize(text: str) -> list[str]:
    """Split text into the simulator's tokens: runs of word characters and single symbols."""
    return TOKEN_RE.findall(text)


def count_tokens(text: str) -> int:
    return len(tokenize(text))


def count_prompt_tokens(contents: Sequence[str]) -> int:
    """Prompt tokens of a chat request, given the text of each message."""
    return sum(count_tokens(text) + TOKENS_PER_MESSAGE for text in contents) + TOKENS_PER_REPLY


def stable_hash(text: str) -> int:
    """A 64-bit hash that, unlike hash(), is the same in every process and on every run."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "big")


@dataclass(frozen=True)
class Answer:
    """A generated reply, kept as tokens so streaming and usage never disagree with the text."""

    # Each piece is exactly one token, carrying the space that precedes it.
    pieces: tuple[str, ...]
    finish_reason: FinishReason

    @property
    def content(self) -> str:
        return "".join(self.pieces)

    @property
    def completion_tokens(self) -> int:
        return len(self.pieces)


def generate_answer(messages: Sequence[tuple[str, str]], *, seed: int, max_tokens: int | None) -> Answer:
    """Answer (role, text) messages with words of the prompt; same prompt and seed, same answer.

    The length depends on the prompt only, so every region (whatever its seed) answers a prompt
    with the same number of tokens; a cap keeps a prefix of the full answer, as a real model does.
    """
    prompt = "\n".join(f"{role}\x1f{text}" for role, text in messages)
    prompt_hash = stable_hash(prompt)
    target = MIN_ANSWER_TOKENS + prompt_hash % ANSWER_TOKEN_SPREAD
    words = WORD_RE.findall(" ".join(text for _, text in messages)) or list(FALLBACK_WORDS)
    # A str seed is hashed with SHA-512 by random, so this is stable across processes too.
    rng = random.Random(f"{seed}:{prompt_hash}")

    pieces: list[str] = []
    sentence_left = rng.randint(6, 14)
    capitalise = True
    while len(pieces) < target - 1:
        if sentence_left <= 0 and len(pieces) < target - 2:
            pieces.append(".")
            sentence_left = rng.randint(6, 14)
            capitalise = True
            continue
        word = _capitalised(rng.choice(words)) if capitalise else rng.choice(words)
        pieces.append(f" {word}" if pieces else word)
        sentence_left -= 1
        capitalise = False
    pieces.append(".")

    if max_tokens is not None and max_tokens < target:
        return Answer(tuple(pieces[:max_tokens]), "length")
    return Answer(tuple(pieces), "stop")


def _capitalised(word: str) -> str:
    # Upper-casing can change a character into several; keep the word if that would split it.
    candidate = word[:1].upper() + word[1:]
    return candidate if WORD_RE.fullmatch(candidate) else word
