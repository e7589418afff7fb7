"""`make audit`: pip-audit over the hash-locked app requirements, with reviewed exceptions, failing closed.

Every locked package must be audited: pip-audit reports a package it could not look up as skipped and
still exits 0 ("No known vulnerabilities found"), so a skip fails here, and so does a vulnerability
database that does not answer. `--unreachable=warn` (what `make test` uses) turns only that last case
into a loud NOT AUDITED line; findings, an expired or malformed ignore entry fail in every mode.
"""

from __future__ import annotations

import argparse
import datetime
import json
import subprocess
import sys
import tempfile
import tomllib
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
IGNORE_FILE = ROOT / "audit-ignore.toml"
# pip-audit's PyPI service asks this URL for each locked release; one answer tells whether it can work at all.
RELEASE_URL = "https://pypi.org/pypi/{name}/{version}/json"
FIELDS = {"id", "package", "reason", "expires"}


class AuditError(Exception):
    """The audit cannot vouch for the lock: the message says why."""


@dataclass(frozen=True)
class Ignored:
    id: str
    package: str
    reason: str
    expires: datetime.date


def read_ignores(path: Path, today: datetime.date) -> list[Ignored]:
    """The reviewed exceptions; a malformed or expired entry is an error, so an exception cannot outlive its review."""
    entries = tomllib.loads(path.read_text()).get("ignore", [])
    found: list[Ignored] = []
    for n, entry in enumerate(entries, 1):
        if set(entry) != FIELDS or not all(str(entry[k]).strip() for k in FIELDS):
            raise AuditError(f"{path.name} entry {n}: needs exactly {sorted(FIELDS)}, each non-empty")
        if not isinstance(entry["expires"], datetime.date):
            raise AuditError(f"{path.name} entry {n}: expires must be a TOML date (2027-01-31)")
        if entry["expires"] < today:
            raise AuditError(f"{path.name} entry {n} ({entry['id']}) expired on {entry['expires']}: review it again")
        found.append(Ignored(entry["id"], entry["package"].lower(), entry["reason"], entry["expires"]))
    return found


def locked(lock: Path) -> list[tuple[str, str]]:
    """(name, version) of every `name==version` (or `name[extras]==version`) line of a pip-compile style lock."""
    pins = []
    for line in lock.read_text().splitlines():
        if line[:1].isalnum() and "==" in line:
            name, _, rest = line.partition("==")
            pins.append((name.split("[")[0].strip(), rest.split(";")[0].split()[0]))  # without its [extras]
    return pins


def database_answers(name: str, version: str, timeout: float) -> bool:
    """Whether PyPI's per-release JSON, pip-audit's database, answers for a release we know exists."""
    try:
        with urllib.request.urlopen(RELEASE_URL.format(name=name, version=version), timeout=timeout) as reply:  # noqa: S310
            return bool(reply.status == 200)
    except (urllib.error.URLError, TimeoutError):
        return False


def run_pip_audit(lock: Path, timeout: float) -> dict[str, Any]:
    """pip-audit's JSON report; its own exit status is not used, the report is read instead."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "audit.json"
        # --disable-pip: the lock is complete and hashed, so nothing is resolved or installed to audit it.
        command = [sys.executable, "-m", "pip_audit", "--requirement", str(lock), "--disable-pip",
                   "--vulnerability-service", "pypi", "--timeout", str(timeout), "--progress-spinner", "off",
                   "--format", "json", "--output", str(report)]
        try:  # one request per locked package, each bounded by --timeout; the whole run too, so CI never hangs
            subprocess.run(command, check=False, timeout=timeout * 30, capture_output=True)
        except subprocess.TimeoutExpired as exc:
            raise AuditError(f"pip-audit did not finish within {exc.timeout:.0f} s") from exc
        if not report.exists():
            raise AuditError("pip-audit wrote no report")
        result: dict[str, Any] = json.loads(report.read_text())
        return result


def problems(report: dict[str, Any], ignores: list[Ignored]) -> tuple[list[str], list[str]]:
    """(findings not covered by an ignore entry, packages that could not be audited)."""
    findings, skipped = [], []
    for dep in report["dependencies"]:
        if "skip_reason" in dep:
            skipped.append(f"{dep['name']}: {dep['skip_reason']}")
        for vuln in dep.get("vulns", []):
            ids = {vuln["id"], *vuln.get("aliases", [])}
            if not any(i.package == dep["name"].lower() and i.id in ids for i in ignores):
                fixed = ", ".join(vuln.get("fix_versions", [])) or "none yet"
                findings.append(f"{dep['name']} {dep['version']}: {vuln['id']} (fixed in {fixed})")
    return findings, skipped


def audit(lock: Path, timeout: float, unreachable: str, today: datetime.date) -> int:
    ignores = read_ignores(IGNORE_FILE, today)
    pins = locked(lock)
    if not database_answers(*pins[0], timeout):
        message = f"NOT AUDITED: PyPI's vulnerability data ({RELEASE_URL}) does not answer from here"
        if unreachable == "fail":
            raise AuditError(message)
        print(f"{message}; {len(pins)} packages of {lock.name} unchecked, {len(ignores)} reviewed exceptions in force")
        return 0
    report = run_pip_audit(lock, timeout)
    findings, skipped = problems(report, ignores)
    for line in findings:
        print(f"VULNERABLE {line}")
    # pip-audit leaves out what this platform's markers exclude (pywin32 on Linux): the count is of the rest.
    count = len(report["dependencies"])
    if skipped:
        raise AuditError(f"{len(skipped)} of {count} packages could not be audited: " + "; ".join(skipped[:5]))
    print(f"{count} packages of {lock.name} audited: {len(findings)} findings, {len(ignores)} reviewed exceptions")
    return 1 if findings else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("lock", type=Path)
    parser.add_argument("--timeout", type=float, default=20.0, help="seconds per request to the database")
    parser.add_argument("--unreachable", choices=["fail", "warn"], default="fail")
    args = parser.parse_args()
    try:
        return audit(args.lock, args.timeout, args.unreachable, datetime.datetime.now(datetime.UTC).date())
    except AuditError as exc:
        print(f"audit failed: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
