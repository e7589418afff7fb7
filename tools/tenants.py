"""`python -m tools.tenants add NAME`: add a tenant with a new API key, printed once.

Through the running app's admin API when it answers (AIGW_URL, default the local app's port; the
admin key from AIGW_ADMIN_KEY, default the dev tenant's `local-dev-key`); else straight into the
tenant directory in Cosmos when the emulator answers (`make stack` without the app); else into
TENANTS in local.settings.json, which seeds the directory when the app next starts. Only the key's
SHA-256 is ever stored (docs/admin.md).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import sys
import time
import urllib.parse
from pathlib import Path
from typing import Any

import httpx
from pydantic import ValidationError

from shared.core.errors import field_errors
from shared.core.settings import TenantConfig, hash_api_key, load_settings, new_api_key
from tools.appsettings import SettingsProblem, environment, file_values
from tools.localenv import ensure_local_settings

DEV_ADMIN_KEY = "local-dev-key"  # the dev tenant of local.settings.example.json has the admin role


def add_tenant(path: Path, name: str, limits: dict[str, Any]) -> str:
    """Add tenant `name` with a new key to the TENANTS of `path`; return the key."""
    values = file_values(path)  # refuses a file the app could not read, naming the bad key
    tenants: list[dict[str, Any]] = json.loads(values.get("TENANTS") or "[]")
    if any(t.get("tenant") == name for t in tenants):
        raise SettingsProblem(f"tenant {name!r} is already in {path.name}")
    key = new_api_key()
    entry = {"tenant": name, "keys": [{"id": f"{name}-1", "sha256": hash_api_key(key)}], "limits": limits}
    TenantConfig.model_validate(entry)  # the app's own rules for a tenant name and its limits
    tenants.append(entry)
    data = json.loads(path.read_text(encoding="utf-8-sig"))
    data["Values"]["TENANTS"] = json.dumps(tenants)  # Core Tools' rule: every value is a string
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return key


def add_through_api(url: str, admin_key: str, name: str, limits: dict[str, Any]) -> str | None:
    """The new tenant's key, made by the running app's admin API; None when no app answers."""
    try:
        response = httpx.post(f"{url}/api/admin/tenants", headers={"x-api-key": admin_key},
                              json={"tenant": name, "limits": limits}, timeout=30)
    except httpx.TransportError:
        return None
    if response.status_code != 201:
        detail = response.json().get("detail", response.text) if response.content else response.reason_phrase
        raise SettingsProblem(f"the admin API at {url} answered {response.status_code}: {detail}")
    return str(response.json()["key"]["key"])


def add_to_directory(values: dict[str, str], name: str, limits: dict[str, Any]) -> str | None:
    """The new tenant's key, written straight into the directory in Cosmos; None when Cosmos does not answer."""
    endpoint = urllib.parse.urlsplit(values.get("COSMOS_ENDPOINT", ""))
    if not endpoint.hostname or not _answers(endpoint.hostname, endpoint.port or 443):
        return None
    with environment(values):
        settings = load_settings()
    return asyncio.run(_create(settings, name, limits))


async def _create(settings: Any, name: str, limits: dict[str, Any]) -> str:
    from shared.core.errors import Conflict
    from shared.state.cosmos import CosmosState, cosmos_client
    from shared.state.tenants import CosmosTenants

    key = new_api_key()
    config = TenantConfig.model_validate({"tenant": name, "limits": limits,
                                          "keys": [{"id": f"{name}-1", "sha256": hash_api_key(key)}]})
    state = CosmosState(cosmos_client(settings, None), settings.cosmos_database, create=True)
    try:
        await CosmosTenants(state, settings.tenants, time.time).create(config)
    except Conflict:
        raise SettingsProblem(f"tenant {name!r} is already in the tenant directory") from None
    finally:
        await state.close()
    return key


def _answers(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex((host, port)) == 0


def _app_url(path: Path) -> str:
    port = json.loads(path.read_text(encoding="utf-8-sig")).get("Host", {}).get("LocalHttpPort", 7071)
    return os.environ.get("AIGW_URL", f"http://127.0.0.1:{port}").rstrip("/")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.tenants", description=(__doc__ or "").strip(),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    add = commands.add_parser("add", help="add a tenant and print its new key (once)")
    add.add_argument("name", help="tenant name: letters, digits, '_', '.', '-'")
    add.add_argument("--daily-tokens", type=int, help="token limit per UTC day (default: none)")
    add.add_argument("--rpm", type=int, help="requests per minute per key (default: none)")
    args = parser.parse_args(argv)
    limits = {k: v for k, v in (("daily_tokens", args.daily_tokens), ("rpm", args.rpm)) if v is not None}
    path = ensure_local_settings()
    try:
        TenantConfig.model_validate({"tenant": args.name, "limits": limits, "keys": [
            {"id": "check", "sha256": "0" * 64}]})  # the app's rules for a name and limits, before any call
        url = _app_url(path)
        if (key := add_through_api(url, os.environ.get("AIGW_ADMIN_KEY", DEV_ADMIN_KEY), args.name, limits)):
            where = f"through the admin API at {url}; in force on every instance within TENANT_REFRESH_S"
        elif (key := add_to_directory(file_values(path), args.name, limits)):
            where = "to the tenant directory in Cosmos (the app was not running)"
        else:
            key = add_tenant(path, args.name, limits)
            where = f"to {path.name} (neither the app nor Cosmos was running); it seeds the directory at the next start"
    except SettingsProblem as exc:
        print(f"cannot add the tenant: {exc}", file=sys.stderr)
        return 2
    except ValidationError as exc:  # the name or a limit breaks TenantConfig
        problems = "; ".join(f"{e['field']}: {e['message']}" for e in field_errors(exc, whole="tenant"))
        print(f"cannot add the tenant: {problems}", file=sys.stderr)
        return 2
    print(f"added tenant {args.name!r} {where}.", file=sys.stderr)
    print("its API key (shown only now; only its SHA-256 is stored):", file=sys.stderr)
    print(key)
    return 0


if __name__ == "__main__":
    sys.exit(main())
