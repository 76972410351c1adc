"""What a stage may read: params.yaml seen through the keys the stage declares (dvc.yaml lists the same)."""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Iterable
from typing import Any

from huishou.core.errors import ConfigError
from huishou.core.settings.load import SECTIONS, Settings


def _declares(allowed: frozenset[str], section: str, key: str | None = None) -> bool:
    if section in allowed:
        return True
    if key is None:
        return any(a.startswith(section + ".") for a in allowed)
    return f"{section}.{key}" in allowed


_FIELDS: dict[type, frozenset[str]] = {
    cls: frozenset(f.name for f in dataclasses.fields(cls)) for cls in SECTIONS.values()
}


class SectionView:
    """One section of the settings, readable only where the owner declared it; methods run on the view."""

    def __init__(self, section: Any, name: str, view: ParamsView):
        object.__setattr__(self, "_section", section)
        object.__setattr__(self, "_name", name)
        object.__setattr__(self, "_view", view)

    def __getattr__(self, key: str) -> Any:
        section, name, view = self._section, self._name, self._view
        if key in _FIELDS[type(section)]:
            view._read(name, key)
            return getattr(section, key)
        attr = getattr(type(section), key, None)
        if isinstance(attr, property):
            return attr.fget(self)
        if callable(attr):
            return types.MethodType(attr, self)
        raise AttributeError(f"settings section '{name}' has no key '{key}'")

    def __setattr__(self, key: str, value: Any) -> None:
        raise dataclasses.FrozenInstanceError(f"settings are read-only ({self._name}.{key})")

    def whole(self) -> Any:
        """The section itself (a plain, picklable settings object, e.g. for another process), for an owner that
        declared every key of it: each key counts as read."""
        return type(self._section)(**{key: getattr(self, key) for key in sorted(_FIELDS[type(self._section)])})


class ParamsView:
    """The settings as one stage may see them: only the declared keys ("section" or "section.key")."""

    def __init__(self, settings: Settings, declared: Iterable[str], owner: str):
        self._settings = settings
        self._declared = frozenset(declared)
        self._owner = owner
        self.reads: set[str] = set()
        bad = [d for d in self._declared if d.split(".")[0] not in SECTIONS]
        if bad:
            raise ConfigError(f"stage '{owner}' declares unknown params {sorted(bad)}")

    def _read(self, section: str, key: str) -> None:
        if not _declares(self._declared, section, key):
            raise ConfigError(
                f"stage '{self._owner}' read params key '{section}.{key}' it does not declare; add it to PARAMS in "
                f"huishou/stages/{self._owner}.py and to the stage's params in dvc.yaml"
            )
        self.reads.add(f"{section}.{key}")

    def __getattr__(self, name: str) -> SectionView:
        if name.startswith("_") or name not in SECTIONS:
            raise AttributeError(name)
        if not _declares(self._declared, name):
            raise ConfigError(f"stage '{self._owner}' reads params section '{name}' it does not declare")
        return SectionView(getattr(self._settings, name), name, self)

    def declared_values(self) -> dict[str, Any]:
        """Every declared key with its value, flattened to `section.key` (what the stage's result depends on)."""
        out = {}
        for name, section in dataclasses.asdict(self._settings).items():
            for key, value in section.items():
                if _declares(self._declared, name, key):
                    out[f"{name}.{key}"] = value
        return out
