"""What is installed comes only from the hash-locked requirements; the deploy carries the app's lock
alone; no `.pth` file or customize module runs code at start; the audit's ignore file cannot go stale."""

from __future__ import annotations

import ast
import datetime
import json
import re
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.support.audit import AuditError, Ignored, problems, read_ignores

ROOT = Path(__file__).resolve().parents[2]
APP_LOCK, DEV_LOCK = ROOT / "requirements.txt", ROOT / "requirements-dev.txt"
# A name, its extras (the lock keeps them: pip's hash mode refuses an extra it would have to pick a
# version for, Makefile's --no-strip-extras), `==` a version, an environment marker, the hashes.
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[A-Za-z0-9,._-]+\])?==(\S+)(?: ;[^\\]*)?"
                 r"((?:\s*\\\s*--hash=sha256:[0-9a-f]{64})+)\s*$")
DEV_TOOLS = {"pytest", "ruff", "mypy", "uv", "pip-audit", "cyclonedx-bom", "schemathesis", "pip"}
# What the package deployed to Azure holds (.funcignore decides): anything else there is a finding.
DEPLOYED = {"function_app.py", "host.json", "requirements.txt", "shared", "functions"}
# The one `.pth` file of a venv made by `python -m venv` and filled by `make deps`: setuptools' (from
# ensurepip) switch between its own distutils and the standard library's. Anything else, an editable
# install's `__editable__*.pth` or a package's own, runs code at every interpreter start.
ALLOWED_PTH = {
    "distutils-precedence.pth": "import os; var = 'SETUPTOOLS_USE_DISTUTILS'; "
    "enabled = os.environ.get(var, 'local') == 'local'; enabled and __import__('_distutils_hack').add_shim();",
}


