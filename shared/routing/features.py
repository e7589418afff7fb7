"""The features of a chat request that the complexity scorer weighs, each scaled to 0..1."""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from shared.core.tokens import counter_for
from shared.routing.ask import own_text

# Exact gpt-4o-family counts cost about 70 us per 4,000 characters (bpe-openai's Rust tokenizer),
# inside the scorer's 1 ms; the count is a feature, not a bill, so one tokenizer serves every model.
# Looked up per call (counter_for caches it): loading it at import would add 0.1 s to a cold start.
_TOKENIZER_MODEL = "gpt-4o"

# Lengths scale logarithmically: 10 tokens and 100 differ more, for routing, than 3,000 and 3,100.
_LOG_TOKENS_CAP = math.log1p(8000)

# The scorer must stay well under 1 ms for 4,000 characters, and a regex of many alternatives
# costs that much on its own; so words are split once and looked up, and marks are counted with
# str.count, which runs in C.
_PUNCTUATION = str.maketrans(dict.fromkeys(string.punctuation.replace("-", "").replace("'", ""), " "))


def _words(*groups: str) -> frozenset[str]:
    return frozenset(word for group in groups for word in group.split())


# Asks for reasoning over several steps, where a small model's answer degrades first.
_REASONING_WORDS = _words(
    "why prove proof derive justify design designs architecture architect compare comparison contrast",
    "tradeoffs trade-offs trade-off analyze analyse analyzing analysing analysis evaluate evaluating assess",
    "assessment critique plan strategy strategies debug debugging refactor implement implementation",
    "optimize optimise optimizing scale scaling scalable migrate migration diagnose investigate reconcile",
    "recommend recommendation consider weigh scenarios sensitivity estimate synthesize interpret",
    "infer inferring deduce cause causes causal",
)
_REASONING_PHRASES = ("step by step", "step-by-step", "pros and cons", "root cause", "what would happen",
                      "explain how", "how does", "edge case", "walk me through", "think through", "second-order",
                      # The same asks in a few other languages; CJK has no spaces between words, so
                      # these are counted as substrings.
                      "analysier", "vergleich", "begründ", "bewert", "analiz", "compara", "por qué", "pourquoi",
                      "analyse", "justifie", "分析", "比较", "比較", "设计", "設計", "为什么", "なぜ", "評価", "评估",
                      "建议", "長所と短所", "优点", "анализ", "сравни", "почему", "обоснуй")
# Asks for a judgement, a decision or advice: short to write, as hard as the situation behind them
# ("should we ...?", "is it wrong to ...?"), where a small model's answer is generic first.
_JUDGEMENT_WORDS = _words("should advice advise risk risks risky safe unsafe wrong worth cause caused argue argument",
                          "dilemma ethical moral enforceable compliant compliance legal contradict contradicts",
                          "scam fair justified handle tradeoff decide decision")
_JUDGEMENT_PHRASES = ("what now", "what do i do", "what should", "is it wrong", "is it ok", "is it worth",
                      "should i", "should we", "how do i handle", "how should")
# Asks for a long piece of writing: the longer the answer, the more a small model drifts from the brief.
# One ask made of several ("extract the fields, then infer ..."): an easy first part must not hide the rest.
_SUBTASK_MARKS = (" then ", "and then", " also ", "as well as", "after that", "; ", " plus ", "finally")
_LONGFORM_WORDS = _words("essay story speech report article proposal syllabus policy post-mortem chapter",
                         "screenplay newsletter abstract rebuttal blog whitepaper scene")
_LONGFORM_MARKS = ("-word", " words", "字", "pages", "sections", "paragraphs")
_MATH_WORDS = _words(
    "theorem lemma integral derivative equation equations matrix eigenvalue probability variance regression",
    "polynomial modulo prime primes converge convergence linear calculate calculation compute formula",
    "percent percentage interest rate rates expected sum average median statistics statistical",
)
_MATH_MARKS = (  # matched in lower-cased text
    "\\frac", "\\sum", "\\int", "^2", "o(n", "%", "∑", "∫", "√", "≤", "≥", "≠", "∞")
_LIST_ITEM = re.compile(r"\s*(?:[-*•]|\d{1,2}[.)])\s")
_NUMBER = re.compile(r"\d+(?:[.,:]\d+)*")
_DIGIT_OPERATOR = re.compile(r"\d\s*[-+*/^=<>\u00d7]\s*\d")
# Requirements the answer must meet at once: each one more a small model may drop.
_CONSTRAINT_WORDS = _words("must should without exactly only never always ensure require requires required",
                           "unless avoid keep within under cannot can't mustn't don't")
_CONSTRAINT_PHRASES = ("at most", "at least", "no more than", "do not", "while keeping", "must not")
# Asks a small model does as well as a large one: greetings, lookups, rewording, pulling fields out.
_SIMPLE_WORDS = _words("hi hello hey thanks thank translate typo typos extract list summarize summarise",
                       "briefly rephrase shorter classify convert tldr rename spell reword caption")
_SIMPLE_PHRASES = ("what is the", "in one sentence", "one word", "yes or no", "how do i", "what's the",
                   "as json", "who is", "who was", "how many", "tl;dr")
_CODE_MARKS = ("```", "();", "{", "}", ";\n", "=>", "->", "==", "!=", "::", "_", "</", "/>", "self.",
               "def ", "return ", "import ", "const ", "function ", "class ", "SELECT ", "    ")
