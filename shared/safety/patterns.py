"""The redaction kinds as data: each a bounded head pattern, an optional check and an optional tail."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass

# Every head is at most this many characters long (tests/unit/safety checks each pattern's width), so a head that
# starts more than HEAD_MAX + 1 characters before the end of what a stream has seen is decided: no later text can
# change it. The stream's hold-back window must be longer than this.
HEAD_MAX = 160
# Lookbehinds reach at most this far before a match (one character: see opening()); the stream keeps that much
# of the text it has already passed on.
CONTEXT = 1


class Run:
    """A tail that goes on while characters of one class follow, optionally after one literal character."""

    def __init__(self, chars: str, lead: str | None = None) -> None:
        self._run = re.compile(f"{chars}*")
        self._lead = lead

    def advance(self, text: str, final: bool, started: bool) -> tuple[int, bool, bool]:
        """(characters consumed, finished, lead seen): finished once a character outside the class is in sight."""
        consumed = 0
        if self._lead is not None and not started:
            if not text:
                return 0, final, False
            if text[0] != self._lead:
                return 0, True, False
            consumed = 1
        end = self._run.match(text, consumed).end()  # type: ignore[union-attr]
        return end, end < len(text) or final, True


class Until:
    """A tail that swallows everything up to and including a closing marker, or to the end of the text."""

    def __init__(self, marker: str, longest: int) -> None:
        self._marker = re.compile(marker)
        self._keep = longest  # a marker may be cut in two by a chunk boundary: keep its possible start back

    def advance(self, text: str, final: bool, started: bool) -> tuple[int, bool, bool]:
        found = self._marker.search(text)
        if found:
            return found.end(), True, True
        if final:
            return len(text), True, True
        return max(0, len(text) - self._keep), False, True


Tail = tuple[Run | Until, ...]


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def card(found: str) -> bool:
    digits = re.sub(r"\D", "", found)
    return 13 <= len(digits) <= 19 and _luhn(digits)


def iban(found: str) -> bool:
    compact = found.replace(" ", "")
    if not 15 <= len(compact) <= 34:
        return False
    moved = compact[4:] + compact[:4]
    return int("".join(str(int(ch, 36)) for ch in moved)) % 97 == 1


def ipv6(found: str) -> bool:
    try:
        ipaddress.IPv6Address(found)
    except ValueError:
        return False
    # "dead::beef" parses; an address written in prose nearly always carries a digit and three groups.
    return any(ch.isdigit() for ch in found) and found.count(":") >= 2


def phone(found: str) -> bool:
    return 9 <= sum(ch.isdigit() for ch in found) <= 15


def token(found: str) -> bool:
    """A key's random part mixes two of digits, capitals and small letters; 'sk-learn-compatible-api' does not."""
    body = found.split("-", 1)[-1]
    return sum((any(ch.isdigit() for ch in body), any(ch.isupper() for ch in body),
                any(ch.islower() for ch in body))) >= 2


def ssn(found: str) -> bool:
    """Never issued: area 000, 666 or 900-999, group 00, serial 0000."""
    area, group, serial = found.split("-")
    return area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000"


def ipv4(found: str) -> bool:
    return all(int(octet) <= 255 for octet in found.split("."))


@dataclass(frozen=True)
class Pattern:
    """A kind's match: `head` (at most HEAD_MAX long; a group named `value` narrows what is replaced), `check`
    on the head, `tail` swallowed after it, and `needs`: text without which the head cannot match (skips it)."""

    kind: str
    name: str
    head: str
    check: Callable[[str], bool] | None = None
    tail: Tail = ()
    needs: str = ""


def opening(first: str, not_after: str, rest: str) -> str:
    """`first` (one character class) not preceded by `not_after`, then `rest`. Written with the class first
    because a regex that opens with a class or a literal is skipped through text at C speed; one that opens with
    a lookbehind is tried at every position, three times slower."""
    return f"{first}(?<!{not_after}{first}){rest}"


_B64URL = "[A-Za-z0-9_-]"
_PEM = r"-----(?:BEGIN|END) (?:[A-Z0-9]{1,12} ){0,3}PRIVATE KEY-----"
_PHONE_END = r"\d{3,4}[ -]\d{3,4}(?![\w-]|\.\d)"

