"""``shaobing bench asr``: speech recognition accuracy (CER) and speed (real-time factor).

Two sets, both from ``../shared/assets`` / ``../shared/data``:

* ``assets/audio/*.wav`` with ``transcripts.tsv`` — general Mandarin speech, transcribed
  without the domain prompt; CER after normalisation (simplified, no punctuation/spaces,
  lower case).
* the first spoken dev reports (``data/reports/audio``) — with the domain prompt and the
  sound-alike correction, as the report endpoint runs it.

RTF = recognition wall time / audio time (model load excluded); ``cpu_rtf`` uses the
process CPU time divided by the thread count, which stays meaningful on a busy machine.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

from edge.reports import load_context
from edge.reports.asr import Transcriber, decode_audio
from edge.reports.normalize import to_simplified
from shaobing.paths import assets_dir, shared_dir

__all__ = ["cer", "bench_asr_command", "normalize_for_cer"]

_DROP = re.compile(r"[\s，。！？、；：,.!?;:\"'“”‘’（）()《》\-]")


def normalize_for_cer(text: str) -> str:
    """Simplified, lower case, without punctuation or spaces."""
    return _DROP.sub("", to_simplified(text).lower())


def cer(ref: str, hyp: str) -> tuple[int, int]:
    """(edit distance, reference length) over characters."""
    r, h = list(ref), list(hyp)
    prev = list(range(len(h) + 1))
    for i, rc in enumerate(r, 1):
        cur = [i] + [0] * len(h)
        for j, hc in enumerate(h, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (rc != hc))
        prev = cur
    return prev[-1], len(r)


def _run_set(tr: Transcriber, items: list[tuple[Path, str]], threads: int) -> dict[str, Any]:
    edits = ref_len = 0
    audio_s = wall_s = cpu_s = 0.0
    rows = []
    for path, ref in items:
        pcm = decode_audio(path)
        c0 = time.process_time()
        t = tr.transcribe(pcm)
        cpu_s += time.process_time() - c0
        hyp = normalize_for_cer(t.text)
        e, n = cer(normalize_for_cer(ref), hyp)
        edits += e
        ref_len += n
        audio_s += t.duration_s
        wall_s += t.elapsed_s
        rows.append(
            {"file": path.name, "ref": ref, "hyp": t.text, "cer": round(e / n, 3) if n else 0.0}
        )
        sys.stderr.write(f"{path.name}: {t.text} (cer {rows[-1]['cer']})\n")
    return {
        "files": len(items),
        "audio_s": round(audio_s, 2),
        "cer": round(edits / ref_len, 4) if ref_len else None,
        "rtf": round(wall_s / audio_s, 3) if audio_s else None,
        "cpu_rtf": round(cpu_s / threads / audio_s, 3) if audio_s else None,
        "items": rows,
    }


def bench_asr_command(args: argparse.Namespace) -> int:
    """Print CER and real-time factor of whisper-base (int8) on the shared audio."""
    threads = int(getattr(args, "threads", 2) or 2)
    audio_dir = assets_dir() / "audio"
    tsv = audio_dir / "transcripts.tsv"
    if not tsv.is_file():
        sys.stderr.write(f"shaobing bench asr: expected {tsv}, found nothing\n")
        return 1
    with tsv.open(encoding="utf-8", newline="") as fh:
        general = [
            (audio_dir / r["file"], r["text"])
            for r in csv.DictReader(fh, delimiter="\t")
            if (audio_dir / r["file"]).is_file()
        ]
    ctx = load_context(None)
    plain = Transcriber((), (), cpu_threads=threads, domain=False)
    t0 = time.perf_counter()
    plain.model  # noqa: B018
    load_s = time.perf_counter() - t0
    result: dict[str, Any] = {
        "model": "whisper-base",
        "compute_type": "int8",
        "threads": threads,
        "load_s": round(load_s, 2),
    }
    result["general"] = _run_set(plain, general, threads)
    dev_tsv = shared_dir() / "data" / "reports" / "audio" / "reports_dev_audio.tsv"
    if dev_tsv.is_file():
        with dev_tsv.open(encoding="utf-8", newline="") as fh:
            dev = [
                (dev_tsv.parent / r["file"], r["text"])
                for r in list(csv.DictReader(fh, delimiter="\t"))[:10]
            ]
        domain = Transcriber(ctx.places, ctx.keywords, cpu_threads=threads)
        result["reports"] = _run_set(domain, dev, threads)
    summary = {k: v for k, v in result.items() if k not in ("general", "reports")}
    for name in ("general", "reports"):
        if name in result:
            summary[name] = {k: v for k, v in result[name].items() if k != "items"}
    if getattr(args, "json", False):
        sys.stdout.write(json.dumps(result, ensure_ascii=False) + "\n")
    else:
        sys.stdout.write(json.dumps(summary, ensure_ascii=False, indent=2) + "\n")
        sys.stdout.write("baseline: target rtf <= 0.3 (whisper-base, int8, 2 threads)\n")
    return 0
