"""Every Bicep file under infra/ parses with pycep (the parser checkov uses) and its module paths resolve."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

INFRA = Path(__file__).resolve().parents[2] / "infra"
BICEP_FILES = sorted(INFRA.rglob("*.bicep"))

# The session fixture from conftest.py: a Bicep file -> pycep's read-only JSON tree.
ParseBicep = Callable[[Path], Mapping[str, Any]]


def _id(path: Path) -> str:
    return str(path.relative_to(INFRA))


def test_infra_has_main_and_modules() -> None:
    assert INFRA / "main.bicep" in BICEP_FILES
    assert len(BICEP_FILES) > 1, "main.bicep should compose modules under infra/app and infra/core"


@pytest.mark.parametrize("path", BICEP_FILES, ids=_id)
def test_parses(path: Path, parse_bicep: ParseBicep) -> None:
    # A file pycep cannot parse is silently left out of the checkov scan, so this test guards it.
    tree = parse_bicep(path)
    assert tree.get("resources") or tree.get("modules"), f"{_id(path)} declares no resource or module"


@pytest.mark.parametrize("path", BICEP_FILES, ids=_id)
def test_module_paths_resolve(path: Path, parse_bicep: ParseBicep) -> None:
    for name, module in parse_bicep(path).get("modules", {}).items():
        # Local modules only: registry modules need a Bicep restore and are invisible to checkov.
        assert module["type"] == "local", f"{_id(path)}: module {name} is not a local file"
        target = (path.parent / module["detail"]["path"]).resolve()
        assert target.is_file(), f"{_id(path)}: module {name} points at missing {module['detail']['path']}"


def test_every_module_file_is_used(parse_bicep: ParseBicep) -> None:
    used = {INFRA / "main.bicep"}
    for path in BICEP_FILES:
        for module in parse_bicep(path).get("modules", {}).values():
            used.add((path.parent / module["detail"]["path"]).resolve())
    unused = [_id(p) for p in BICEP_FILES if p.resolve() not in used]
    assert not unused, f"Bicep files no module deploys: {unused}"
