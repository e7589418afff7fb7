"""Token accounting with gpt-4o-mini's own tokenizer (o200k_base), and the deterministic answer generator."""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Literal, Protocol

# The tokenizer of the gpt-4o family, gpt-4o-mini included: what the real model bills in.
ENCODING_NAME = "o200k_base"

WORD_RE = re.compile(r"\w+")

MIN_ANSWER_TOKENS = 20
ANSWER_TOKEN_SPREAD = 60

# A prompt made only of punctuation (or of words too long for an answer) has no words to echo.
FALLBACK_WORDS = ("simulated", "answer", "from", "the", "model", "simulator")

# How many other prompt words are tried to fill the last few tokens of an answer exactly.
_FILL_CANDIDATES = 64

FinishReason = Literal["stop", "length"]


class InputTooLong(ValueError):
    """A text longer than the tokenizer accepts (about a million characters); a 400, not a crash."""


class _Encoding(Protocol):
    # The part of bpe_openai.Encoding (a tiktoken look-alike) used here; the package has no types.
    def encode_ordinary(self, text: str) -> list[int]: ...

    def decode_bytes(self, tokens: Sequence[int]) -> bytes: ...


@cache
def tokenizer() -> _Encoding:
    """The o200k_base encoding; its vocabulary ships inside bpe-openai and loads in about a second."""
    # Imported here: importing bpe_openai already parses its vocabularies, which code that only
    # imports the simulator (its process helper, its embeddings) should not pay for.
    import bpe_openai

    encoding: _Encoding = bpe_openai.get_encoding(ENCODING_NAME)
    return encoding


def encode(text: str) -> list[int]:
    """o200k_base token ids of text, as the model sees it.

    Text that looks like a special token ("<|endoftext|>") is counted as the plain text it is, as
    the API does for message content, rather than refused.
    """
    try:
        return tokenizer().encode_ordinary(text)
    except ValueError as exc:  # the package's limits: 1M characters, 200k tokens per call
        raise InputTooLong(f"the input is too long for the simulator to tokenize: {exc}") from None


def token_bytes(tokens: Sequence[int]) -> bytes:
    """The UTF-8 bytes of tokens; a cut between tokens may split a character, so not always text."""
    return tokenizer().decode_bytes(tokens)


def count_tokens(text: str) -> int:
    return len(encode(text))


def stable_hash(text: str) -> int:
    """A 64-bit hash that, unlike hash(), is the same in every process and on every run."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "big")


@dataclass(frozen=True)
class Piece:
    """One streamed chunk: the text of one token, or of a few when one alone is not whole UTF-8."""

    text: str
    tokens: int


@dataclass(frozen=True)
class Answer:
    """A generated reply, with the chunks that stream it; built only by generate_answer."""

    content: str
    # "".join(piece.text) == content and the pieces' tokens add up to len(encode(content)).
    pieces: tuple[Piece, ...]
    finish_reason: FinishReason

    @property
    def completion_tokens(self) -> int:
        return sum(piece.tokens for piece in self.pieces)


def generate_answer(
    messages: Sequence[tuple[str, str]], *, seed: int | str, max_tokens: int | None, choice: int = 0
) -> Answer:
    """Answer (role, text) messages with words of the prompt; same prompt and seed, same answer.

    The answer is MIN_ANSWER_TOKENS + hash(prompt) % ANSWER_TOKEN_SPREAD o200k_base tokens long, so
    every region (whatever its seed) answers a prompt with the same number of tokens. A cap below
    that keeps the first max_tokens tokens of the full answer, as a real model does, and reports
    finish_reason "length"; completion_tokens is always len(encode(content)). Choice i > 0 (of a
    request for n answers) gets other words of the same length.
    """
    prompt_hash = stable_hash(prompt_key(messages))
    target = MIN_ANSWER_TOKENS + prompt_hash % ANSWER_TOKEN_SPREAD
    words = WORD_RE.findall(" ".join(text for _, text in messages)) or list(FALLBACK_WORDS)
    rng = answer_rng(seed, prompt_hash, choice)

    content = _compose(words, rng, target)
    if content == ".":  # every word of the prompt is longer than the whole answer may be
        content = _compose(FALLBACK_WORDS, rng, target)
    return answer_of(content, max_tokens)


def prompt_key(messages: Sequence[tuple[str, str]]) -> str:
    """The text an answer is derived from; its hash fixes the answer's length."""
    return "\n".join(f"{role}\x1f{text}" for role, text in messages)


def answer_rng(seed: int | str, prompt_hash: int, choice: int = 0) -> random.Random:
    """The dice of one answer; choice 0 keeps the dice answers had before n was supported."""
    # A str seed is hashed with SHA-512 by random, so this is stable across processes too.
    return random.Random(f"{seed}:{prompt_hash}" if choice == 0 else f"{seed}:{prompt_hash}:{choice}")


