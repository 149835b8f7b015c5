"""Spoken reports end to end: dev recordings → whisper-base → normalisation → extraction.

Four short recordings only (whisper on two shared cores is slow); the full spoken dev set is
scored by ``shaobing report eval ../shared/data/reports/audio/reports_dev_audio.tsv``.
"""

from __future__ import annotations

import csv

import pytest

from edge.reports import load_context
from edge.reports.asr import Transcriber
from edge.reports.cli import score_row
from edge.reports.normalize import to_simplified
from shaobing.paths import shared_dir

AUDIO_TSV = shared_dir() / "data" / "reports" / "audio" / "reports_dev_audio.tsv"
PICK = ("dev_13.wav", "dev_23.wav", "dev_24.wav", "dev_26.wav")  # the shortest, four types


@pytest.mark.skipif(not AUDIO_TSV.is_file(), reason="spoken dev set not present")
def test_spoken_dev_sample() -> None:
    with AUDIO_TSV.open(encoding="utf-8", newline="") as fh:
        rows = [r for r in csv.DictReader(fh, delimiter="\t") if r["file"] in PICK]
    assert len(rows) == len(PICK)
    ctx = load_context()
    tr = Transcriber(ctx.places, ctx.keywords)
    right = {"type": 0, "location": 0, "severity": 0}
    seen = []
    for row in rows:
        t = tr.transcribe(AUDIO_TSV.parent / row["file"])
        assert t.text and to_simplified(t.text) == t.text  # simplified characters only
        fields = ctx.extract(t.text)
        ok = score_row(fields, row)
        seen.append((row["file"], t.text, fields.type, fields.location.address, ok))
        for k, v in ok.items():
            right[k] += int(v)
    n = len(rows)
    assert right["type"] / n >= 0.75, seen
    assert right["severity"] / n >= 0.75, seen
    assert right["location"] / n >= 0.5, seen
