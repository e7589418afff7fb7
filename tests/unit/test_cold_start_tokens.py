"""Token counts from bpe-openai's Rust extension alone equal the package's own Encoding's."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import bpe_openai
import pytest

from shared.core import tokens

ROOT = Path(__file__).resolve().parents[2]
TEXTS = [
    "", "hello", "Hello, world! \U0001f600 " * 40, "naïve café", "lone \ud800 surrogate", "日本語のテキストです。",
    " \n\t  x\r\n", "<|endoftext|> is text here", "def f(x):\n    return x ** 2\n" * 30, "a" * 5000,
]


def _package_count(model: str, text: str) -> int:
    """What counter_for returned before it read the Rust extension directly."""
    encoding = bpe_openai.get_encoding(bpe_openai.encoding_name_for_model(model))
    try:
        return len(encoding.encode_ordinary(text))
    except ValueError:
        return len(text.encode("utf-8"))


@pytest.mark.parametrize("model", ["gpt-4o-mini", "gpt-4o", "GPT-4.1", "gpt-4.1-mini"])
def test_rust_counts_equal_the_package_encoding(model: str) -> None:
    assert tokens._rust_tokenizer(model) is not None  # the fast path is the one under test
    count = tokens.counter_for(model)
    for text in TEXTS:
        assert count(text) == _package_count(model, text), text[:40]


def test_over_the_chunk_limit_or_the_length_limit_counts_bytes_as_before() -> None:
    count = tokens.counter_for("gpt-4o-mini")
    many_tokens = " a" * 250_000  # 250,000 tokens: over the Encoding's chunk limit of 200,000
    assert count(many_tokens) == _package_count("gpt-4o-mini", many_tokens) == len(many_tokens)
    long_text = "word " * 200_000  # a million characters
    assert count(long_text) == _package_count("gpt-4o-mini", long_text) == len(long_text)


def test_models_the_extension_does_not_name_use_the_package() -> None:
    assert tokens._rust_tokenizer("gpt-4") is None
    assert tokens.counter_for("gpt-4")("hello world") == _package_count("gpt-4", "hello world")
    assert tokens.counter_for("some-llama")("hello") == len(b"hello")


def test_the_fast_path_never_imports_the_package() -> None:
    code = ("import json, sys\nfrom shared.core.tokens import counter_for\n"
            "n = counter_for('gpt-4o-mini')('hello world')\n"
            "print(json.dumps({'n': n, 'package': 'bpe_openai' in sys.modules}))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                         check=True)
    assert json.loads(out.stdout) == {"n": 2, "package": False}
