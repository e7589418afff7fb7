"""The names a KQL query reads: customDimensions keys, metric and span names, audit messages, compared values."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_DIM = r"""customDimensions\s*\[\s*["']([^"']+)["']\s*\]"""
_LIST = r"\(([^)]*)\)"
_STRING = r'"([^"]*)"'
# KQL tables and the columns read off them; anything else in a `value...` position is a typo.
TABLES = frozenset({"requests", "dependencies", "traces", "customMetrics", "exceptions", "performanceCounters"})
METRIC_COLUMNS = frozenset({"value", "valueCount", "valueSum", "valueMin", "valueMax", "valueStdDev"})


@dataclass
class QueryNames:
    """What one query (or several joined) names; each set holds the literal as written."""

    dimensions: set[str] = field(default_factory=set)
    unnamed_dimension_uses: int = 0
    names: set[tuple[str, str]] = field(default_factory=set)  # (operator, literal) compared with `name`
    messages: set[tuple[str, str]] = field(default_factory=set)  # (operator, literal) compared with `message`
    values: set[tuple[str, str]] = field(default_factory=set)  # (dimension, literal) it is compared with
    tables: set[str] = field(default_factory=set)
    metric_columns: set[str] = field(default_factory=set)


def _literals(text: str) -> list[str]:
    """The string literals of `"a", "b"` (the inside of an `in (...)`)."""
    return re.findall(_STRING, text)


def _comparisons(subject: str, text: str) -> set[tuple[str, str]]:
    """(operator, literal) for every `subject == "x"`, `subject in ("x", "y")`, `subject startswith "x"`, ..."""
    found: set[tuple[str, str]] = set()
    for op, literal in re.findall(rf"{subject}\s*(==|!=|=~|!~|!?\bstartswith\b|!?\bendswith\b|!?\bhas\b|!?\bcontains\b)"
                                  rf"\s*{_STRING}", text):
        found.add((op, literal))
    for op, inside in re.findall(rf"{subject}\s+(!?in~?)\s*{_LIST}", text):
        found.update((op, literal) for literal in _literals(inside))
    return found


def _strip_comments(query: str) -> str:
    return re.sub(r"//[^\n]*", "", query)


def extract(query: str) -> QueryNames:
    """Every name `query` reads, found by pattern; a name written some other way counts as unnamed."""
    text = _strip_comments(query)
    found = QueryNames()
    found.dimensions = set(re.findall(_DIM, text))
    found.dimensions |= set(re.findall(r"customDimensions\.([A-Za-z_][\w.]*)", text))
    found.unnamed_dimension_uses = len(re.findall(r"customDimensions(?!\s*[\[.])", text))
    found.names = _comparisons(r"(?<![\w.])name", text)
    found.messages = _comparisons(r"(?<![\w.])message", text)
    # A dimension compared directly (tostring(customDimensions["x"]) == "v") or through the column it was
    # extended or summarized into (x = tostring(customDimensions["x"]) ... x in ("v", "w")).
    compared = r'\s*(?:==|!=)\s*"[^"]*"|\s+!?in~?\s*\([^)]*\)'
    for dim, rest in re.findall(rf"{_DIM}\s*\)?((?:{compared})?)", text):
        found.values |= {(dim, literal) for literal in _literals(rest)}
    for alias, dim in re.findall(rf"\b(\w+)\s*=\s*to\w+\(\s*{_DIM}\s*\)", text):
        found.values |= {(dim, literal) for _, literal in _comparisons(rf"(?<![\w.\"]){alias}\b", text)}
    # A table starts the query or a union branch: `requests | ...`, `(customMetrics | ...)`.
    found.tables = set(re.findall(r"(?:^|\()\s*([A-Za-z]\w*)\s*(?=\||\n\s*\|)", text))
    found.metric_columns = set(re.findall(r"\b(value[A-Z]\w*)\b", text))
    return found
