"""Routing: event type → board and level (taxonomy + configured rules); place → owner.

"小事不出网格、大事不出社区、难事不出镇街": escalation moves an item one level up.
The rules are configuration (``HubConfig.routing``), not code.
"""

from __future__ import annotations

from dataclasses import dataclass

from hub.registry import Person, Placement, Registry
from shaobing.config import RoutingConfig
from shaobing.taxonomy import LEVELS, Taxonomy, level_rank

__all__ = ["Route", "Router", "next_level"]


@dataclass(frozen=True)
class Route:
    """Where an item goes."""

    board: str
    level: str


def next_level(level: str) -> str | None:
    """One level up (grid → community → town → district), or None at the top."""
    i = level_rank(level)
    return LEVELS[i + 1] if i + 1 < len(LEVELS) else None


class Router:
    """Applies the routing rules.

    Args:
        config: routing rules (first matching rule overrides the taxonomy's board/level).
        taxonomy: event types with their default board and level.
        registry: the grid registry (owners of each level).
    """

    def __init__(self, config: RoutingConfig, taxonomy: Taxonomy, registry: Registry) -> None:
        self.config = config
        self.taxonomy = taxonomy
        self.registry = registry

    def route(self, type_: str, severity: str) -> Route:
        """Board and level of an item of this type and severity."""
        et = self.taxonomy.get(type_)
        board, level = et.board, et.level
        for rule in self.config.rules:
            if rule.type is not None and rule.type != type_:
                continue
            if rule.family is not None and rule.family != et.family:
                continue
            if rule.severity is not None and rule.severity != severity:
                continue
            board = rule.board or board
            level = rule.level or level
            break
        if severity == "emergency" and level_rank(level) < level_rank(
            self.config.emergency_min_level
        ):
            level = self.config.emergency_min_level
        return Route(board=board, level=level)

    def owners(self, placement: Placement, level: str, board: str) -> list[Person]:
        """On-duty person for a level of this place (first), then backups."""
        return self.registry.on_duty(placement, level, board)

    def screener(self) -> tuple[Placement, Person | None]:
        """The command centre that screens what the registry cannot place."""
        town, district = self.registry.screening_town(self.config.screening_town)
        if town is None:
            return Placement(), None
        return Placement(None, None, town, district, "screening"), self.registry.towns[town][
            0
        ].command_centre
