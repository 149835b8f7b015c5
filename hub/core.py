"""The hub's parts, built once from the config: registry, taxonomy, routing, work orders and
incidents over one store."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hub.incidents import IncidentEngine
from hub.registry import Registry, empty_registry, load_registry
from hub.routing import Router
from hub.store import Store
from hub.workorders import WorkOrders
from shaobing.config import HubConfig
from shaobing.taxonomy import Taxonomy, default_taxonomy, load_taxonomy

__all__ = ["Core", "build_core", "check_codes"]


@dataclass
class Core:
    """The hub's parts, built once from the config."""

    config: HubConfig
    store: Store
    taxonomy: Taxonomy
    registry: Registry
    router: Router
    orders: WorkOrders
    incidents: IncidentEngine


def check_codes(config: HubConfig, taxonomy: Taxonomy) -> None:
    """Routing and SLA rules name only codes of the taxonomy (ConfigError otherwise)."""
    from shaobing.config import ConfigError, ConfigIssue

    families = {t.family for t in taxonomy.types.values()}
    where = str(config.resolve("hub config"))
    issues = []
    groups: tuple[tuple[str, Sequence[Any]], ...] = (
        ("routing", config.routing.rules),
        ("sla", config.sla.rules),
    )
    for kind, rules in groups:
        for i, rule in enumerate(rules):
            fam = getattr(rule, "family", None)
            board = getattr(rule, "board", None)
            checks = (
                ("type", rule.type, rule.type in taxonomy, "a taxonomy code"),
                (
                    "family",
                    fam,
                    fam in families,
                    f"a taxonomy family ({', '.join(sorted(families))})",
                ),
                (
                    "board",
                    board,
                    board in taxonomy.boards,
                    f"a board ({', '.join(taxonomy.boards)})",
                ),
            )
            issues += [
                ConfigIssue(
                    file=where,
                    line=None,
                    path=f"{kind}.rules.{i}.{field}",
                    message=f"expected {expected}, found {value!r}",
                )
                for field, value, known, expected in checks
                if value is not None and not known
            ]
    if issues:
        raise ConfigError(issues)


def build_core(config: HubConfig, store: Store) -> Core:
    """Registry, taxonomy, routing, work orders and incidents for a config."""
    taxonomy = (
        load_taxonomy(config.resolve(config.taxonomy)) if config.taxonomy else default_taxonomy()
    )
    registry = (
        load_registry(config.resolve(config.registry)) if config.registry else empty_registry()
    )
    check_codes(config, taxonomy)
    router = Router(config.routing, taxonomy, registry)
    orders = WorkOrders(store, config, registry, router, taxonomy)
    incidents = IncidentEngine(store, config, registry, orders, taxonomy)
    return Core(config, store, taxonomy, registry, router, orders, incidents)
