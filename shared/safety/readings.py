"""The ways a text is read before the injection rules see it: folded, tokenized, de-obfuscated and decoded."""

from __future__ import annotations

import base64
import binascii
import html
import re
import unicodedata
import urllib.parse
from collections.abc import Callable

# Decoding is bounded: a prompt stuffed with encoded-looking runs costs no more than this many decodes.
MAX_CANDIDATES = 6
MAX_CANDIDATE_CHARS = 4096

_INVISIBLE = "\u00ad\u180e\u200b\u200c\u200d\u200e\u200f\u2060\u2061\u2062\u2063\u2064\ufeff"
_TYPOGRAPHIC = ("\u2018\u2019\u201c\u201d\u201e\u00ab\u00bb\u2013\u2014", "''\"\"\"\"\"--")
# Cyrillic a c e o p x y i j s, Komi de, script g, palochka: letters that look Latin.
_LOOKALIKE = ("\u0430\u0441\u0435\u043e\u0440\u0445\u0443\u0456\u0458\u0455\u0501\u0261\u04cf", "aceopxyijsdgl")
# Invisible characters dropped, typographic punctuation read as its ASCII twin ("don\u2019t" is "don't"),
# look-alike letters read as the Latin ones they imitate.
_FOLD = {**dict(zip(_TYPOGRAPHIC[0] + _LOOKALIKE[0], _TYPOGRAPHIC[1] + _LOOKALIKE[1], strict=True)),
         **dict.fromkeys(_INVISIBLE, "")}
LEET = str.maketrans("013457@$|", "oieastasi")
ROT13 = str.maketrans("abcdefghijklmnopqrstuvwxyz", "nopqrstuvwxyzabcdefghijklm")
_SPACE = re.compile(r"[^\S\n]{2,}|[\t\r\f\v]")
# Word bytes for the trigger index: ASCII letters and digits, '_', the leet symbols '@' and '$', and every byte of
# 128 and up, so a UTF-8 word ('anweisungen', 'précédentes') stays one token.
_TOKEN = bytes(c if chr(c).isalnum() or c in b"_@$" or c >= 128 else 32 for c in range(256))
# Single letters as words: spaced-out text shows many; prose shows 'a', 'i' and the 's' and 't' of "it's", "don't".
_LETTERS = frozenset(ch.encode() for ch in "bcdefghjklmnopqruvwxyz")
_SPACED = re.compile(r"\b(\w)[ .*_\-](?=\w\b)")
_HAS_SPACED = re.compile(r"(?:\b\w[ .*_\-]){4}\w\b")


_FOLDABLE = re.compile(f"[{re.escape(_TYPOGRAPHIC[0] + _LOOKALIKE[0] + _INVISIBLE)}]")


def normalize(text: str) -> str:
    """What the folded rules read: compatibility forms, casefolded, look-alikes folded, runs of spaces made one."""
    if text.isascii():  # ASCII is its own NFKC form and has nothing to fold: the common case stays cheap
        text = text.lower()
    else:
        if not unicodedata.is_normalized("NFKC", text):
            text = unicodedata.normalize("NFKC", text)
        text = text.casefold()
        text = _FOLDABLE.sub(lambda m: _FOLD[m.group()], text)  # few hits: cheaper than translate over every char
    if "  " in text or "\t" in text or "\r" in text:
        text = _SPACE.sub(" ", text)
    return text


def tokens(folded: str) -> frozenset[bytes]:
    return frozenset(folded.encode().translate(_TOKEN).split())


def is_word(trigger: str) -> bool:
    """Whether a trigger is one token (looked up in the token set) rather than text to look for ('<|')."""
    return trigger.encode().translate(_TOKEN).split() == [trigger.encode()]


def despaced(raw: str, words: frozenset[bytes]) -> str | None:
    """'i g n o r e  a l l' read as 'ignore all', when the text has such runs of single letters. Reads the raw
    text: folding makes the double space between spaced-out words one, and the word breaks with it."""
    if len(words & _LETTERS) >= 5 and _HAS_SPACED.search(raw):
        return _SPACED.sub(r"\1", raw)
    return None


def _from_base64(candidate: str) -> str | None:
    padded = candidate + "=" * (-len(candidate) % 4)
    try:
        return base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None


def _from_hex(candidate: str) -> str | None:
    try:
        return bytes.fromhex(re.sub(r"0x|\\x|[\s:,]", "", candidate.strip())).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None


def _from_binary(candidate: str) -> str | None:
    try:
        return bytes(int(b, 2) for b in re.findall("[01]{8}", candidate)).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None


_HEX_DIGITS = b"0123456789abcdef"
# Two-digit hex words that are not English words ('be', 'ad' are): at least one digit.
_HEX_PAIRS = frozenset(bytes([a, b]) for a in _HEX_DIGITS for b in _HEX_DIGITS if not bytes([a, b]).isalpha())
_DECIMAL_PAIRS = frozenset(p for p in _HEX_PAIRS if p.isdigit())


def _long_words(words: frozenset[bytes]) -> bool:
    return max(map(len, words), default=0) >= 20


