"""Voice, text and photo reports on the edge: ASR, normalisation, extraction, the HTTP endpoint.

:func:`load_context` gathers what every part needs: the taxonomy (packaged or the config's)
and the gazetteer (the config's registry, else ``configs/demo/registry.yaml``, plus the
built-in Chongqing districts and towns).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from pipelines.report_extract import Place, ReportFields, extract, gazetteer_from_registry
from shaobing.paths import configs_dir
from shaobing.taxonomy import Taxonomy, default_taxonomy, load_taxonomy

if TYPE_CHECKING:
    from shaobing.config import EdgeConfig

__all__ = ["ReportContext", "load_context"]


@dataclass(frozen=True)
class ReportContext:
    """Taxonomy and gazetteer for report extraction."""

    taxonomy: Taxonomy
    places: tuple[Place, ...]
    registry_explicit: bool = False

    @property
    def vocab_mode(self) -> str:
        """How Whisper is biased: with the deployment's own registry its places and the domain
        words (``both``); with only the demo registry no bias at all (``none``): prompting with
        another district's names makes Whisper write them where they were not said."""
        return "both" if self.registry_explicit else "none"

    @property
    def keywords(self) -> list[str]:
        """All taxonomy keywords (for prompts and sound-alike correction)."""
        words: list[str] = []
        for t in self.taxonomy.types.values():
            words.extend(t.keywords)
        for cues in self.taxonomy.severity_cues.values():
            words.extend(cues)
        return list(dict.fromkeys(words))

    def extract(self, text: str) -> ReportFields:
        """Run the extractor with this context (traditional characters are simplified first)."""
        return extract(_simplified(text), self.taxonomy, self.places)


def _simplified(text: str) -> str:
    if not text or text.isascii():
        return text
    try:
        from edge.reports.normalize import to_simplified

        return to_simplified(text)
    except ImportError:  # the voice extra (opencc) is not installed
        return text


def _read_registry(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as fh:
        data = yaml.safe_load(fh) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a registry mapping, found {type(data).__name__}")
    return data


def load_context(cfg: EdgeConfig | None = None) -> ReportContext:
    """Taxonomy and gazetteer from an edge config (its ``taxonomy``/``registry``), else the defaults."""
    taxonomy = default_taxonomy()
    registry_path = configs_dir() / "demo" / "registry.yaml"
    explicit = False
    if cfg is not None:
        if cfg.taxonomy:
            taxonomy = load_taxonomy(cfg.resolve(cfg.taxonomy))
        if cfg.registry:
            registry_path = cfg.resolve(cfg.registry)
            explicit = True
    data = _read_registry(registry_path) if registry_path.exists() else {}
    return ReportContext(
        taxonomy=taxonomy, places=tuple(gazetteer_from_registry(data)), registry_explicit=explicit
    )
