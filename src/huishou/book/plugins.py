"""Adapters by name: the mappings shipped with huishou, and code adapters installed as plugins.

A mapping (huishou.book.mapping) says what most lenders need without code. What a mapping cannot
say goes into a code adapter, installed as a plugin: a package declaring an entry point in the group
`huishou.adapters`, e.g. in its pyproject.toml

    [project.entry-points."huishou.adapters"]
    mybank = "mybank_huishou:adapter"

where `adapter` has `AS_OF` (the extract date, YYYY-MM-DD) and `adapt(input_path) -> {table: DataFrame}`.
"""

from __future__ import annotations

from importlib.metadata import entry_points
from pathlib import Path

from huishou.core.errors import ConfigError

MAPPINGS = Path(__file__).parent / "mappings"
GROUP = "huishou.adapters"


def builtin_mappings() -> dict[str, Path]:
    return {p.stem: p for p in sorted(MAPPINGS.glob("*.yaml"))}


def plugins() -> dict[str, object]:
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def available() -> list[str]:
    return sorted({*builtin_mappings(), *plugins()})


def resolve(name: str) -> tuple[str, object]:
    """("mapping", path) for a shipped mapping, ("plugin", adapter object) for an installed one."""
    if name in builtin_mappings():
        return "mapping", builtin_mappings()[name]
    found = plugins()
    if name in found:
        try:
            adapter = found[name].load()
        except Exception as err:  # a broken plugin is the plugin's fault, said plainly
            raise ConfigError(f"adapter plugin {name!r} ({found[name].value}) cannot be loaded: {err}") from None
        if not (hasattr(adapter, "adapt") and hasattr(adapter, "AS_OF")):
            raise ConfigError(f"adapter plugin {name!r} must have AS_OF and adapt(input_path)")
        return "plugin", adapter
    raise ConfigError(f"unknown adapter {name!r}; available: {available()} (or pass --mapping FILE)")
