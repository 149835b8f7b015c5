"""Worker-confirmed reports: the extraction shown for checking, the confirmed report, and the
labelled example it leaves behind.

The worker's page sends the text to ``POST /api/v1/reports/extract`` and shows type, place
and severity as editable fields (it asks when ``needs_confirmation`` is set). The final
fields go to ``POST /api/v1/reports/confirmed``: the report is submitted as a worker report
and the pair (what the extractor said, what the worker confirmed) is stored as a labelled
example with who corrected which field. The extraction is redone at the hub, so the
"extracted" side is the system's own answer, never what a page claims.

``shaobing hub reports export --labelled FILE.tsv`` writes the examples in the shared report
TSV format (text, types, location, severities + provenance columns), which
``shaobing report eval`` scores directly.
"""

from __future__ import annotations

import csv
import json
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Integer,
    String,
    Table,
    Text,
    insert,
    select,
)

from hub.open311 import ReportIn
from hub.schema import metadata

if TYPE_CHECKING:
    from hub.store import Store

__all__ = [
    "labelled_reports",
    "ExtractIn",
    "ConfirmedReportIn",
    "extract_view",
    "record_example",
    "labelled_rows",
    "export_labelled",
]

FIELDS = ("type", "location", "severity")
EXPORT_COLUMNS = (
    "text", "types", "location", "severities", "extracted_type", "extracted_location",
    "extracted_severity", "corrected", "corrected_by", "event_id", "at",
)  # fmt: skip

labelled_reports = Table(
    "labelled_reports",
    metadata,
    Column("seq", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("event_id", String(64), nullable=False),
    Column("actor", String(64), nullable=False),
    Column("text", Text, nullable=False),
    Column("extracted", Text, nullable=False),  # JSON {type, location, severity, needs_confirmation}
    Column("final", Text, nullable=False),  # JSON {type, location, severity}
    Column("corrected", String(64), nullable=False),  # fields the worker changed, comma-separated
)  # fmt: skip


class ExtractIn(BaseModel):
    """Text to extract fields from (nothing is stored)."""

    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1, max_length=480, description="the report as typed or spoken")


class ConfirmedReportIn(ReportIn):
    """A worker report whose type, place and severity the worker has checked."""

    type: str = Field(description="taxonomy code the worker confirmed")
    address: str | None = Field(
        default=None, max_length=200, description="place the worker confirmed (as written)"
    )
    severity: str = Field(description="normal, urgent or emergency as confirmed")


def extract_view(fields: Any) -> dict[str, Any]:
    """The extracted fields as the worker's page shows them."""
    loc = fields.location
    return {
        "type": fields.type,
        "types": list(fields.types),
        "severity": fields.severity,
        "location": loc.address or "",
        "grid_id": loc.grid_id,
        "community": loc.community,
        "town": loc.town,
        "district": loc.district,
        "needs_confirmation": bool(fields.needs_confirmation),
        "confidence": fields.confidence,
        "summary": fields.summary,
    }


def corrected_fields(extracted: dict[str, Any], final: dict[str, Any]) -> list[str]:
    """The fields whose final value differs from the extracted one."""
    return [f for f in FIELDS if (final.get(f) or "") != (extracted.get(f) or "")]


def record_example(
    store: Store,
    *,
    event_id: str,
    actor: str,
    text: str,
    extracted: dict[str, Any],
    final: dict[str, Any],
    at: datetime,
) -> list[str]:
    """Store one labelled example; returns the corrected fields."""
    corrected = corrected_fields(extracted, final)
    with store.engine.begin() as conn:
        conn.execute(
            insert(labelled_reports).values(
                at=at,
                event_id=event_id,
                actor=actor[:64],
                text=text,
                extracted=json.dumps(
                    {k: extracted.get(k) for k in (*FIELDS, "needs_confirmation")},
                    ensure_ascii=False,
                ),
                final=json.dumps({k: final.get(k) for k in FIELDS}, ensure_ascii=False),
                corrected=",".join(corrected),
            )
        )
    return corrected


def labelled_rows(store: Store, limit: int = 100_000) -> list[dict[str, Any]]:
    """Stored examples, oldest first, as export rows."""
    t = labelled_reports
    with store.engine.connect() as conn:
        rows = conn.execute(select(t).order_by(t.c.seq).limit(limit)).all()
    out = []
    for r in rows:
        ext = json.loads(r.extracted)
        fin = json.loads(r.final)
        out.append(
            {
                "text": " ".join(str(r.text).split()),
                "types": fin.get("type") or "other",
                "location": fin.get("location") or "",
                "severities": fin.get("severity") or "normal",
                "extracted_type": ext.get("type") or "",
                "extracted_location": ext.get("location") or "",
                "extracted_severity": ext.get("severity") or "",
                "corrected": r.corrected,
                "corrected_by": r.actor,
                "event_id": r.event_id,
                "at": r.at.isoformat() if r.at else "",
            }
        )
    return out


def export_labelled(store: Store, path: Path) -> int:
    """Write the examples as a report TSV (the shared format plus provenance); returns the count."""
    rows = labelled_rows(store)
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(
            fh, fieldnames=EXPORT_COLUMNS, delimiter="\t", quoting=csv.QUOTE_NONE, escapechar="\\"
        )
        writer.writeheader()
        for row in rows:
            writer.writerow({k: str(v).replace("\t", " ") for k, v in row.items()})
    return len(rows)
