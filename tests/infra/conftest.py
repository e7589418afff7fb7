"""Fixtures for the infra tests: the infra/ folder and a cached pycep parse of its Bicep files."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from pycep import BicepParser

INFRA = Path(__file__).resolve().parents[2] / "infra"


@functools.cache
def _parser() -> BicepParser:
    return BicepParser()  # building the grammar is the slow part: once per session


@functools.cache
def _parse(path: Path) -> Mapping[str, Any]:
    # pycep types the tree as nested TypedDicts; the tests read it as plain JSON and never change it.
    return _parser().parse(file_path=path)


@pytest.fixture(scope="session")
def infra_dir() -> Path:
    return INFRA


@pytest.fixture(scope="session")
def parse_bicep() -> Callable[[Path], Mapping[str, Any]]:
    """pycep's JSON tree of a Bicep file (parameters, variables, resources, modules, outputs)."""
    return _parse
