"""docs/settings.md lists every setting of shared.core.settings.Settings with its scope and default."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pydantic.fields import FieldInfo

from shared.core.settings import Settings

DOC = Path(__file__).resolve().parents[3] / "docs" / "settings.md"
ROW = re.compile(r"^\| `([A-Za-z][A-Za-z0-9_]+)` \| (\w+) \| ([^|]+) \|", re.MULTILINE)


def _rows() -> dict[str, tuple[str, str]]:
    section = DOC.read_text().split("## Every setting", 1)[1].split("\n## ", 1)[0]
    return {name: (scope, default.strip()) for name, scope, default in ROW.findall(section)}


def _shown(field: FieldInfo) -> str:
    """How the doc writes a field's default."""
    if field.is_required():
        return "required"
    value: Any = field.get_default(call_default_factory=True)
    if value is None:
        return "none"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, float):
        return f"`{value:g}`"
    if isinstance(value, list | dict):
        return "`[]`" if isinstance(value, list) else "`{}`"
    return f"`{value}`"


def test_every_setting_is_documented_with_its_scope_and_default() -> None:
    rows = _rows()
    for field in Settings.model_fields.values():
        assert field.alias in rows, f"{field.alias} is missing from docs/settings.md"
        scope, default = rows[field.alias]
        assert scope == (field.json_schema_extra or {})["scope"], field.alias  # type: ignore[index]
        assert default == _shown(field), field.alias


def test_every_documented_setting_exists_unless_marked_being_built() -> None:
    aliases = {field.alias for field in Settings.model_fields.values()}
    extra = {name for name, (_, default) in _rows().items() if name not in aliases and default != "being built"}
    assert not extra, f"docs/settings.md documents settings the code does not read: {sorted(extra)}"
