"""Hashed bag-of-words embeddings of the simulator."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tools.simulator.embeddings import cosine, decode_base64, embed, encode

REPO_ROOT = Path(__file__).resolve().parents[3]


def test_identical_texts_have_identical_unit_vectors() -> None:
    one = embed("The cat sat on the mat", 256)

    assert one == embed("The cat sat on the mat", 256)
    assert len(one) == 256
    assert math.isclose(math.sqrt(sum(x * x for x in one)), 1.0)


def test_case_and_punctuation_do_not_change_the_vector() -> None:
    assert embed("Hello, World!", 64) == embed("hello world", 64)


def test_texts_sharing_words_are_closer_than_unrelated_texts() -> None:
    base = embed("quarterly revenue grew strongly in europe", 256)
    related = embed("revenue in europe grew this quarter", 256)
    unrelated = embed("the recipe needs two eggs and flour", 256)

    assert cosine(base, related) > 0.5
    assert cosine(base, unrelated) < 0.3
    assert cosine(base, related) > cosine(base, unrelated) + 0.3


def test_vectors_are_the_same_in_another_process() -> None:
    # Python's hash() is salted per process; a cache shared by workers needs stable vectors.
    script = "import json; from tools.simulator.embeddings import embed; print(json.dumps(embed('stable words', 32)))"
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=True
    ).stdout

    assert json.loads(out) == embed("stable words", 32)


@pytest.mark.parametrize("text", ["?!", ""])
def test_text_without_words_still_gets_a_unit_vector(text: str) -> None:
    vector = embed(text, 16)
    assert math.isclose(math.sqrt(sum(x * x for x in vector)), 1.0)


def test_base64_is_little_endian_float32_of_the_same_vector() -> None:
    vector = embed("encode me please", 128)
    encoded = encode(vector, "base64")

    assert isinstance(encoded, str)
    assert len(decode_base64(encoded)) == 128
    assert decode_base64(encoded) == pytest.approx(vector, abs=1e-6)
    assert encode(vector, "float") == vector
