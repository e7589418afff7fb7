"""No secret, key or connection string with a key appears anywhere in infra/ (or azure.yaml): identities only."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FILES = [*sorted(p for p in (REPO / "infra").rglob("*") if p.is_file()), REPO / "azure.yaml"]

PATTERNS = {
    "storage/Service Bus connection string": r"AccountKey=|SharedAccessKey=|DefaultEndpointsProtocol=",
    "SAS token": r"SharedAccessSignature|[?&]sig=[A-Za-z0-9%+/=]{20,}",
    "key-returning ARM function": r"\blist(Keys|ConnectionStrings|AccountSas|ServiceSas|Credentials|Secrets)\s*\(",
    "account key property": r"\b(primary|secondary)(Readonly)?(Master)?Key\b|\bkeys\s*\[\s*0\s*\]",
    "literal instrumentation key": r"InstrumentationKey=[0-9a-fA-F-]{36}",
    "base64 account key (88 chars)": r"[A-Za-z0-9+/]{86}==",
    "Cognitive Services key (32 hex)": r"(?<![0-9a-fA-F-])[0-9a-fA-F]{32}(?![0-9a-fA-F-])",
    "OpenAI API key": r"\bsk-[A-Za-z0-9_-]{20,}",
    "private key": r"-----BEGIN [A-Z ]*PRIVATE KEY-----",
}


def _rel(path: Path) -> str:
    return str(path.relative_to(REPO))


def test_there_is_something_to_scan() -> None:
    assert any(p.suffix == ".bicep" for p in FILES)


@pytest.mark.parametrize("path", [p for p in FILES if p.exists()], ids=_rel)
def test_file_holds_no_secret(path: Path) -> None:
    text = path.read_text(encoding="utf-8", errors="replace")
    hits = [
        f"{_rel(path)}:{text.count(chr(10), 0, m.start()) + 1}: {kind}: {m.group(0)[:40]!r}"
        for kind, pattern in PATTERNS.items()
        for m in re.finditer(pattern, text)
    ]
    assert not hits, "secret-looking text in infra:\n" + "\n".join(hits)


def test_local_auth_is_off_everywhere() -> None:
    # Keys cannot leak if the services do not accept them: every account type that has keys turns them off.
    text = {_rel(p): p.read_text() for p in FILES if p.suffix == ".bicep"}
    expectations = {
        "Microsoft.Storage/storageAccounts@": "allowSharedKeyAccess: false",
        "Microsoft.DocumentDB/databaseAccounts@": "disableLocalAuth: true",
        "Microsoft.CognitiveServices/accounts@": "disableLocalAuth: true",
        "Microsoft.Insights/components@": "DisableLocalAuth: true",
        "Microsoft.KeyVault/vaults@": "enableRbacAuthorization: true",
    }
    for resource_type, setting in expectations.items():
        declaring = [name for name, body in text.items() if re.search(rf"'{re.escape(resource_type)}[^']*' = ", body)]
        assert declaring, f"no file declares {resource_type}"
        for name in declaring:
            assert setting in text[name], f"{name} declares {resource_type} without {setting}"
