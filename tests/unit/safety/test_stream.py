"""The stream redactor: for any chunking, what it lets out is exactly the whole text's redaction, within its window."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.safety.redact import DEFAULT_HOLD, KINDS, StreamRedactor, redact
from tests.unit.safety.test_redact import JWT, PEM, SECRETS

PII = ["ana.lopez@contoso.co.uk", "+1 415-555-0132", "4111 1111 1111 1111", "378282246310005",
       "DE89 3704 0044 0532 0130 00", "10.0.0.1", "2001:db8::8a2e:370:7334", "123-45-6789",
       "AccountKey=Zm9vYmFyYmF6cXV4+/Zm9vYmFy==;", "Password=hunter2!;"]
ORDINARY = ["Order ORD-2024-558812 ", "v3.11.4 ", "on 2024-01-15 ", "ticket 555-0199 ", " ", "\n", "sk-learn ",
            "4111 1111 1111 1112 ", "==", "eyJ", "xox", "-----BEGIN ", "ghp_", "AKIA", "@", "."]
# Long fillers push texts past the window, so the stream must decide while text is still arriving.
FILLERS = ["The quick brown fox jumps over the lazy dog. " * n for n in (2, 5, 9)] + ["x" * 250]
FRAGMENTS = st.lists(st.sampled_from(SECRETS + PII + ORDINARY + FILLERS) | st.text(max_size=12), max_size=30)


def stream(text: str, cuts: list[int], kinds: tuple[str, ...] = KINDS) -> tuple[str, StreamRedactor, int]:
    """The text fed in pieces at the given cut points; what came out, the redactor, the most it held."""
    redactor, out, held, start = StreamRedactor(kinds), [], 0, 0
    for cut in [*sorted({c % (len(text) + 1) for c in cuts}), len(text)]:
        out.append(redactor.feed(text[start:cut]))
        held = max(held, redactor.pending)
        start = cut
    out.append(redactor.flush())
    return "".join(out), redactor, held


@settings(max_examples=400, deadline=None)
@given(FRAGMENTS, st.lists(st.integers(min_value=0, max_value=10_000), max_size=40))
def test_any_chunking_lets_out_exactly_the_whole_redaction(fragments: list[str], cuts: list[int]) -> None:
    text = "".join(fragments)
    whole, counts = redact(text, KINDS)
    streamed, redactor, held = stream(text, cuts)
    assert streamed == whole
    assert redactor.counts == counts
    assert held <= DEFAULT_HOLD


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(SECRETS), st.text(max_size=300), st.text(max_size=300),
       st.lists(st.integers(min_value=0, max_value=2_000), min_size=1, max_size=30))
def test_a_secret_cut_anywhere_never_gets_out(secret: str, before: str, after: str, cuts: list[int]) -> None:
    text = f"{before} {secret} {after}"
    streamed, redactor, _ = stream(text, cuts, ("secrets",))
    assert secret not in streamed
    assert "[REDACTED:secrets]" in streamed
    assert redactor.counts["secrets"] >= 1


def test_one_character_at_a_time_and_nothing_held_after_flush() -> None:
    text = f"token {JWT} then {PEM} and ana@example.com, end"
    redactor = StreamRedactor(KINDS)
    streamed = "".join(redactor.feed(ch) for ch in text) + redactor.flush()
    assert streamed == "token [REDACTED:secrets] then [REDACTED:secrets] and [REDACTED:email], end"
    assert redactor.pending == 0


def test_clean_text_comes_out_once_the_window_fills() -> None:
    redactor = StreamRedactor(["secrets"], hold=DEFAULT_HOLD)
    assert redactor.feed("a" * 100) == ""  # still within the window: it could begin a key
    released = redactor.feed("b" * 400)
    assert released and "a" * 100 in released
    assert redactor.pending <= DEFAULT_HOLD
    assert released + redactor.flush() == "a" * 100 + "b" * 400


def test_every_cut_around_each_value_in_a_long_text() -> None:
    """Exhaustive where random cuts are thin: the window's edge at every place in and around each value, with the
    value glued to a word (its lookbehind must still see the character let out before it) or standing alone."""
    for value in SECRETS + PII:
        for glue in ("abc", " "):
            text = "y" * 300 + glue + value + " z" * 120  # long enough for the window to release past the value
            whole = redact(text, KINDS)[0]
            for cut in range(250, len(text)):
                redactor = StreamRedactor(KINDS)
                assert redactor.feed(text[:cut]) + redactor.feed(text[cut:]) + redactor.flush() == whole, (value, cut)
