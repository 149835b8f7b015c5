"""The taxonomy: event types, boards, levels and severities (configs/taxonomy.yaml)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from shaobing.paths import configs_dir
from shaobing.severity import SEVERITIES, max_severity, severity_rank

__all__ = [
    "BOARDS",
    "LEVELS",
    "SEVERITIES",
    "EventType",
    "Taxonomy",
    "default_taxonomy",
    "level_rank",
    "load_taxonomy",
    "max_severity",
    "severity_rank",
]

LEVELS: tuple[str, ...] = ("grid", "community", "town", "district")
BOARDS: tuple[str, ...] = ("party_building", "economy", "livelihood", "safety_law")


@dataclass(frozen=True)
class EventType:
    """One event type of the taxonomy."""

    code: str
    name: str
    board: str
    level: str
    severity: str
    family: str
    keywords: tuple[str, ...] = ()


@dataclass(frozen=True)
class Taxonomy:
    """All codes with their Chinese names and defaults."""

    types: Mapping[str, EventType]
    boards: Mapping[str, str]
    levels: Mapping[str, str]
    severities: Mapping[str, str]
    severity_cues: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def __contains__(self, code: object) -> bool:
        return code in self.types

    def get(self, code: str) -> EventType:
        """Return the type for ``code`` (KeyError names the known codes)."""
        try:
            return self.types[code]
        except KeyError:
            raise KeyError(
                f"unknown event type {code!r}; known: {', '.join(sorted(self.types))}"
            ) from None

    def name_of(self, code: str) -> str:
        """Chinese name of an event type, or the code itself when unknown."""
        t = self.types.get(code)
        return t.name if t else code


def level_rank(level: str) -> int:
    """0 for grid … 3 for district."""
    return LEVELS.index(level)


def _parse(data: Mapping[str, Any], source: str) -> Taxonomy:
    def need(key: str) -> Any:
        if key not in data:
            raise ValueError(f"{source}: missing top-level key {key!r}")
        return data[key]

    boards = dict(need("boards"))
    levels = dict(need("levels"))
    severities = dict(need("severities"))
    types: dict[str, EventType] = {}
    for code, spec in dict(need("types")).items():
        for key in ("name", "board", "level", "severity"):
            if key not in spec:
                raise ValueError(f"{source}: types.{code}.{key}: expected a value, found nothing")
        if spec["board"] not in boards:
            raise ValueError(
                f"{source}: types.{code}.board: expected one of {sorted(boards)}, found {spec['board']!r}"
            )
        if spec["level"] not in levels:
            raise ValueError(
                f"{source}: types.{code}.level: expected one of {sorted(levels)}, found {spec['level']!r}"
            )
        if spec["severity"] not in severities:
            raise ValueError(
                f"{source}: types.{code}.severity: expected one of {sorted(severities)}, found {spec['severity']!r}"
            )
        types[code] = EventType(
            code=code,
            name=str(spec["name"]),
            board=str(spec["board"]),
            level=str(spec["level"]),
            severity=str(spec["severity"]),
            family=str(spec.get("family", code)),
            keywords=tuple(str(k) for k in spec.get("keywords") or ()),
        )
    cues = {
        k: tuple(str(w) for w in v or ()) for k, v in dict(data.get("severity_cues") or {}).items()
    }
    return Taxonomy(
        types=types, boards=boards, levels=levels, severities=severities, severity_cues=cues
    )


def load_taxonomy(path: str | Path | None = None) -> Taxonomy:
    """Load a taxonomy file; ``None`` loads the packaged ``configs/taxonomy.yaml`` (cached)."""
    if path is None:
        return default_taxonomy()
    p = Path(path)
    with p.open(encoding="utf-8") as fh:
        return _parse(yaml.safe_load(fh), str(p))


@lru_cache(maxsize=1)
def default_taxonomy() -> Taxonomy:
    """The packaged taxonomy, loaded once."""
    p = configs_dir() / "taxonomy.yaml"
    with p.open(encoding="utf-8") as fh:
        return _parse(yaml.safe_load(fh), str(p))
