"""``shaobing report transcribe | extract | eval`` (ARCHITECTURE §8).

With ``--json`` stdout carries only result objects, one per line; logs and progress go
to stderr. Exit status 0 when done, 2 on bad usage or config, 1 when it could not be done.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import sys
from pathlib import Path
from typing import Any

from edge.reports import ReportContext, load_context
from pipelines.report_extract import ReportFields

__all__ = ["transcribe_command", "extract_command", "eval_command", "fields_json", "score_row"]

log = logging.getLogger(__name__)


def _out(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def _err(msg: str) -> None:
    sys.stderr.write(msg + "\n")
    sys.stderr.flush()


def _context(args: argparse.Namespace) -> ReportContext | None:
    """The report context from ``-c`` (or the defaults); None after printing a config error."""
    path = getattr(args, "config", None)
    if not path:
        return load_context(None)
    from shaobing.config import ConfigError, load_edge_config

    try:
        cfg = load_edge_config(path)
        return load_context(cfg)
    except ConfigError as exc:
        for issue in exc.issues:
            _err(str(issue))
    except (OSError, ValueError) as exc:
        _err(f"{path}: {exc}")
    return None


def fields_json(fields: ReportFields, **extra: Any) -> dict[str, Any]:
    """The JSON object printed for one report."""
    loc = fields.location
    obj: dict[str, Any] = {
        "type": fields.type,
        "types": fields.types,
        "severity": fields.severity,
        "location": {
            "address": loc.address,
            "grid_id": loc.grid_id,
            "district": loc.district,
            "town": loc.town,
            "community": loc.community,
        },
        "summary": fields.summary,
        "confidence": fields.confidence,
        "needs_confirmation": fields.needs_confirmation,
        "elements": fields.elements,
        "cues": fields.cues,
        "text": fields.text,
    }
    obj.update(extra)
    return obj


def _human(fields: ReportFields) -> str:
    flag = " (需确认)" if fields.needs_confirmation else ""
    return (
        f"类型: {fields.type} {fields.types}\n严重程度: {fields.severity}\n"
        f"地点: {fields.location.address or '-'} 网格: {fields.location.grid_id or '-'}\n"
        f"摘要: {fields.summary}{flag}\n置信度: {fields.confidence}"
    )


# --------------------------------------------------------------------------- extract


def extract_command(args: argparse.Namespace) -> int:
    """``shaobing report extract TEXT|- [--json] [-c EDGE.yaml]``."""
    ctx = _context(args)
    if ctx is None:
        return 2
    if args.text == "-":
        count = 0
        for line in sys.stdin:
            fields = ctx.extract(line.rstrip("\r\n"))
            count += 1
            if args.json:
                _out(fields_json(fields))
            else:
                sys.stdout.write(_human(fields) + "\n\n")
        _err(f"extracted {count} reports")
        return 0
    if not args.text.strip():
        _err(
            "shaobing report extract: expected report text (or - for stdin), found an empty string"
        )
        return 2
    fields = ctx.extract(args.text)
    if args.json:
        _out(fields_json(fields))
    else:
        sys.stdout.write(_human(fields) + "\n")
    return 0


# --------------------------------------------------------------------------- transcribe


def _transcriber(ctx: ReportContext, model: str | None) -> Any:
    from edge.reports.asr import Transcriber

    return Transcriber(ctx.places, ctx.keywords, model=model, vocab=ctx.vocab_mode)


def transcribe_command(args: argparse.Namespace) -> int:
    """``shaobing report transcribe AUDIO... [--json] [--model M]``."""
    ctx = _context(args)
    if ctx is None:
        return 2
    missing = [a for a in args.audio if not Path(a).is_file()]
    if missing:
        _err(
            f"shaobing report transcribe: expected audio files, found no file at {', '.join(missing)}"
        )
        return 2
    from edge.reports.asr import AudioError
    from shaobing.models import ModelNotFound

    try:
        tr = _transcriber(ctx, args.model)
        tr.model  # noqa: B018 - load once, report a missing model before any file
    except ModelNotFound as exc:
        _err(f"shaobing report transcribe: {exc}")
        return 1
    failed = 0
    for path in args.audio:
        try:
            t = tr.transcribe(path)
        except AudioError as exc:
            failed += 1
            _err(f"{path}: {exc}")
            if args.json:
                _out({"file": path, "text": None, "duration_s": None, "error": str(exc)})
            continue
        if args.json:
            _out(
                {
                    "file": path,
                    "text": t.text,
                    "raw_text": t.raw_text,
                    "duration_s": t.duration_s,
                    "elapsed_s": t.elapsed_s,
                }
            )
        else:
            sys.stdout.write(f"{path}\t{t.duration_s:.1f}s\t{t.text}\n")
    return 1 if failed == len(args.audio) else 0


# --------------------------------------------------------------------------- eval


def score_row(fields: ReportFields, row: dict[str, str]) -> dict[str, bool]:
    """Per-report scoring of /work/shared/data/reports/README.md (type, location, severity)."""
    types = [t.strip() for t in (row.get("types") or "").split(",") if t.strip()]
    sevs = [s.strip() for s in (row.get("severities") or "").split(",") if s.strip()]
    want_loc = (row.get("location") or "").strip()
    return {
        "type": fields.type in types,
        "location": bool(want_loc) and want_loc in (fields.location.address or ""),
        "severity": fields.severity in sevs,
    }


def _read_tsv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
        rows = [dict(r) for r in reader]
        fieldnames = reader.fieldnames or []
    need = {"types", "location", "severities"}
    if not need <= set(fieldnames) or not ({"text", "file"} & set(fieldnames)):
        raise ValueError(
            f"{path}: expected columns text (or file), types, location, severities; found {', '.join(fieldnames)}"
        )
    return rows


def eval_command(args: argparse.Namespace) -> int:
    """``shaobing report eval TSV [--json] [--audio]``: accuracy of type, location, severity."""
    ctx = _context(args)
    if ctx is None:
        return 2
    tsv = Path(args.tsv)
    if not tsv.is_file():
        _err(f"shaobing report eval: expected a TSV file, found nothing at {tsv}")
        return 2
    try:
        rows = _read_tsv(tsv)
    except (ValueError, UnicodeDecodeError) as exc:
        _err(str(exc))
        return 2
    has_files = bool(rows) and rows[0].get("file") is not None
    if args.audio and not has_files:
        _err(f"shaobing report eval --audio: expected a file column in {tsv}, found none")
        return 2
    use_audio = has_files
    tr = None
    if use_audio:
        from edge.reports.asr import AudioError
        from shaobing.models import ModelNotFound

        try:
            tr = _transcriber(ctx, getattr(args, "model", None))
            tr.model  # noqa: B018
        except ModelNotFound as exc:
            _err(f"shaobing report eval: {exc}")
            return 1
    right = {"type": 0, "location": 0, "severity": 0}
    misses: list[dict[str, Any]] = []
    confusion: dict[str, dict[str, int]] = {}
    total_audio = total_elapsed = 0.0
    for i, row in enumerate(rows):
        text = row.get("text") or ""
        transcript = None
        if tr is not None:
            audio = tsv.parent / (row.get("file") or "")
            try:
                t = tr.transcribe(audio)
                transcript = t.text
                log.info("%s raw: %s", audio.name, t.raw_text)
                total_audio += t.duration_s
                total_elapsed += t.elapsed_s
            except (AudioError, OSError) as exc:
                _err(f"{audio}: {exc}")
                transcript = ""
            _err(f"[{i + 1}/{len(rows)}] {row.get('file')}: {transcript}")
        fields = ctx.extract(transcript if transcript is not None else text)
        ok = score_row(fields, row)
        for k, v in ok.items():
            right[k] += int(v)
        if not ok["type"]:
            want_type = (row.get("types") or "other").split(",")[0].strip()
            cell = confusion.setdefault(want_type, {})
            cell[fields.type] = cell.get(fields.type, 0) + 1
        if not all(ok.values()):
            miss: dict[str, Any] = {
                "line": i + 2,
                "text": text,
                "wrong": [k for k, v in ok.items() if not v],
                "got": {
                    "type": fields.type,
                    "location": fields.location.address,
                    "severity": fields.severity,
                },
                "want": {
                    "types": row.get("types"),
                    "location": row.get("location"),
                    "severities": row.get("severities"),
                },
            }
            if transcript is not None:
                miss["transcript"] = transcript
                miss["file"] = row.get("file")
            misses.append(miss)
    n = len(rows)
    result: dict[str, Any] = {
        "n": n,
        "type_acc": round(right["type"] / n, 4) if n else 0.0,
        "location_acc": round(right["location"] / n, 4) if n else 0.0,
        "severity_acc": round(right["severity"] / n, 4) if n else 0.0,
        "audio": tr is not None,
        "confusion": confusion,
        "misses": misses,
    }
    if tr is not None and total_audio > 0:
        result["rtf"] = round(total_elapsed / total_audio, 3)
    if args.json:
        _out(result)
    else:
        sys.stdout.write(
            f"n={n} type={result['type_acc']:.3f} location={result['location_acc']:.3f} severity={result['severity_acc']:.3f}\n"
        )
        for want_type, got in sorted(confusion.items()):
            pairs = ", ".join(f"{g}×{c}" for g, c in sorted(got.items()))
            sys.stdout.write(f"  confused {want_type} → {pairs}\n")
        for m in misses:
            sys.stdout.write(
                f"  line {m['line']} wrong {','.join(m['wrong'])}: got {m['got']} want {m['want']} | {m.get('transcript') or m['text']}\n"
            )
    return 0