_TRACE_MARKS = ("Traceback (most recent call last)", '\n  File "', "Exception", "Error:", "\n    at ",
                "panicked at", "Segmentation fault", "exit code", "stack trace")


def text_of(content: Any) -> str:
    """A message's text: a string, or its text parts joined (images and audio carry no text)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            part["text"] for part in content
            if isinstance(part, Mapping) and isinstance(part.get("text"), str)
        )
    return ""


def features(messages: Sequence[Mapping[str, Any]], *, tools: int, response_format: bool) -> dict[str, float]:
    """The request's features by name; weights.json names the same keys."""
    texts = [(str(m.get("role", "")), text_of(m.get("content"))) for m in messages]
    count = counter_for(_TOKENIZER_MODEL)
    counts = [count(text) for _, text in texts]
    # What the user asks is the task. The system prompt, and documents an application retrieved into
    # a user message, are context: their length and their words say what the app is, not how hard
    # this ask is (a support bot's 2,000-token policy precedes "hello?" as it precedes a refund dispute).
    turns: list[tuple[str, str, int]] = []  # role, text without the app's context, its tokens
    for (role, text), n in zip(texts, counts, strict=True):
        if role != "system":
            own = own_text(role, text)
            turns.append((role, own, n if own == text else count(own)))
    asks = [(text, n) for role, text, n in turns if role == "user"]
    last, last_count = asks[-1] if asks else ("", 0)
    asked = "\n".join(text for text, _ in asks).lower()
    conversation = "\n".join(text for _, text, _ in turns)
    last_lower = last.lower()
    words = _word_counts(asked)
    last_words = words if len(asks) == 1 else _word_counts(last_lower)
    ask = last.split("\n\n", 1)[0]
    return {
        # The whole prompt, the application's context included: reported with the score, weighed zero.
        "tokens": _log_tokens(sum(counts)),
        "conversation_tokens": _log_tokens(sum(n for _, _, n in turns)),
        "last_tokens": _log_tokens(last_count),
        # The ask before the first blank line: a long instruction is a demanding one, while a long
        # document pasted below a short instruction ("extract the dates:") is not.
        "ask_tokens": _log_tokens(last_count if ask == last else count(ask)),
        "longform": _saturate(_hits(words, _LONGFORM_WORDS) + _phrases(asked, _LONGFORM_MARKS), 2),
        "code": _saturate(sum(conversation.count(mark) for mark in _CODE_MARKS), 24),
        "trace": _saturate(sum(conversation.count(mark) for mark in _TRACE_MARKS), 2),
        "math": _saturate(_hits(words, _MATH_WORDS) + sum(asked.count(m) for m in _MATH_MARKS)
                          + len(_DIGIT_OPERATOR.findall(asked)), 4),
        # Quantities to combine: one number is a lookup, eight are a calculation.
        "numbers": _saturate(len(_NUMBER.findall(ask)), 8),
        "reasoning": _saturate(_hits(words, _REASONING_WORDS) + _phrases(asked, _REASONING_PHRASES), 3),
        "judgement": _saturate(_hits(last_words, _JUDGEMENT_WORDS) + _phrases(last_lower, _JUDGEMENT_PHRASES), 2),
        "subtasks": _saturate(_phrases(last_lower, _SUBTASK_MARKS), 3),
        "constraints": _saturate(_hits(words, _CONSTRAINT_WORDS) + _phrases(asked, _CONSTRAINT_PHRASES)
                                 + _list_items(last), 6),
        "simple_ask": _saturate(_hits(last_words, _SIMPLE_WORDS)
                                + _phrases(last_lower, _SIMPLE_PHRASES), 1),
        "questions": _saturate(last.count("?") + last.count("\uff1f"), 3),  # and CJK's full-width mark
        "tools": _saturate(tools, 3),
        "response_format": 1.0 if response_format else 0.0,
        "depth": _saturate(max(0, len(asks) - 1), 4),
        # Latin-script languages keep non-ASCII characters to a few percent; CJK, Cyrillic, Arabic,
        # Devanagari and Greek text is almost all non-ASCII.
        "non_latin": _saturate(len(last) - len(last.encode("ascii", "ignore")), max(1, len(last) - last.count(" "))),
    }


def _word_counts(lower: str) -> Counter[str]:
    # The lexicons are ASCII, and str.translate is fast on ASCII text only: any other character
    # becomes "?", which the translation turns into a space with the punctuation.
    ascii_text = lower if lower.isascii() else lower.encode("ascii", "replace").decode("ascii")
    return Counter(ascii_text.translate(_PUNCTUATION).split())


def _log_tokens(tokens: int) -> float:
    return min(1.0, math.log1p(tokens) / _LOG_TOKENS_CAP)


def _hits(words: Counter[str], lexicon: frozenset[str]) -> int:
    return sum(n for word, n in words.items() if word in lexicon)


def _phrases(text: str, phrases: Sequence[str]) -> int:
    return sum(text.count(phrase) for phrase in phrases)


def _list_items(text: str) -> int:
    """Bulleted or numbered lines: each usually one more requirement."""
    return sum(1 for line in text.splitlines() if _LIST_ITEM.match(line))


def _saturate(count: float, full: float) -> float:
    """A count scaled to 0..1, reaching 1 at `full`: past it, more of the same says nothing new."""
    return min(1.0, count / full)
