"""pipelines/report_ngram.py: the n-gram fallback of report types, fitted on corpus_dev only."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

from pipelines.report_extract import _clean, _score_types, _vocab, extract
from pipelines.report_ngram import NgramModel, default_model, features, fit
from shaobing.taxonomy import default_taxonomy

ROOT = Path(__file__).resolve().parents[3]
DATA = ROOT / "tests" / "data" / "reports"


def test_features_are_chinese_unigrams_and_bigrams() -> None:
    assert features("井盖A坏了") == ["井", "盖", "井盖", "坏", "了", "坏了"]


def test_fit_predict_round_trip() -> None:
    m = fit(
        [("井盖坏了", "road_facility"), ("有人落水", "drowning")], ["road_facility", "drowning"]
    )
    assert m.predict("井盖丢了")[0][0] == "road_facility"
    assert NgramModel.from_json(m.to_json()).predict("落水了") == m.predict("落水了")
    assert m.predict("abc") == []


def test_held_out_accuracy_of_the_shipped_model() -> None:
    """Fitted on corpus_dev only: the other sets measure it (≥ 0.85 each)."""
    model = default_model()
    assert model is not None
    for name in ("corpus_heldout.tsv", "corpus_fresh.tsv", "corpus_final.tsv"):
        with (DATA / name).open(encoding="utf-8", newline="") as fh:
            rows = list(csv.DictReader(fh, delimiter="\t"))
        right = sum(model.predict(r["text"])[0][0] in r["types"].split(",") for r in rows)
        assert right / len(rows) >= 0.85, (name, right / len(rows))


def test_shipped_weights_are_what_the_script_fits(tmp_path: Path) -> None:
    weights = ROOT / "pipelines" / "report_ngram_weights.py"
    before = weights.read_text(encoding="utf-8")
    try:
        subprocess.run(
            [sys.executable, str(ROOT / "scripts" / "fit-report-ngram")],
            check=True,
            capture_output=True,
            cwd=ROOT,
        )
        assert weights.read_text(encoding="utf-8") == before, "run scripts/fit-report-ngram"
    finally:
        weights.write_text(before, encoding="utf-8")


def test_fallback_only_when_no_rule_names_a_type() -> None:
    tax = default_taxonomy()
    # no keyword, no concept rule: the model's guess, to be confirmed
    text = "北碚区天生街道嘉陵江边有个女的站在江边哭了很久，一直往水里走。"
    scores, _ = _score_types(_clean(text), _vocab(tax))
    assert max(scores.values(), default=0.0) < 0.5  # the rules alone would say `other`
    f = extract(text, tax)
    assert f.type in ("drowning", "water_danger_intrusion") and f.needs_confirmation
    # a rule answers: the model is not asked
    f = extract("北碚区天府镇有人从楼上扔下一个花盆。", tax)
    assert f.type == "falling_object" and "ngram" not in str(f.matched)
    # an inquiry stays other
    assert extract("想咨询一下办理居住证要什么手续。", tax).type == "other"
