"""Sound-alike correction on real Whisper output of the shared spoken reports.

Eight recordings whose transcripts carry the usual homophones (区 → 驱/去/趋, 街道 → 接到,
渝北 → 与北, 七星岗 → 七星港 …), transcribed once with whisper-base: the correction must cut
the character error rate and must not lose a place the raw transcript had.
"""

from __future__ import annotations

import csv
from typing import Any

import pytest

from edge.reports import load_context
from edge.reports.asr import Transcriber
from edge.reports.cli import score_row
from edge.reports.normalize import normalize_transcript
from shaobing.paths import shared_dir
from shaobing_tools.bench_asr import cer, normalize_for_cer

AUDIO_TSV = shared_dir() / "data" / "reports" / "audio" / "reports_dev_audio.tsv"
PICK = (
    "dev_02.wav", "dev_07.wav", "dev_10.wav", "dev_13.wav", "dev_17.wav", "dev_22.wav",
    "dev_23.wav", "dev_29.wav",
)  # fmt: skip


@pytest.fixture(scope="module")
def heard() -> list[tuple[dict[str, str], str]]:
    if not AUDIO_TSV.is_file():
        pytest.skip("spoken dev set not present")
    with AUDIO_TSV.open(encoding="utf-8", newline="") as fh:
        rows = [r for r in csv.DictReader(fh, delimiter="\t") if r["file"] in PICK]
    ctx = load_context()
    tr = Transcriber(ctx.places, ctx.keywords)
    return [(r, tr.transcribe(AUDIO_TSV.parent / r["file"]).raw_text) for r in rows]


def test_correction_cuts_cer_and_keeps_places(heard: list[tuple[dict[str, str], Any]]) -> None:
    ctx = load_context()
    tr = Transcriber(ctx.places, ctx.keywords)
    before = after = n = 0
    loc_before = loc_after = 0
    for row, raw in heard:
        ref = normalize_for_cer(row["text"])
        plain = normalize_transcript(raw, None)
        fixed = normalize_transcript(raw, tr.corrector)
        eb, m = cer(ref, normalize_for_cer(plain))
        ea, _ = cer(ref, normalize_for_cer(fixed))
        before, after, n = before + eb, after + ea, n + m
        loc_before += score_row(ctx.extract(plain), row)["location"]
        loc_after += score_row(ctx.extract(fixed), row)["location"]
    assert after / n <= 0.7 * (before / n), (before / n, after / n)
    assert loc_after >= loc_before + 3, (loc_before, loc_after)
