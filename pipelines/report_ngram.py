"""A small character n-gram classifier of report types: the fallback when no rule fires.

Multinomial naive Bayes over Chinese character unigrams and bigrams (a linear model of
log-counts), fitted at build time by ``scripts/fit-report-ngram`` on the project's own tuning
corpus (``tests/data/reports/corpus_dev.tsv``) plus the taxonomy's keywords and the lexicon's
synonyms; the counts live in ``pipelines/report_ngram_weights.py`` as JSON text. Pure Python
at run time, no I/O: the hub can use it as the edge does.

:func:`extract` asks it only when no keyword or concept rule names a type; its guess comes
out with ``needs_confirmation`` set, never as a confident answer.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

__all__ = ["NgramModel", "features", "fit", "default_model"]

_HAN_RUN = re.compile(r"[\u4e00-\u9fff]+")


def features(text: str) -> list[str]:
    """Character unigrams and bigrams of the Chinese runs of ``text``."""
    out: list[str] = []
    for run in _HAN_RUN.findall(text):
        out.extend(run)
        out.extend(run[i : i + 2] for i in range(len(run) - 1))
    return out


@dataclass(frozen=True)
class NgramModel:
    """Naive Bayes counts: ``counts[feature][class] = n``; alpha-smoothed at prediction."""

    classes: tuple[str, ...]
    class_docs: tuple[int, ...]
    class_totals: tuple[int, ...]
    counts: Mapping[str, Mapping[str, int]]
    alpha: float = 0.5

    def predict(self, text: str) -> list[tuple[str, float]]:
        """Classes with their posterior probability, best first (empty without features)."""
        feats = [f for f in features(text) if f in self.counts]
        if not feats:
            return []
        vocab = len(self.counts)
        docs = sum(self.class_docs)
        logp = []
        for ci, code in enumerate(self.classes):
            lp = math.log((self.class_docs[ci] + 1) / (docs + len(self.classes)))
            denom = math.log(self.class_totals[ci] + self.alpha * vocab)
            for f in feats:
                lp += math.log(self.counts[f].get(code, 0) + self.alpha) - denom
            logp.append(lp)
        top = max(logp)
        ps = [math.exp(v - top) for v in logp]
        z = sum(ps)
        ranked = sorted(zip(self.classes, (p / z for p in ps), strict=True), key=lambda x: -x[1])
        return [(c, round(p, 4)) for c, p in ranked]

    def to_json(self) -> str:
        """Compact JSON text of the counts."""
        return json.dumps(
            {
                "classes": list(self.classes),
                "class_docs": list(self.class_docs),
                "class_totals": list(self.class_totals),
                "alpha": self.alpha,
                "counts": {f: dict(c) for f, c in sorted(self.counts.items())},
            },
            ensure_ascii=False,
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str) -> NgramModel:
        """The model written by :meth:`to_json`."""
        data = json.loads(text)
        return cls(
            classes=tuple(data["classes"]),
            class_docs=tuple(int(x) for x in data["class_docs"]),
            class_totals=tuple(int(x) for x in data["class_totals"]),
            counts={
                str(f): {str(k): int(v) for k, v in c.items()} for f, c in data["counts"].items()
            },
            alpha=float(data.get("alpha", 0.5)),
        )


def fit(docs: Iterable[tuple[str, str]], classes: Sequence[str], alpha: float = 0.5) -> NgramModel:
    """Count features per class over (text, type) pairs."""
    index = {c: i for i, c in enumerate(classes)}
    class_docs = [0] * len(classes)
    class_totals = [0] * len(classes)
    counts: dict[str, dict[str, int]] = {}
    for text, code in docs:
        if code not in index:
            continue
        class_docs[index[code]] += 1
        for f in features(text):
            cell = counts.setdefault(f, {})
            cell[code] = cell.get(code, 0) + 1
            class_totals[index[code]] += 1
    return NgramModel(tuple(classes), tuple(class_docs), tuple(class_totals), counts, alpha)


@lru_cache(maxsize=1)
def default_model() -> NgramModel | None:
    """The fitted model shipped with the package (None when it has not been fitted)."""
    try:
        from pipelines.report_ngram_weights import WEIGHTS
    except ImportError:
        return None
    return NgramModel.from_json(WEIGHTS)
