"""`python -m tools.tenants add NAME`: add a tenant and a new API key to local.settings.json.

The key is printed once and only its SHA-256 is stored, as in Azure (TENANTS in docs/settings.md).
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from shared.core.errors import field_errors
from shared.core.settings import TenantConfig, hash_api_key
from tools.appsettings import SettingsProblem, file_values
from tools.localenv import ensure_local_settings


def add_tenant(path: Path, name: str, limits: dict[str, Any]) -> str:
    """Add tenant `name` with a new key to the TENANTS of `path`; return the key."""
    values = file_values(path)  # refuses a file the app could not read, naming the bad key
    tenants: list[dict[str, Any]] = json.loads(values.get("TENANTS") or "[]")
    if any(t.get("tenant") == name for t in tenants):
        raise SettingsProblem(f"tenant {name!r} is already in {path.name}")
    key = f"aigw-{secrets.token_urlsafe(24)}"
    entry = {"tenant": name, "keys": [{"id": f"{name}-1", "sha256": hash_api_key(key)}], "limits": limits}
    TenantConfig.model_validate(entry)  # the app's own rules for a tenant name and its limits
    tenants.append(entry)
    data = json.loads(path.read_text(encoding="utf-8-sig"))
    data["Values"]["TENANTS"] = json.dumps(tenants)  # Core Tools' rule: every value is a string
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return key


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.tenants", description=(__doc__ or "").strip())
    commands = parser.add_subparsers(dest="command", required=True)
    add = commands.add_parser("add", help="add a tenant and print its new key (once)")
    add.add_argument("name", help="tenant name: letters, digits, '_', '.', '-'")
    add.add_argument("--daily-tokens", type=int, help="token limit per UTC day (default: none)")
    add.add_argument("--rpm", type=int, help="requests per minute per key (default: none)")
    args = parser.parse_args(argv)
    limits = {k: v for k, v in (("daily_tokens", args.daily_tokens), ("rpm", args.rpm)) if v is not None}
    path = ensure_local_settings()
    try:
        key = add_tenant(path, args.name, limits)
    except SettingsProblem as exc:
        print(f"cannot add the tenant: {exc}", file=sys.stderr)
        return 2
    except ValidationError as exc:  # the name or a limit breaks TenantConfig
        problems = "; ".join(f"{e['field']}: {e['message']}" for e in field_errors(exc, whole="tenant"))
        print(f"cannot add the tenant: {problems}", file=sys.stderr)
        return 2
    print(f"added tenant {args.name!r} to {path.name}; restart the app to use it.", file=sys.stderr)
    print("its API key (shown only now; only its SHA-256 is stored):", file=sys.stderr)
    print(key)
    return 0


if __name__ == "__main__":
    sys.exit(main())
