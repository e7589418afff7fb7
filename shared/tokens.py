"""Token counts for budgets: the model's own tokenizer where we know it, else an upper bound."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cache

import bpe_openai

# OpenAI's recipe for gpt-4o-family chat prompts (num_tokens_from_messages): each message bills its
# role, its content and 3 framing tokens; the reply's priming bills 3. Counting all of it keeps the
# estimate from undercounting what the model bills.
TOKENS_PER_MESSAGE = 3
REPLY_PRIMING = 3


@cache
def counter_for(model: str) -> Callable[[str], int]:
    """Exact counts for OpenAI models (vocabularies ship inside bpe-openai: nothing downloads).
    Any other model gets UTF-8 bytes, which no byte-level tokenizer can exceed."""
    try:
        encoding = bpe_openai.get_encoding(bpe_openai.encoding_name_for_model(model))
    except (KeyError, ValueError, bpe_openai.UnsupportedModelError):
        return lambda text: len(text.encode("utf-8"))
    return lambda text: len(encoding.encode_ordinary(text))


def prompt_tokens(model: str, messages: Sequence[tuple[str, str]]) -> int:
    """What the model will bill for a prompt of these (role, content) messages."""
    count = counter_for(model)
    return sum(count(role) + count(content) + TOKENS_PER_MESSAGE for role, content in messages) + REPLY_PRIMING
