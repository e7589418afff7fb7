"""The features of a chat request that the complexity scorer weighs, each scaled to about 0..1."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from shared.core.tokens import counter_for

# Exact gpt-4o-family counts cost about 70 us per 4,000 characters (bpe-openai's Rust tokenizer),
# well inside the scorer's 1 ms; the count is a feature, not a bill, so one tokenizer serves all models.
_COUNT: Callable[[str], int] = counter_for("gpt-4o")

# Lengths scale logarithmically: 10 tokens and 100 differ more, for routing, than 3,000 and 3,100.
_LOG_TOKENS_CAP = math.log1p(8000)

_FENCE = re.compile(r"```|~~~")
# Source-code shapes: a call or definition, an assignment or comparison operator, braces and
# semicolons ending a line, snake_case or camelCase identifiers, SQL and shell keywords.
_CODE = re.compile(
    r"\b(?:def|class|return|import|function|const|let|var|public|private|async|await|lambda|SELECT|FROM|WHERE"
    r"|JOIN|struct|impl|fn|func|interface)\b"
    r"|[A-Za-z_]\w*\([^)\n]{0,40}\)"
    r"|(?:==|!=|=>|->|&&|\|\||::|\+=)"
    r"|[;{}]\s*$"
    r"|\b[a-z]+_[a-z_]+\b|\b[a-z]+[A-Z][A-Za-z]+\b",
    re.MULTILINE,
)
_TRACE = re.compile(
    r"Traceback \(most recent call last\)|^\s+at [\w$.<>]+\(|Exception\b|Error:|panicked at|segmentation fault"
    r"|^\s+File \"",
    re.MULTILINE | re.IGNORECASE,
)
_MATH = re.compile(
    r"\b(?:prove|proof|theorem|lemma|integral|derivative|equation|matrix|eigen\w*|probability|expected value"
    r"|variance|regression|optimi[sz]e|complexity|big-?o|modulo|prime|polynomial|limit|converge\w*)\b"
    r"|\d+\s*[-+*/^=<>]\s*\d+|\\(?:frac|sum|int|sqrt)|[∑∫√≤≥≠∞π]|O\([^)]{1,12}\)",
    re.IGNORECASE,
)
# Asks for reasoning over several steps, where a small model's answer degrades first.
_REASONING = re.compile(
    r"\bstep[- ]by[- ]step\b|\bprove\b|\bdesign\b|\bcompare\b|\bwhy\b|\btrade-?offs?\b|\barchitect\w*\b"
    r"|\banaly[sz]\w*\b|\bevaluate\b|\bjustify\b|\bderive\b|\bplan\b|\bstrateg\w*\b|\bdebug\w*\b"
    r"|\brefactor\w*\b|\bimplement\w*\b|\bpros and cons\b|\broot cause\b|\bcritique\b|\bassess\w*\b"
    r"|\bwhat would happen\b|\bexplain how\b|\bhow does\b|\bscal\w+\b|\bmigrat\w*\b|\bedge cases?\b",
    re.IGNORECASE,
)
# Requirements the answer must meet at once: each one more a small model may drop.
_CONSTRAINT = re.compile(
    r"\bmust\b|\bshould\b|\bwithout\b|\bat (?:most|least)\b|\bexactly\b|\bonly\b|\bnever\b|\balways\b"
    r"|\bdo(?:n't| not)\b|\bno more than\b|\bensure\b|\brequire\w*\b|\bunless\b|\bwhile (?:keeping|still)\b"
    r"|^\s*(?:[-*•]|\d+[.)])\s+",
    re.IGNORECASE | re.MULTILINE,
)
# Asks a small model does as well as a large one: greetings, lookups, rewording, pulling fields out.
_SIMPLE = re.compile(
    r"^\s*(?:hi|hello|hey|thanks|thank you|good (?:morning|night))\b|\btranslate\b|\bfix (?:the )?typos?\b"
    r"|\bextract\b|\blist (?:the|all)\b|\bsummari[sz]e\b|\bin one (?:sentence|word|line)\b|\bbriefly\b"
    r"|\bwhat is the\b|\bwhat time\b|\bhow do i (?:reset|change|cancel|update)\b|\bclassify\b|\btl;?dr\b"
    r"|\brephrase\b|\bshorter\b|\bformat (?:this|as)\b|\bconvert\b|\byes or no\b",
    re.IGNORECASE | re.MULTILINE,
)
_LETTER = re.compile(r"[^\W\d_]")
_LATIN = re.compile(r"[A-Za-z\u00C0-\u024F]")


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
    """The request's features by name; the scorer's weights.json names the same keys."""
    texts = [(str(m.get("role", "")), text_of(m.get("content"))) for m in messages]
    user = [text for role, text in texts if role == "user"]
    last = user[-1] if user else ""
    asked = "\n".join(user)  # what the user asks: system prompts and replies are not the task
    everything = "\n".join(text for _, text in texts)
    tokens = sum(_COUNT(text) for _, text in texts)
    letters = len(_LETTER.findall(last))
    return {
        "tokens": min(1.0, math.log1p(tokens) / _LOG_TOKENS_CAP),
        "last_tokens": min(1.0, math.log1p(_COUNT(last)) / _LOG_TOKENS_CAP),
        "code": _saturate(len(_CODE.findall(everything)) + 4 * len(_FENCE.findall(everything)), 12),
        "trace": _saturate(len(_TRACE.findall(everything)), 2),
        "math": _saturate(len(_MATH.findall(asked)), 3),
        "reasoning": _saturate(len(_REASONING.findall(asked)), 3),
        "constraints": _saturate(len(_CONSTRAINT.findall(asked)), 6),
        "simple_ask": _saturate(len(_SIMPLE.findall(last)), 1),
        "questions": _saturate(last.count("?"), 3),
        "tools": _saturate(tools, 3),
        "response_format": 1.0 if response_format else 0.0,
        "depth": _saturate(max(0, len(user) - 1), 4),
        "non_latin": (letters - len(_LATIN.findall(last))) / letters if letters else 0.0,
    }


def _saturate(count: float, full: float) -> float:
    """A count scaled to 0..1, reaching 1 at `full`: past it, more of the same says nothing new."""
    return min(1.0, count / full)
