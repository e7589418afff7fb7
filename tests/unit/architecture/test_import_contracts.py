"""The import contracts of pyproject.toml hold, and a forbidden import breaks them (what `make lint` runs)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(LINT_IMPORTS), "--no-logo", "--no-cache", "pyproject.toml"], cwd=root,
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    """shared/, functions/ and the contracts, copied so an import can be added without touching the repository."""
    for package in ("shared", "functions"):
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    return tmp_path


def test_the_contracts_are_kept(copy: Path) -> None:
    result = lint_imports(copy)
    assert result.returncode == 0, result.stdout
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(("module", "forbidden", "contract"), [
    ("shared/upstream/resilience/backoff.py", "from shared.observability import tracing",
     "resilience never imports observability"),
    ("shared/state/budget.py", "from shared.pipeline import gateway", "shared/ is layered"),
    ("shared/core/values.py", "import shared.upstream.wire", "shared/ is layered"),
    ("functions/fallback.py", "from shared.state import cosmos", "functions/ never imports the state adapters"),
])
def test_a_forbidden_import_breaks_a_contract(copy: Path, module: str, forbidden: str, contract: str) -> None:
    path = copy / module
    path.write_text(path.read_text() + f"\n{forbidden}  # noqa\n")
    result = lint_imports(copy)
    assert result.returncode != 0
    broken = [line for line in result.stdout.splitlines() if line.endswith("BROKEN")]
    assert any(contract in line for line in broken), result.stdout
