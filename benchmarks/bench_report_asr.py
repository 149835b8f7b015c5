"""Spoken reports: how the vocabulary bias and the sound-alike correction change CER and fields.

For each vocabulary mode (none, prompt, hotwords, both) every recording of the spoken dev set
is transcribed once; the CER is measured on the transcript before correction (simplified,
punctuation only) and after (sound-alike correction, digits), and the extracted fields are
scored as ``shaobing report eval`` does. RTF covers recognition plus correction.

    PYTHONPATH=. nice -n 5 .venv/bin/python benchmarks/bench_report_asr.py \
        [--modes none,prompt,hotwords,both] [-c EDGE.yaml] [--save raw.json]

``--save`` keeps the raw transcripts so correction changes can be measured without Whisper
(``--from raw.json``).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path
from typing import Any

from edge.reports import ReportContext, load_context
from edge.reports.asr import Transcriber, decode_audio
from edge.reports.cli import score_row
from edge.reports.normalize import normalize_transcript
from shaobing.paths import shared_dir
from shaobing_tools.bench_asr import cer, normalize_for_cer

AUDIO_TSV = shared_dir() / "data" / "reports" / "audio" / "reports_dev_audio.tsv"


def _context(config: str | None) -> ReportContext:
    if not config:
        return load_context(None)
    from shaobing.config import load_edge_config

    return load_context(load_edge_config(config))


def score(
    ctx: ReportContext, tr: Transcriber, rows: list[dict[str, str]], raws: list[str]
) -> dict[str, Any]:
    """CER before/after correction and field accuracy for the given raw transcripts."""
    e_before = e_after = n_ref = 0
    right = {"type": 0, "location": 0, "severity": 0}
    correct_s = 0.0
    items = []
    for row, raw in zip(rows, raws, strict=True):
        ref = normalize_for_cer(row["text"])
        before = normalize_transcript(raw, None) if raw else ""
        t0 = time.perf_counter()
        after = normalize_transcript(raw, tr.corrector) if raw else ""
        correct_s += time.perf_counter() - t0
        eb, n = cer(ref, normalize_for_cer(before))
        ea, _ = cer(ref, normalize_for_cer(after))
        e_before += eb
        e_after += ea
        n_ref += n
        ok = score_row(ctx.extract(after), row)
        for k, v in ok.items():
            right[k] += int(v)
        items.append({"file": row["file"], "raw": raw, "after": after, "ok": ok})
    n = len(rows)
    return {
        "cer_before": round(e_before / n_ref, 4),
        "cer_after": round(e_after / n_ref, 4),
        "type": round(right["type"] / n, 3),
        "location": round(right["location"] / n, 3),
        "severity": round(right["severity"] / n, 3),
        "correct_ms": round(1000 * correct_s / n, 2),
        "items": items,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--modes", default="none,terms,prompt,hotwords,both")
    ap.add_argument("-c", "--config", default=None, help="edge config whose registry to use")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--save", default=None, help="write raw transcripts to this JSON file")
    ap.add_argument("--load", default=None, help="read raw transcripts from this JSON file")
    ap.add_argument("--tsv", default=str(AUDIO_TSV), help="audio TSV (file, text, types, …)")
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()
    ctx = _context(args.config)
    tsv = Path(args.tsv)
    with tsv.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    if args.limit:
        rows = rows[: args.limit]
    saved: dict[str, Any] = json.loads(Path(args.load).read_text()) if args.load else {}
    out: dict[str, Any] = {}
    for mode in args.modes.split(","):
        tr = Transcriber(ctx.places, ctx.keywords, cpu_threads=args.threads, vocab=mode)
        if mode in saved:
            raws, audio_s, asr_s = saved[mode]["raws"], saved[mode]["audio_s"], saved[mode]["asr_s"]
            cpu_s = saved[mode].get("cpu_s", 0.0)
        else:
            raws, audio_s, asr_s, cpu_s = [], 0.0, 0.0, 0.0
            for row in rows:
                pcm = decode_audio(tsv.parent / row["file"])
                c0 = time.process_time()
                t = tr.transcribe(pcm)
                cpu_s += time.process_time() - c0
                raws.append(t.raw_text)
                audio_s += t.duration_s
                asr_s += t.elapsed_s
                sys.stderr.write(f"[{mode}] {row['file']}: {t.raw_text}\n")
            saved[mode] = {"raws": raws, "audio_s": audio_s, "asr_s": asr_s, "cpu_s": cpu_s}
        res = score(ctx, tr, rows, raws)
        correct_s = res["correct_ms"] * len(rows) / 1000
        res["rtf"] = round((asr_s + correct_s) / audio_s, 3)
        # CPU time / threads: what the wall RTF would be on an idle machine with those threads
        if cpu_s:
            res["cpu_rtf"] = round((cpu_s / args.threads + correct_s) / audio_s, 3)
        res["prompt"] = tr.prompt
        res["hotwords"] = tr.hotwords
        out[mode] = res
    if args.save:
        Path(args.save).write_text(json.dumps(saved, ensure_ascii=False))
    for mode, res in out.items():
        summary = {k: v for k, v in res.items() if k not in ("items", "prompt", "hotwords")}
        sys.stdout.write(f"{mode}: {json.dumps(summary)}\n")
        if args.verbose:
            for it in res["items"]:
                if not all(it["ok"].values()):
                    sys.stdout.write(f"   {it['file']} {it['ok']} | {it['after']}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