def _normal(name: str) -> str:
    """A package name as PEP 503 compares it."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirements(lock: Path) -> dict[str, str]:
    """name -> version of every requirement of a lock; fails on a requirement without a pin and a hash."""
    text = lock.read_text()
    pins: dict[str, str] = {}
    for block in re.split(r"\n(?=[^\s#])", text):
        line = "\n".join(part for part in block.splitlines() if not part.lstrip().startswith("#")).strip()
        if not line:
            continue
        match = PIN.match(line)
        assert match, f"{lock.name}: not pinned with hashes: {line[:80]}"
        pins[_normal(match.group(1))] = match.group(2)
    return pins


def test_every_requirement_is_pinned_with_hashes() -> None:
    assert len(_requirements(APP_LOCK)) > 100
    assert len(_requirements(DEV_LOCK)) > len(_requirements(APP_LOCK))


def test_the_app_lock_holds_no_dev_tool_and_dev_uses_the_app_versions() -> None:
    app, dev = _requirements(APP_LOCK), _requirements(DEV_LOCK)
    assert not DEV_TOOLS & app.keys()
    assert {name: dev.get(name) for name in app} == app  # the tests run on what is deployed


def test_the_locks_hold_what_the_in_files_pin() -> None:
    checkov = (ROOT / "infra" / "checkov-requirements.in", ROOT / "infra" / "checkov-requirements.txt")
    for source, lock in ((ROOT / "requirements.in", APP_LOCK), (ROOT / "requirements-dev.in", DEV_LOCK), checkov):
        pinned = _requirements(lock)
        for name, version in re.findall(r"^([A-Za-z0-9][\w.-]*)(?:\[[\w,]+\])?==(\S+)", source.read_text(), re.M):
            assert pinned.get(_normal(name)) == version, f"{name}: run make lock"


def test_make_deps_installs_only_from_the_dev_lock_with_hashes() -> None:
    plan = subprocess.run(["make", "-n", "-B", ".venv/.installed"], cwd=ROOT, check=True,  # noqa: S607
                          capture_output=True, text=True).stdout
    installs = [line for line in plan.splitlines() if "pip install" in line]
    assert len(installs) == 1, plan
    assert "--require-hashes" in installs[0] and installs[0].endswith("-r requirements-dev.txt"), installs[0]


def test_every_install_that_make_test_runs_checks_hashes() -> None:
    # Besides make deps: infra/checkov.sh's own venv, installed from its lock (infra/checkov-requirements.txt).
    script = (ROOT / "infra" / "checkov.sh").read_text()
    installs = [line for line in script.splitlines() if "pip install" in line]
    assert installs and all("--require-hashes -r" in line for line in installs), installs
    assert _requirements(ROOT / "infra" / "checkov-requirements.txt")["checkov"]


def test_the_sbom_lists_every_locked_package_with_version_and_hashes(tmp_path: Path) -> None:
    # What `make sbom` runs, without make: make would rebuild a venv whose stamp is older than the lock.
    out = tmp_path / "sbom.json"
    subprocess.run([sys.executable, "-W", "ignore", "-m", "cyclonedx_py", "requirements", str(APP_LOCK),
                    "--output-format", "JSON", "--output-file", str(out)], check=True, capture_output=True)
    components = json.loads(out.read_text())["components"]
    listed = {_normal(c["name"]): (c["version"], c["externalReferences"][0]["hashes"]) for c in components}
    assert {name: version for name, (version, _) in listed.items()} == _requirements(APP_LOCK)
    assert all(hashes for _, hashes in listed.values())


def test_the_deployed_package_is_the_app_and_its_lock() -> None:
    def files(*extra: str) -> set[str]:
        listed = subprocess.run(["git", "ls-files", "--cached", *extra], cwd=ROOT, check=True,  # noqa: S607
                                capture_output=True, text=True).stdout
        return set(listed.splitlines())

    deployed = files() - files("--ignored", "--exclude-from=.funcignore")
    assert {path.split("/")[0] for path in deployed} == DEPLOYED


def test_no_pth_file_or_customize_module_runs_code_at_start() -> None:
    site = Path(sysconfig.get_paths()["purelib"])
    assert sys.prefix != sys.base_prefix, "run the tests in the project's venv"
    found = {path.name: path.read_text().strip() for path in site.glob("*.pth")}
    assert found == {name: text for name, text in ALLOWED_PTH.items() if name in found}, sorted(found)
    assert not [p.name for p in site.glob("*customize.py")]


def test_the_deployed_code_cannot_install_anything() -> None:
    # No installer and no process runner in the app: what runs in Azure is what the lock installed.
    banned = {"pip", "ensurepip", "subprocess", "runpy", "site", "setuptools", "pkg_resources"}
    sources = [ROOT / "function_app.py", *(ROOT / "shared").rglob("*.py"), *(ROOT / "functions").rglob("*.py")]
    found = []
    for source in sources:
        for node in ast.walk(ast.parse(source.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            found += [f"{source.relative_to(ROOT)}: {n}" for n in names if n.split(".")[0] in banned]
    assert not found


def _ignore_file(tmp_path: Path, entry: str) -> Path:
    path = tmp_path / "audit-ignore.toml"
    path.write_text(f"[[ignore]]\n{entry}\n")
    return path


TODAY = datetime.date(2027, 1, 15)
ENTRY = 'id = "GHSA-1"\npackage = "aiohttp"\nreason = "the proxy path is not used"\n'


def test_the_projects_ignore_file_is_well_formed_and_in_date() -> None:
    read_ignores(ROOT / "audit-ignore.toml", datetime.datetime.now(datetime.UTC).date())


def test_an_expired_or_incomplete_ignore_entry_fails(tmp_path: Path) -> None:
    with pytest.raises(AuditError, match="expired"):
        read_ignores(_ignore_file(tmp_path, ENTRY + "expires = 2027-01-14"), TODAY)
    with pytest.raises(AuditError, match="needs exactly"):
        read_ignores(_ignore_file(tmp_path, ENTRY), TODAY)
    with pytest.raises(AuditError, match="TOML date"):
        read_ignores(_ignore_file(tmp_path, ENTRY + 'expires = "2027-02-01"'), TODAY)
    assert read_ignores(_ignore_file(tmp_path, ENTRY + "expires = 2027-01-15"), TODAY)[0].package == "aiohttp"


def test_findings_fail_unless_ignored_for_that_package_and_skips_are_reported() -> None:
    # The shape of `pip-audit --format json` (pip_audit/_format/json.py).
    report = {"dependencies": [
        {"name": "aiohttp", "version": "3.14.5", "vulns": [
            {"id": "PYSEC-9", "aliases": ["GHSA-1"], "fix_versions": ["3.14.6"], "description": ""}]},
        {"name": "yarl", "version": "1.25.1", "vulns": [
            {"id": "GHSA-1", "aliases": [], "fix_versions": [], "description": ""}]},
        {"name": "six", "version": "1.17.0", "skip_reason": "Dependency not found on PyPI"},
    ]}
    findings, skipped = problems(report, [])
    assert len(findings) == 2 and skipped == ["six: Dependency not found on PyPI"]
    ignored = [Ignored("GHSA-1", "aiohttp", "reviewed", TODAY)]
    assert problems(report, ignored)[0] == ["yarl 1.25.1: GHSA-1 (fixed in none yet)"]