# In priority order: where two patterns match at the same place, the first wins.
PATTERNS: tuple[Pattern, ...] = (
    Pattern("secrets", "private_key_block", _PEM.replace("(?:BEGIN|END)", "BEGIN"),
            tail=(Until(_PEM.replace("(?:BEGIN|END)", "END"), longest=60),)),
    # Only the value is replaced, so the reader still sees which setting was there.
    Pattern("secrets", "connection_string_secret",
            r"\b(?i:accountkey|sharedaccesskey|password|pwd)=(?P<value>[^;\s\"'<>])", tail=(Run(r"[^;\s\"'<>]"),),
            needs="="),
    # The payload, then the signature after its dot.
    Pattern("secrets", "jwt", opening("e", r"[\w-]", rf"yJ{_B64URL}{{8,150}}\.eyJ"),
            tail=(Run(_B64URL), Run(_B64URL, lead=".")), needs="eyJ"),
    Pattern("secrets", "openai_key", opening("s", r"[\w-]", rf"k-(?:proj-|svcacct-|admin-)?{_B64URL}{{20}}"),
            check=token, tail=(Run(_B64URL),), needs="sk-"),
    Pattern("secrets", "github_token",
            opening("g", r"\w", r"(?:h[pousr]_[A-Za-z0-9]{36}|ithub_pat_[A-Za-z0-9]{22})"),
            tail=(Run("[A-Za-z0-9_]"),), needs="_"),
    Pattern("secrets", "slack_token", opening("x", r"[\w-]", r"ox[baprs]-[A-Za-z0-9]{8}"),
            tail=(Run("[A-Za-z0-9-]"),), needs="xox"),
    Pattern("secrets", "aws_access_key_id",
            opening("A", "[A-Za-z0-9]", r"(?:KIA|SIA|BIA|CCA)[A-Z0-9]{16}(?![A-Za-z0-9])")),
    # Azure keys: the 84-character format (signature 'JQQJ99' at 52), storage's 88-character base64, the 32-hex.
    Pattern("secrets", "azure_key",
            opening("[A-Za-z0-9]", "[A-Za-z0-9]", r"[A-Za-z0-9]{51}JQQJ99[A-Za-z0-9]{26}(?![A-Za-z0-9])"),
            needs="JQQJ99"),
    Pattern("secrets", "azure_storage_key",
            opening("[A-Za-z0-9+/]", "[A-Za-z0-9+/]", r"[A-Za-z0-9+/]{85}==(?![A-Za-z0-9+/=])"), needs="=="),
    Pattern("secrets", "azure_hex_key", opening("[0-9a-f]", "[0-9A-Za-z]", r"[0-9a-f]{31}(?![0-9A-Za-z])")),
    Pattern("email", "email", opening("[A-Za-z0-9._%+-]", r"[\w.%+-]",
                                      r"[A-Za-z0-9._%+-]{0,47}@(?:[A-Za-z0-9-]{1,30}\.){1,3}[A-Za-z]{2,12}(?![\w-])"),
            needs="@"),
    Pattern("iban", "iban",
            # Written in groups of four, or all in one: a mix would swallow the next word ('... 5284 ISBN').
            opening("[A-Z]", "[A-Za-z0-9]", r"[A-Z]\d{2}(?:(?: [A-Z0-9]{4}){2,7}(?: [A-Z0-9]{1,3})?|[A-Z0-9]{11,30})"
                                            r"(?![A-Za-z0-9])"),
            check=iban),
    Pattern("credit_card", "card", opening(r"\d", r"[\d.-]", r"(?:\d{3}(?:-\d{4}-\d{4}-\d{1,7}| \d{4} \d{4} \d{1,7}"
                                                               r"|\d{9,15})|\d{3}[ -]\d{6}[ -]\d{5})(?![\d-]|\.\d)"),
            check=card),
    Pattern("us_ssn", "ssn", opening(r"\d", r"[\d-]", r"\d{2}-\d{2}-\d{4}(?![\d-])"), check=ssn),
    Pattern("ip", "ipv4", opening(r"\d", r"[\w.]", r"\d{0,2}\.\d{1,3}\.\d{1,3}\.\d{1,3}(?!\w|\.\d)"), check=ipv4),
    Pattern("ip", "ipv6", r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])", check=ipv6, needs=":"),
    # Grouped with spaces or dashes ('+1 415-555-0132', '(020) 7946 0958', '020 7946 0958'), or E.164; 9 to 15
    # digits in all, so '12 345 678' and '2024-01-15' are left alone.
    Pattern("phone", "phone", "|".join((
        opening(r"\+", r"[\w+]", rf"\d{{1,3}}[ -]?(?:\(\d{{2,4}}\)[ -]?|\d{{2,4}}[ -]){_PHONE_END}"),
        opening(r"\(", r"[\w+./-]", rf"\d{{2,4}}\)[ -]?{_PHONE_END}"),
        opening(r"\d", r"[\w+./-]", rf"\d{{1,3}}[ -]{_PHONE_END}"),
        opening(r"\+", r"[\w+]", r"\d{9,14}(?!\w)"))), check=phone),
)

KINDS = ("secrets", "email", "phone", "credit_card", "iban", "ip", "us_ssn")
