"""The semantic cache's precision guard: two prompts close in embedding space may still ask
about different things (another number, a negation, another key term); those never share an answer."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

# Embeddings rate near-duplicates that differ in one key term as nearly the same text: the
# simulator's bag of words scores "capital of France" and "capital of Spain" alike, and real models
# do the same for "reset my password" and "reset my username". So a candidate above the threshold
# is still rejected unless both prompts ask about the same things: the same numbers, the same
# negation, the same content words once question phrasing is set aside ("how do I" = "how can I",
# articles, "please"), and the same neighbours on each side of a directional word ("Celsius to
# Fahrenheit"). This costs the hits whose paraphrase uses other words; the benchmark measures both.
_TOKEN = re.compile(r"[#.]?\w+(?:['\u2019._/+-]\w+)*[+#]*")  # keeps C++, C#, .NET, 3.11, don't
_PHRASING = frozenset((
    "a", "an", "the", "this", "that", "these", "those", "some", "any", "it", "there",
    "do", "does", "can", "could", "would", "will", "is", "are", "am", "be",
    "please", "kindly", "thanks", "thank", "hi", "hello", "hey", "just", "very", "really", "so", "you", "me",
    "and", "of", "in", "on", "at", "for", "with", "by", "about", "using", "via", "within",
    "to", "from", "into", "than", "vs", "versus",
))
_DIRECTIONAL = frozenset({"to", "from", "into", "than", "vs", "versus"})
_NEGATIONS = frozenset({"not", "no", "never", "none", "nothing", "nor", "neither", "without", "cannot"})


@dataclass(frozen=True)
class KeyTerms:
    content: frozenset[str]
    numbers: frozenset[str]
    negated: bool
    directions: frozenset[tuple[str, str, str]]


def _normal(token: str) -> str:
    word = token.lower().replace("\u2019", "'").removesuffix("'s").rstrip("'")
    if word in _PHRASING or word in _NEGATIONS:
        return word  # "does" is phrasing, not the plural of "doe"
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def _first_content(words: Sequence[str]) -> str:
    return next((w for w in words if w not in _PHRASING), "")


def key_terms(text: str) -> KeyTerms:
    words = [_normal(t) for t in _TOKEN.findall(text)]
    negated = any(w in _NEGATIONS or w.endswith("n't") for w in words)
    words = [w for w in words if w not in _NEGATIONS and not w.endswith("n't")]
    directions = frozenset((_first_content(words[:i][::-1]), w, _first_content(words[i + 1:]))
                           for i, w in enumerate(words) if w in _DIRECTIONAL)
    content = frozenset(w for w in words if w not in _PHRASING)
    numbers = frozenset(w for w in content if any(ch.isdigit() for ch in w))
    return KeyTerms(content, numbers, negated, directions)


def veto(a: str, b: str) -> str | None:
    """Why two prompts must not share an answer however close their embeddings, or None."""
    ka, kb = key_terms(a), key_terms(b)
    if ka.numbers != kb.numbers:
        return "numbers"
    if ka.negated != kb.negated:
        return "negation"
    if ka.content != kb.content:
        return "terms"
    if ka.directions != kb.directions:
        return "direction"
    return None
