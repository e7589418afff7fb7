"""The README's examples, taken from the README itself, run in order against the app as `make run`
starts it (local.settings.example.json, the dev tenant), and answer in the shape the README shows.

A fenced block preceded by `<!-- readme-test -->` is run with bash; the next block preceded by
`<!-- readme-output -->` is what it prints. `<!-- readme-test: until-shape -->` is re-run until the
shape matches (a queued job is picked up a moment later). `<!-- readme-settings -->` blocks are
settings a newcomer starts with, checked with the app's own validation.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tools.appsettings import EXAMPLE_SETTINGS, ROOT, SettingsProblem, effective, file_values, validate
from tools.localenv import LocalStack, free_port

README = ROOT / "README.md"
BLOCK = re.compile(r"<!-- readme-(test|test: until-shape|output|settings) -->\n\s*```(\w*)\n(.*?)\n\s*```", re.DOTALL)
POLLS = 60  # until-shape: a job is picked up within a few queue polls


@dataclass
class Example:
    script: str
    expected: str
    until_shape: bool


def examples() -> list[Example]:
    found: list[Example] = []
    for marker, _, body in BLOCK.findall(README.read_text()):
        if marker == "output":
            found[-1].expected = body
        elif marker.startswith("test"):
            found.append(Example(body, "", marker.endswith("until-shape")))
    return found


def same_shape(expected: Any, actual: Any) -> bool:
    """Same keys all the way down; null matches anything (a job's result before it is done)."""
    if expected is None or actual is None:
        return True
    if isinstance(expected, dict):
        return (isinstance(actual, dict) and expected.keys() == actual.keys()
                and all(same_shape(expected[k], actual[k]) for k in expected))
    if isinstance(expected, list):
        return isinstance(actual, list) and all(same_shape(expected[0], a) for a in actual) if expected else True
    if isinstance(expected, bool) or isinstance(actual, bool):
        return type(expected) is type(actual)
    if isinstance(expected, int | float):
        return isinstance(actual, int | float)
    return type(expected) is type(actual)


def shape_problem(expected: str, actual: str) -> str | None:
    """Why `actual` does not have the shape of the README's `expected` output, or None."""
    want = [line for line in expected.splitlines() if line.strip()]
    got = [line for line in actual.splitlines() if line.strip()]
    if want[0].startswith("data: "):  # a stream: any number of chunks shaped like one shown, then [DONE]
        if not got or got[-1] != "data: [DONE]":
            return "the stream does not end with data: [DONE]"
        seen = [json.loads(line[6:]).keys() for line in want if line.startswith("data: {")]
        bad = [line for line in got[:-1] if not line.startswith("data: ") or json.loads(line[6:]).keys() not in seen]
        return f"chunks shaped unlike the README's: {bad[:2]}" if bad else None
    if len(want) != len(got):
        return f"{len(got)} lines where the README shows {len(want)}"
    for shown, line in zip(want, got, strict=True):
        try:
            shown_json = json.loads(shown)
        except json.JSONDecodeError:
            continue  # a text line: any text (the simulator's words vary)
        try:
            if not same_shape(shown_json, json.loads(line)):
                return f"{line} is not shaped like {shown}"
        except json.JSONDecodeError:
            return f"{line!r} is not JSON"
    return None


@pytest.fixture(scope="module")
def readme_app(stack: LocalStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    """The app with the example settings, as a fresh clone's `make run` has it, and a folder with
    the local.settings.json the README's snippets read (moved to this stack's ports)."""
    port = free_port()
    # A database of its own, as a fresh `make run` has: the example's TENANTS seed its tenant
    # directory (the stack's other apps seed theirs with other tenants named `dev`).
    # And a jobs queue of its own, named in that local.settings.json: the stack's app takes every
    # message of the stack's queue into its own database.
    fresh = {"COSMOS_DATABASE": "aigw-readme", "JOBS_QUEUE": "readme-jobs"}
    stack.create_job_queues(fresh["JOBS_QUEUE"])
    stack.start_app(name="readme-app", port=port, extra_env=fresh)
    folder = tmp_path_factory.mktemp("clone")
    (folder / "local.settings.json").write_text(json.dumps({"IsEncrypted": False, "Values": {**stack.settings,
                                                                                             **fresh}}))
    try:
        yield port, folder
    finally:
        stack.stop("readme-app")


def _run(script: str, port: int, folder: Path) -> subprocess.CompletedProcess[str]:
    # The only rewrites: this stack's app port and the interpreter a clone's .venv would have.
    script = script.replace("127.0.0.1:7071", f"127.0.0.1:{port}").replace(".venv/bin/python", sys.executable)
    return subprocess.run(["bash", "-e", "-o", "pipefail", "-c", script], cwd=folder, capture_output=True,  # noqa: S607
                          text=True, timeout=60, check=False)


def test_the_readme_has_runnable_examples() -> None:
    found = examples()
    assert len(found) >= 10 and all(e.expected for e in found), "every readme-test block shows its output"


def test_every_readme_example_runs_in_order_and_answers_as_shown(readme_app: tuple[int, Path]) -> None:
    port, folder = readme_app
    for example in examples():
        for _ in range(POLLS if example.until_shape else 1):
            proc = _run(example.script, port, folder)
            problem = f"exit {proc.returncode}: {proc.stderr[-500:]}" if proc.returncode else None
            problem = problem or shape_problem(example.expected, proc.stdout)
            if problem is None or not example.until_shape:
                break
            time.sleep(0.5)  # waiting for the queue, not asserting a time
        assert problem is None, f"README example:\n{example.script}\n{problem}"


def _settings_block() -> dict[str, str]:
    body = next(b for marker, _, b in BLOCK.findall(README.read_text()) if marker == "settings")
    words = shlex.split(body.replace("\\\n", " "))
    return dict(w.split("=", 1) for w in words[: words.index("make")])


def test_the_ollama_example_is_complete_and_without_its_price_refused_as_the_readme_says() -> None:
    example = _settings_block()
    assert set(example) == {"AI_ENDPOINTS", "MODEL_PRICES"}
    base = file_values(EXAMPLE_SETTINGS)
    validate(effective(base, example))
    with pytest.raises(SettingsProblem) as err:
        validate(effective(base, {"AI_ENDPOINTS": example["AI_ENDPOINTS"]}))
    assert "MODEL_PRICES has no price for llama3.2, but tenant 'dev' has a USD limit" in str(err.value)
    assert "MODEL_PRICES has no price for llama3.2, but tenant 'dev' has a USD limit" in README.read_text()
