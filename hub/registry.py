"""The grid registry: district → town/street → community/village → grid, with the people on duty.

Loaded from YAML (``kind: registry``). Places events (grid id, polygon, address, node) and
names who owns a level: the grid worker, the community handler, the town's board handler or
command centre, the district department of a board. A post holds one person or a list: the
first is on duty, the rest are backups (used when an order is not accepted in time).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from hub.geo import bbox, gcj02_to_wgs84, point_in_polygon
from shaobing.config import ConfigError, ConfigIssue, _issues_from, _line_for, load_yaml_with_lines
from shaobing.contract import Event
from shaobing.taxonomy import BOARDS, LEVELS

__all__ = [
    "Person",
    "Registry",
    "Placement",
    "load_registry",
    "validate_registry_file",
    "empty_registry",
]

_ID = r"^[A-Za-z0-9_.\-]+$"


class _R(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Person(_R):
    """Someone on duty."""

    id: str = Field(
        min_length=1,
        max_length=64,
        pattern=_ID,
        description="person id (also the MQTT dispatch topic)",
    )
    name: str = Field(min_length=1, description="name shown to the command centre")
    phone: str | None = Field(default=None, description="phone (stays at the hub)")


Post = Person | list[Person]


def people_of(post: Post | None) -> list[Person]:
    """The people of a post (one person, or the first on duty and the backups)."""
    if post is None:
        return []
    return list(post) if isinstance(post, list) else [post]


_people = people_of


class GridSpec(_R):
    """A grid: the smallest unit, one grid worker."""

    id: str = Field(pattern=_ID, description="grid id (events carry it as location.grid_id)")
    name: str = Field(description="Chinese name")
    worker: Post = Field(description="grid worker on duty (a list: first on duty, then backups)")
    polygon: list[tuple[float, float]] = Field(
        default_factory=list, description="GeoJSON ring of [lon, lat]"
    )
    aliases: list[str] = Field(
        default_factory=list, description="other names and addresses that mean this grid"
    )
    nodes: list[str] = Field(
        default_factory=list, description="edge nodes whose events default to this grid"
    )

    @field_validator("polygon")
    @classmethod
    def _ring(cls, value: list[tuple[float, float]]) -> list[tuple[float, float]]:
        if value and len(value) < 3:
            raise ValueError(f"expected a polygon of at least 3 points, found {len(value)}")
        for lon, lat in value:
            if not (-180 <= lon <= 180 and -90 <= lat <= 90):
                raise ValueError(f"expected [lon, lat] pairs, found [{lon}, {lat}]")
        return value


class CommunitySpec(_R):
    """A village or community (村/社区)."""

    id: str = Field(pattern=_ID, description="community id")
    name: str = Field(description="Chinese name")
    handler: Post = Field(description="community handler on duty")
    aliases: list[str] = Field(default_factory=list, description="other names")
    grids: list[GridSpec] = Field(default_factory=list, description="grids of the community")


class DepartmentSpec(_R):
    """A district department called in for district-level items (网格吹哨、部门报到)."""

    id: str = Field(pattern=_ID, description="department id")
    name: str = Field(description="Chinese name")
    boards: list[str] = Field(default_factory=list, description="boards it serves")
    contact: Post | None = Field(
        default=None, description="person on duty (default: the department itself)"
    )


class TownSpec(_R):
    """A town or street (镇街) with its command centre."""

    id: str = Field(pattern=_ID, description="town id")
    name: str = Field(description="Chinese name")
    command_centre: Person = Field(description="the town's command centre (screens and dispatches)")
    board_handlers: dict[str, Post] = Field(
        default_factory=dict, description="board code → handler on duty"
    )
    aliases: list[str] = Field(default_factory=list, description="other names")
    communities: list[CommunitySpec] = Field(
        default_factory=list, description="communities of the town"
    )

    @field_validator("board_handlers")
    @classmethod
    def _boards(cls, value: dict[str, Post]) -> dict[str, Post]:
        for board in value:
            if board not in BOARDS:
                raise ValueError(f"expected a board code ({', '.join(BOARDS)}), found {board!r}")
        return value


class DistrictSpec(_R):
    """A district (区)."""

    id: str = Field(pattern=_ID, description="district id")
    name: str = Field(description="Chinese name")
    departments: list[DepartmentSpec] = Field(
        default_factory=list, description="departments by board"
    )
    towns: list[TownSpec] = Field(default_factory=list, description="towns and streets")


class RegistrySpec(_R):
    """The registry file."""

    kind: Literal["registry"] | None = Field(default=None, description="config kind marker")
    crs: Literal["wgs84", "gcj02"] = Field(
        default="wgs84", description="coordinate system of the polygons"
    )
    districts: list[DistrictSpec] = Field(default_factory=list, description="districts")


@dataclass(frozen=True)
class Placement:
    """Where the registry puts an event (ids of each level; None where unknown)."""

    grid_id: str | None = None
    community_id: str | None = None
    town_id: str | None = None
    district_id: str | None = None
    method: str = "none"

    @property
    def placed(self) -> bool:
        """True when at least the community is known."""
        return self.community_id is not None


@dataclass
class _Grid:
    spec: GridSpec
    community_id: str
    town_id: str
    district_id: str
    ring: list[tuple[float, float]]
    box: tuple[float, float, float, float] | None


@dataclass
class Registry:
    """Lookup tables built from a RegistrySpec."""

    spec: RegistrySpec
    grids: dict[str, _Grid] = field(default_factory=dict)
    communities: dict[str, tuple[CommunitySpec, str, str]] = field(default_factory=dict)
    towns: dict[str, tuple[TownSpec, str]] = field(default_factory=dict)
    districts: dict[str, DistrictSpec] = field(default_factory=dict)
    node_grid: dict[str, str] = field(default_factory=dict)
    names: list[tuple[str, str, str]] = field(
        default_factory=list
    )  # (name, level, id), longest first

    @classmethod
    def build(cls, spec: RegistrySpec) -> Registry:
        """Index a validated spec."""
        reg = cls(spec=spec)
        for d in spec.districts:
            reg.districts[d.id] = d
            for t in d.towns:
                reg.towns[t.id] = (t, d.id)
                reg.names.extend((n, "town", t.id) for n in [t.name, *t.aliases])
                for c in t.communities:
                    reg.communities[c.id] = (c, t.id, d.id)
                    reg.names.extend((n, "community", c.id) for n in [c.name, *c.aliases])
                    for g in c.grids:
                        ring = list(g.polygon)
                        if spec.crs == "gcj02":
                            ring = [
                                (lon2, lat2)
                                for lat2, lon2 in (gcj02_to_wgs84(lat, lon) for lon, lat in ring)
                            ]
                        reg.grids[g.id] = _Grid(
                            g, c.id, t.id, d.id, ring, bbox(ring) if ring else None
                        )
                        reg.names.extend((n, "grid", g.id) for n in [g.name, *g.aliases])
                        for node in g.nodes:
                            reg.node_grid[node] = g.id
        reg.names.sort(key=lambda x: (-len(x[0]), ("grid", "community", "town").index(x[1])))
        return reg

    # ----------------------------------------------------------------- placement

    def place_grid(self, grid_id: str, method: str = "grid_id") -> Placement:
        """Placement of a known grid id."""
        g = self.grids[grid_id]
        return Placement(g.spec.id, g.community_id, g.town_id, g.district_id, method)

    def locate(self, lat: float, lon: float) -> str | None:
        """The grid whose polygon holds the WGS-84 point, or None."""
        for gid, g in self.grids.items():
            if g.box is None:
                continue
            x0, y0, x1, y1 = g.box
            if x0 <= lon <= x1 and y0 <= lat <= y1 and point_in_polygon(lon, lat, g.ring):
                return gid
        return None

    def match_address(self, text: str) -> Placement | None:
        """The longest registry name contained in an address or text (grid before community before town)."""
        if not text:
            return None
        for name, level, ident in self.names:
            if name and name in text:
                if level == "grid":
                    return self.place_grid(ident, "address")
                if level == "community":
                    _c, town, district = self.communities[ident]
                    return Placement(None, ident, town, district, "address")
                _t, district = self.towns[ident]
                return Placement(None, None, ident, district, "address")
        return None

    def knows_name(self, name: str) -> bool:
        """True when a district, town, community or grid name (or alias) covers ``name``."""
        if not name:
            return False
        if any(name == d.name or name in d.name or d.name in name for d in self.districts.values()):
            return True
        return any(n and (n in name or name in n) for n, _level, _id in self.names)

    def names_unknown_place(self, event: Event) -> str | None:
        """The place a report names that this registry does not hold, or None.

        Read from the admin units that extraction found in the text
        (``attributes.location_detail``: district, town, community): a report about another
        district, or a town the registry does not list, names a place outside it.
        """
        detail = event.attributes.get("location_detail")
        if not isinstance(detail, dict):
            return None
        for level in ("district", "town", "community"):
            name = detail.get(level)
            if isinstance(name, str) and name and not self.knows_name(name):
                return name
        return None

    def place(self, event: Event) -> Placement:
        """Where an event belongs, by the best evidence it carries.

        In order: GPS inside a grid polygon; a camera's or sensor's configured grid (or the
        grid a citizen request names); a place in the text (address, or a grid named by name) that the registry resolves;
        then, only when the text names no place outside the registry, the reporter's or
        node's default grid. A report about a place the registry cannot resolve stays
        unplaced (``method`` ``unresolved``): it goes to screening, never to a default grid.
        """
        loc = event.location
        # a worker's report carries the reporter's or node's default grid, not a place seen
        device = event.source.kind != "report"
        if loc.lat is not None and loc.lon is not None:
            lat, lon = wgs84_point(event)
            gid = self.locate(lat, lon)
            if gid is not None:
                return self.place_grid(gid, "polygon")
        if device and loc.grid_id and loc.grid_id in self.grids:
            return self.place_grid(loc.grid_id)
        default = loc.grid_id if loc.grid_id in self.grids else None
        text_place = None
        if loc.grid_id and default is None:
            text_place = self.match_address(loc.grid_id)
        if text_place is None and loc.address:
            text_place = self.match_address(loc.address)
        if text_place is not None:
            if text_place.grid_id is None and default is not None:
                # the text names a town or community: the default grid counts if inside it
                inside = self.place_grid(default, "grid_id" if device else "default")
                if text_place.community_id in (None, inside.community_id) and (
                    text_place.town_id == inside.town_id
                ):
                    return inside
            return text_place
        if not device and self.names_unknown_place(event) is not None:
            return Placement(method="unresolved")
        if default is not None:
            return self.place_grid(default, "grid_id" if device else "default")
        node_grid = self.node_grid.get(event.source.node_id)
        if node_grid is not None:
            return self.place_grid(node_grid, "node")
        return Placement()

    # ----------------------------------------------------------------- people

    def scope_of(self, scope_id: str) -> str | None:
        """The level name of a registry id (district, town, community, grid) or None."""
        if scope_id in self.grids:
            return "grid"
        if scope_id in self.communities:
            return "community"
        if scope_id in self.towns:
            return "town"
        if scope_id in self.districts:
            return "district"
        return None

    def grids_under(self, scope_id: str) -> list[str]:
        """Every grid id inside a district, town, community or grid."""
        return [
            gid
            for gid, g in self.grids.items()
            if scope_id in (gid, g.community_id, g.town_id, g.district_id)
        ]

    def screening_town(self, preferred: str | None = None) -> tuple[str | None, str | None]:
        """(town id, district id) of the command centre that screens unplaced events."""
        if preferred and preferred in self.towns:
            return preferred, self.towns[preferred][1]
        for tid, (_t, did) in self.towns.items():
            return tid, did
        return None, None

    def on_duty(self, placement: Placement, level: str, board: str) -> list[Person]:
        """Who owns ``level`` for this place and board: on-duty person first, then backups."""
        if level == "grid" and placement.grid_id in self.grids:
            return _people(self.grids[placement.grid_id].spec.worker)
        if level in ("grid", "community") and placement.community_id in self.communities:
            return _people(self.communities[placement.community_id][0].handler)
        if level in ("grid", "community", "town") and placement.town_id in self.towns:
            town = self.towns[placement.town_id][0]
            return [*_people(town.board_handlers.get(board)), town.command_centre]
        if placement.district_id in self.districts:
            d = self.districts[placement.district_id]
            people = []
            for dep in d.departments:
                if not dep.boards or board in dep.boards:
                    people.extend(_people(dep.contact) or [Person(id=dep.id, name=dep.name)])
            if people:
                return people
            if placement.town_id in self.towns:
                return [self.towns[placement.town_id][0].command_centre]
        return []

    def responsible(self, placement: Placement, board: str) -> list[Person]:
        """Everyone responsible for a place (each level's on-duty person and the command centre)."""
        seen: dict[str, Person] = {}
        for level in LEVELS:
            people = self.on_duty(placement, level, board)
            if people:
                seen.setdefault(people[0].id, people[0])
        if placement.town_id in self.towns:
            cc = self.towns[placement.town_id][0].command_centre
            seen.setdefault(cc.id, cc)
        return list(seen.values())

    def name_of(self, ident: str | None) -> str | None:
        """Chinese name of any registry id."""
        if ident is None:
            return None
        if ident in self.grids:
            return self.grids[ident].spec.name
        if ident in self.communities:
            return self.communities[ident][0].name
        if ident in self.towns:
            return self.towns[ident][0].name
        if ident in self.districts:
            return self.districts[ident].name
        return None


def wgs84_point(event: Event) -> tuple[float, float]:
    """The event's (lat, lon) in WGS-84; converts GCJ-02 when ``attributes.crs`` says ``gcj02``."""
    lat, lon = float(event.location.lat), float(event.location.lon)  # type: ignore[arg-type]
    crs = str(event.attributes.get("crs", "")).lower().replace("-", "")
    if crs == "gcj02":
        return gcj02_to_wgs84(lat, lon)
    return lat, lon


def empty_registry() -> Registry:
    """A registry with no places (every event goes to screening)."""
    return Registry.build(RegistrySpec())


def _check(
    spec: RegistrySpec, lines: dict[tuple[str | int, ...], int], filename: str
) -> list[ConfigIssue]:
    issues: list[ConfigIssue] = []
    seen: dict[str, str] = {}

    def unique(ident: str, loc: tuple[str | int, ...]) -> None:
        path = ".".join(map(str, loc))
        if ident in seen:
            issues.append(
                ConfigIssue(
                    file=filename,
                    line=_line_for(lines, loc),
                    path=path,
                    message=f"expected unique ids, found {ident!r} again (first at {seen[ident]})",
                )
            )
        else:
            seen[ident] = path

    for i, d in enumerate(spec.districts):
        unique(d.id, ("districts", i, "id"))
        for j, dep in enumerate(d.departments):
            for b in dep.boards:
                if b not in BOARDS:
                    loc: tuple[str | int, ...] = ("districts", i, "departments", j, "boards")
                    issues.append(
                        ConfigIssue(
                            file=filename,
                            line=_line_for(lines, loc),
                            path=".".join(map(str, loc)),
                            message=f"expected a board code ({', '.join(BOARDS)}), found {b!r}",
                        )
                    )
        for k, t in enumerate(d.towns):
            unique(t.id, ("districts", i, "towns", k, "id"))
            for m, c in enumerate(t.communities):
                unique(c.id, ("districts", i, "towns", k, "communities", m, "id"))
                for n, g in enumerate(c.grids):
                    base = ("districts", i, "towns", k, "communities", m, "grids", n)
                    unique(g.id, (*base, "id"))
                    if not g.polygon:
                        continue
                    ring = g.polygon
                    x0, y0, x1, y1 = bbox(ring)
                    if x1 - x0 <= 0 or y1 - y0 <= 0:
                        loc = (*base, "polygon")
                        issues.append(
                            ConfigIssue(
                                file=filename,
                                line=_line_for(lines, loc),
                                path=".".join(map(str, loc)),
                                message="expected a polygon with an area, found a degenerate one",
                            )
                        )
    return issues


def load_registry(path: str | Path) -> Registry:
    """Load and validate a registry file; raises ConfigError with file:line issues."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            [
                ConfigIssue(
                    file=str(p),
                    line=None,
                    path="",
                    message=f"expected a registry file, found none ({exc.strerror})",
                )
            ]
        ) from None
    filename = str(p)
    data, lines = load_yaml_with_lines(text, filename)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(
            [
                ConfigIssue(
                    file=filename,
                    line=1,
                    path="",
                    message=f"expected a mapping at the top, found {type(data).__name__}",
                )
            ]
        )
    try:
        spec = RegistrySpec.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_issues_from(exc, data, lines, filename)) from None
    issues = _check(spec, lines, filename)
    if issues:
        raise ConfigError(issues)
    return Registry.build(spec)


def validate_registry_file(path: Path) -> None:
    """``shaobing config validate`` hook: raise ConfigError when the registry is not usable."""
    load_registry(path)


def iter_people(reg: Registry) -> Iterable[Person]:
    """Every person named in the registry."""
    for d in reg.spec.districts:
        for dep in d.departments:
            yield from _people(dep.contact)
        for t in d.towns:
            yield t.command_centre
            for post in t.board_handlers.values():
                yield from _people(post)
            for c in t.communities:
                yield from _people(c.handler)
                for g in c.grids:
                    yield from _people(g.worker)


def as_dict(reg: Registry) -> dict[str, Any]:
    """The registry as plain data (API)."""
    return reg.spec.model_dump(mode="json", exclude={"kind"})