def answer_of(content: str, max_tokens: int | None) -> Answer:
    """Any reply text (prose, JSON, tool arguments) as the model sends it, cut at max_tokens.

    A cap below the text's length keeps its first max_tokens tokens, as a real model does, and
    reports finish_reason "length"; completion_tokens is always len(encode(content)).
    """
    tokens = encode(content)
    if max_tokens is None or len(tokens) <= max_tokens:
        return _answer(content, tokens, "stop")
    capped = _cap(content, tokens, max_tokens) if max_tokens > 0 else ""
    return _answer(capped, encode(capped), "length")


def _compose(words: Sequence[str], rng: random.Random, target: int) -> str:
    """Sentences of the words, ending in ".", exactly target tokens long.

    Tokens do not add up word by word (BPE merges across some joins), so every step is measured
    with the tokenizer. When the next word would overshoot, other words that still fit finish the
    answer, then commas after words fill any last tokens. Exactness only fails for prompts whose
    every word is longer than the room left and that leave no place for a comma; the answer is
    then a few tokens short.
    """
    parts: list[str] = []
    used = _length(parts)
    sentence_left = rng.randint(6, 14)
    while used < target:
        word = rng.choice(words)
        if not parts:
            part = _capitalised(word)
        elif sentence_left <= 0:
            # A sentence break travels with the word after it, so an answer never ends in "..".
            part = f". {_capitalised(word)}"
        else:
            part = f" {word}"
        after = _length([*parts, part])
        if after > target:
            break
        parts.append(part)
        used = after
        sentence_left = rng.randint(6, 14) - 1 if part.startswith(".") else sentence_left - 1

    # Fill the room the overshooting word left with words that fit, then with commas.
    distinct = list(dict.fromkeys(words))
    while used < target and (filler := _fill(parts, distinct, rng, used=used, target=target)) is not None:
        part, used = filler
        parts.append(part)
    for index in range(len(parts) - 1, 0, -1):
        if used == target:
            break
        if parts[index].startswith(" "):  # not before a sentence break: ",." reads badly
            with_comma = [*parts[: index - 1], f"{parts[index - 1]},", *parts[index:]]
            if _length(with_comma) == used + 1:
                parts = with_comma
                used += 1
    return "".join(parts) + "."


def _length(parts: list[str]) -> int:
    """Tokens of an answer made of these parts and its closing "."."""
    return count_tokens("".join(parts) + ".")


def _fill(parts: list[str], words: list[str], rng: random.Random, *, used: int, target: int) -> tuple[str, int] | None:
    """A word, from a sample of them, that lengthens the answer without passing target, and the new length."""
    for word in rng.sample(words, min(len(words), _FILL_CANDIDATES)):
        part = f" {word}" if parts else _capitalised(word)
        if used < (after := _length([*parts, part])) <= target:
            return part, after
    return None


def _cap(content: str, tokens: Sequence[int], max_tokens: int) -> str:
    """The longest start of content that is at most max_tokens tokens once re-encoded.

    Normally the text of the first max_tokens tokens. When that cut splits a character, or its text
    re-encodes to other tokens (BPE can merge a cut word differently), cut before a word instead.
    """
    try:
        cut = token_bytes(tokens[:max_tokens]).decode("utf-8")
    except UnicodeDecodeError:
        cut = None
    if cut is not None and count_tokens(cut) == max_tokens:
        return cut
    # A cut that is a valid text is a start of content; the word boundaries before it are candidates.
    limit = len(cut) if cut is not None else len(content) - 1
    for end in range(limit, 0, -1):
        if content[end] == " " and count_tokens(content[:end]) <= max_tokens:
            return content[:end]
    return ""


def _answer(content: str, tokens: Sequence[int], finish_reason: FinishReason) -> Answer:
    return Answer(content, _stream_pieces(tokens), finish_reason)


def _stream_pieces(tokens: Sequence[int]) -> tuple[Piece, ...]:
    """One piece per token; a token that ends inside a character waits for the ones completing it."""
    pieces: list[Piece] = []
    pending: list[int] = []
    for token in tokens:
        pending.append(token)
        try:
            text = token_bytes(pending).decode("utf-8")
        except UnicodeDecodeError:
            continue  # the tokens of a whole text always complete the character in the end
        pieces.append(Piece(text, len(pending)))
        pending = []
    return tuple(pieces)


def _capitalised(word: str) -> str:
    # Upper-casing can change a character into several; keep the word if that would split it.
    candidate = word[:1].upper() + word[1:]
    return candidate if WORD_RE.fullmatch(candidate) else word
