"""The native operations' prompts, rendered once by the one function both the estimate and the
kernel function use, so what the model receives is exactly what the budget counted."""

from __future__ import annotations

import math
import re

_PLACEHOLDER = re.compile(r"\{\{\$(\w+)\}\}")
SUMMARIZE_PROMPT = """Summarize the text below. Style: {{$style}}. Use at most {{$max_words}} words.
Reply with the summary only.

Text:
{{$text}}"""


def summary_token_cap(max_words: int) -> int:
    """Room for `max_words` words: about 1.3 tokens a word, plus slack for punctuation."""
    return min(4096, math.ceil(max_words * 1.5) + 32)


def render_summarize(text: str, style: str, max_words: int) -> str:
    """The summarize prompt exactly as it is sent: one pass over the template, so nothing inside
    the inserted text (`{{$style}}`, `{{ }}`, markup, entities) is ever substituted or encoded.
    Semantic Kernel's own template engine would HTML-encode the inserted text and parse the result
    as chat XML, so the model would receive (and bill) other text than the budget counted."""
    values = {"text": text, "style": style, "max_words": str(max_words)}
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), SUMMARIZE_PROMPT)