def _hex_words(words: frozenset[bytes]) -> bool:
    """A long all-hex word, or many two-digit hex words ('69 67 6e'), not English's 'be' and 'ad', nor the '10', '30'
    and '45' of times and dates: hex text has pairs with a letter ('6e' is n, '6f' o, '2e' a full stop)."""
    pairs = words & _HEX_PAIRS
    if (len(pairs) >= 6 and not pairs <= _DECIMAL_PAIRS) or max(map(len, words), default=0) >= 24:
        return len(pairs) >= 6 or any(len(w) >= 24 and not w.strip(_HEX_DIGITS) for w in words)
    return False


def _bit_words(words: frozenset[bytes]) -> bool:
    return sum(1 for w in words if len(w) == 8 and not w.strip(b"01")) >= 3


# Each decoder runs only when the text's words show a run of its kind: a regex over 4,000 characters of prose
# for nothing is what the gates save.
_RUNS: tuple[tuple[str, Callable[[frozenset[bytes]], bool], re.Pattern[str], Callable[[str], str | None]], ...] = (
    ("binary", _bit_words, re.compile(r"(?:[01]{8}\s?){6,}"), _from_binary),
    # Starts with a hex digit and goes on over hex digits, separators and '0x' or '\\x' prefixes.
    ("hex", _hex_words, re.compile(r"[0-9a-fA-F][0-9a-fA-F\s:,x\\]{23,}"), _from_hex),
    ("base64", _long_words, re.compile(r"[A-Za-z0-9+/_-]{20,}={0,2}"), _from_base64),
)


def _readable(decoded: str) -> bool:
    printable = sum(ch.isprintable() or ch in "\n\t" for ch in decoded)
    return len(decoded) >= 8 and printable >= 0.9 * len(decoded)


def decoded_runs(raw: str, words: frozenset[bytes]) -> list[tuple[str, str]]:
    """At most MAX_CANDIDATES runs that look binary, hex or base64, each decoded once where it decodes to text."""
    out: list[tuple[str, str]] = []
    tried = 0
    for codec, shows, regex, decode in _RUNS:
        if not shows(words):
            continue
        for m in regex.finditer(raw):
            if tried >= MAX_CANDIDATES:
                return out
            tried += 1
            decoded = decode(m.group()[:MAX_CANDIDATE_CHARS])
            if decoded is not None and _readable(decoded):
                out.append((codec, decoded))
    return out


_ESCAPE = re.compile(r"\\u[0-9a-fA-F]{4}|\\x[0-9a-fA-F]{2}|&#x?[0-9a-fA-F]{2,6};|%[0-9a-fA-F]{2}")


def unescaped(raw: str) -> str | None:
    """Unicode and hex escapes, HTML entities and percent-encoding resolved, when the text holds enough of them
    to hide a phrase (a URL with one '%20' is not a payload); else None."""
    if ("\\" not in raw and "&" not in raw and "%" not in raw) or len(_ESCAPE.findall(raw)) < 6:
        return None
    text = re.sub(r"\\u([0-9a-fA-F]{4})|\\x([0-9a-fA-F]{2})", lambda m: chr(int(m.group(1) or m.group(2), 16)), raw)
    text = urllib.parse.unquote(html.unescape(text))
    return text if text != raw else None


_QUOTED = re.compile(r'"[^"\n]{1,300}"|(?<!\w)\'[^\'\n]{1,300}\'(?!\w)|`[^`\n]{1,300}`')
_DISCUSSED = re.compile(r"\b(?:prompt injections?|injections?|jailbreaks?|attacks?|attackers?|red[- ]team\w*|"
                        r"classifiers?|filters?|detect\w*|defen[cs]e|defend\w*|mitigat\w*|vulnerab\w*|security|"
                        r"example|phrase|pattern|glossary)\b")


def quoted_spans(folded: str) -> list[tuple[int, int]]:
    return [q.span() for q in _QUOTED.finditer(folded)]


def discussed(folded: str, start: int, end: int, spans: list[tuple[int, int]]) -> bool:
    """Whether text[start:end] sits inside a quoted phrase (`spans`, from quoted_spans) of a text that talks about
    attacks: the quoted attack of a security question, not an attack. (An attacker can dress an attack so; Prompt
    Shields is the layer that reads intent.)"""
    inside = any(q_start <= start and end <= q_end for q_start, q_end in spans)
    return inside and _DISCUSSED.search(folded) is not None


# Sentence ends (. ! ? ; : and line breaks) as a token of their own, SENTENCE_END, for the cue model.
SENTENCE_END = b"|"
_SENTENCE_TOKEN = bytes(c if chr(c).isalnum() or c in b"_@$" or c >= 128 else (124 if c in b".!?;:\n|" else 32)
                        for c in range(256))


def sentence_tokens(folded: str) -> list[bytes]:
    """The folded text's word tokens (those of `tokens`) in order, with SENTENCE_END where a sentence ends."""
    return folded.encode().translate(_SENTENCE_TOKEN).replace(b"|", b" | ").split()
